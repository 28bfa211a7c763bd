#!/usr/bin/env bash
# Copies the shared sample data into recordings/sample/ (git-ignored). Never commit these files.
set -euo pipefail
SHARED=${SHARED:-../shared}
dest=recordings/sample
if [ ! -d "$SHARED/data/binance-feed" ]; then
  echo "sample: $SHARED/data/binance-feed not found." >&2
  echo "  Point SHARED at a folder holding data/binance-feed (make run SHARED=/path/to/shared)," >&2
  echo "  or replay your own captures directly: .build/release/tape replay path/to/capture.gz" >&2
  exit 4
fi
mkdir -p "$dest/bars"
for f in "$SHARED"/data/binance-feed/*.gz; do
  [ -e "$dest/$(basename "$f")" ] || cp "$f" "$dest/"
done
for f in "$SHARED"/data/bars/*.gz; do
  [ -e "$dest/bars/$(basename "$f")" ] || cp "$f" "$dest/bars/"
done
echo "sample: $(ls "$dest"/*.gz | wc -l) captures and $(ls "$dest"/bars/*.gz | wc -l) bar files in $dest/"
