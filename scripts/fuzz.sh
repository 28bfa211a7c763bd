#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader and decoder (libFuzzer, Swift's -sanitize=fuzzer + address).
#
#   scripts/fuzz.sh                 every target for FUZZ_SECONDS each (default 180: `make fuzz`)
#   FUZZ_TOTAL_SECONDS=60 scripts/fuzz.sh   the bounded run of `make test`: the total split over the targets
#   scripts/fuzz.sh bars time       only these targets
#
# Steps: build Fuzz/ (its own package: the main build never sees the sanitizer flags); lay the seed
# corpus in Fuzz/corpus/<target>/ (git-ignored) from Fuzz/seeds/ (small synthetic inputs) and the first
# lines of ../shared/data (at run time, never committed); replay every input kept in
# Fuzz/regressions/<target>/; fuzz each target. A crash fails the run: it is minimised into
# Fuzz/findings/<target>/ (git-ignored), to be fixed and then kept, synthetic and minimised, as a
# regression input. Exit 0 when no target crashed; 1 otherwise. Under CI=true a missing fuzzer runtime or
# missing ../shared/data fails; elsewhere it is said and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SWIFT=${SWIFT:-swift}
SHARED=${SHARED:-../shared}
FUZZ_SECONDS=${FUZZ_SECONDS:-180}
FUZZ_TOTAL_SECONDS=${FUZZ_TOTAL_SECONDS:-}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-16384}
CI_RUN=false
case "${CI:-}" in true|TRUE|True|1) CI_RUN=true ;; esac

ALL_TARGETS=(numbers time binance-decoder polygon-decoder gzip raw-capture tick-csv bars polygon-trades
             polygon-quotes polygon-minute-aggs tardis-trades detect)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")

missing() {  # a piece this run needs is not here: fail under CI, skip elsewhere
  if $CI_RUN; then echo "fuzz: FAILED: required under CI=true: $1" >&2; exit 1; fi
  echo "fuzz: skipped: $1" >&2; exit 0
}

# 1. The toolchain's libFuzzer runtime, then the build (incremental after the first: Fuzz/.build).
RESOURCE_DIR=$("$SWIFT" -print-target-info 2>/dev/null | sed -n 's/.*"runtimeResourcePath": "\(.*\)".*/\1/p')
if ! ls "$RESOURCE_DIR"/../clang/*/lib/*/libclang_rt.fuzzer*.a >/dev/null 2>&1; then
  missing "libFuzzer runtime (libclang_rt.fuzzer) of the Swift toolchain ($SWIFT)"
fi
# One frontend job per file: when a job compiles several files (WMO split over threads, SwiftPM's release
# default, or batch mode) only its first file gets coverage counters (~100 edges instead of ~8000).
BUILD_FLAGS=(-c release --package-path Fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -no-whole-module-optimization -Xswiftc -disable-batch-mode
             -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table)
started=$(date +%s)
"$SWIFT" build "${BUILD_FLAGS[@]}" 2>&1 | grep -E 'error|warning: unre|Compiling tape_fuzz|Build complete' || true
BINARY="$("$SWIFT" build "${BUILD_FLAGS[@]}" --show-bin-path)/tape-fuzz"
[ -x "$BINARY" ] || { echo "fuzz: FAILED: the fuzz build did not produce $BINARY" >&2; exit 1; }
echo "fuzz: built in $(( $(date +%s) - started )) s"
counters=$(TAPE_FUZZ_TARGET=numbers "$BINARY" -runs=1 2>&1 \
  | sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' | head -n 1)
if [ "${counters:-0}" -lt 2000 ]; then
  echo "fuzz: FAILED: only ${counters:-0} coverage counters: the modules are not instrumented" >&2; exit 1
fi

# 2. Seed corpus: synthetic seeds, then slices of the shared data (first lines, never committed).
CORPUS=Fuzz/corpus
mkdir -p "$CORPUS"
put() {  # put TARGET < bytes: one seed, named by its content
  local target=$1 temporary
  mkdir -p "$CORPUS/$target"
  temporary=$(mktemp "$CORPUS/$target/.new.XXXXXX")
  cat > "$temporary"
  mv "$temporary" "$CORPUS/$target/seed-$(sha1sum < "$temporary" | cut -c1-16)"
}
for target in "${ALL_TARGETS[@]}"; do
  mkdir -p "$CORPUS/$target"
  if [ -d "Fuzz/seeds/$target" ]; then
    for seed in "Fuzz/seeds/$target"/*; do [ -f "$seed" ] && put "$target" < "$seed"; done
  fi
done
for seed in Fuzz/seeds/{tick-csv,polygon-trades,polygon-quotes,polygon-minute-aggs,tardis-trades,bars}/*; do
  [ -f "$seed" ] && put detect < "$seed"
done
if [ -d "$SHARED/data" ]; then
  set +o pipefail
  for file in "$SHARED"/data/binance-feed/*.gz; do
    [ -f "$file" ] || continue
    zcat "$file" | grep -v '@depth' | head -n 20 | put raw-capture
    zcat "$file" | grep -v '@depth' | head -n 20 | put detect
    zcat "$file" | head -n 3 | head -c "$FUZZ_MAX_LEN" | put raw-capture
    zcat "$file" | grep -v '@depth' | head -n 10 | gzip -c | put gzip
    zcat "$file" | grep -v '@depth' | head -n 6 | cut -d' ' -f2- | while IFS= read -r message; do
      printf '%s' "$message" | put binance-decoder
    done
    zcat "$file" | grep -v '@depth' | head -n 40 | grep -o '"[0-9][0-9.]*"' | tr -d '"' | sort -u | head -n 20 \
      | while IFS= read -r number; do printf '%s' "$number" | put numbers; done
  done
  for file in "$SHARED"/data/bars/*.gz; do
    [ -f "$file" ] || continue
    zcat "$file" | head -n 20 | put bars
    zcat "$file" | head -n 20 | put detect
    { zcat "$file" | head -n 5 | gzip -c; zcat "$file" | sed -n 6,10p | gzip -c; } | put gzip
    zcat "$file" | sed -n 2,6p | cut -d, -f1 | while IFS= read -r time; do printf '%s' "$time" | put time; done
    zcat "$file" | sed -n 2,6p | cut -d, -f2- | tr ',' '\n' | while IFS= read -r number; do
      printf '%s' "$number" | put numbers
    done
  done
  set -o pipefail
else
  $CI_RUN && missing "$SHARED/data (the seed corpus is built from it)"
  echo "fuzz: $SHARED/data not found: synthetic seeds only" >&2
fi

export SWIFT_BACKTRACE=enable=no   # a trap ends at once (the backtracer takes ~30 s)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
FAILED=()

# 3. Regression inputs: every crash found so far, replayed (libFuzzer runs the files given, no fuzzing).
for target in "${TARGETS[@]}"; do
  inputs=(Fuzz/regressions/"$target"/*)
  [ -f "${inputs[0]}" ] || continue
  if ! TAPE_FUZZ_TARGET=$target "$BINARY" "${inputs[@]}" > "Fuzz/.regressions-$target.log" 2>&1; then
    echo "fuzz: FAILED: a regression input of $target crashes again (Fuzz/.regressions-$target.log):" >&2
    grep -E 'ERROR|Fatal error|property broken|Running:' "Fuzz/.regressions-$target.log" | tail -n 5 >&2
    FAILED+=("$target (regression)")
  else
    echo "fuzz: $target: ${#inputs[@]} regression input(s) pass"
  fi
done

# 4. Fuzz each target.
if [ -n "$FUZZ_TOTAL_SECONDS" ]; then
  SECONDS_EACH=$(( FUZZ_TOTAL_SECONDS / ${#TARGETS[@]} ))
  [ "$SECONDS_EACH" -lt 1 ] && SECONDS_EACH=1
else
  SECONDS_EACH=$FUZZ_SECONDS
fi
for target in "${TARGETS[@]}"; do
  findings="Fuzz/findings/$target"
  mkdir -p "$findings"
  log="Fuzz/.fuzz-$target.log"
  if TAPE_FUZZ_TARGET=$target "$BINARY" "$CORPUS/$target" -max_total_time="$SECONDS_EACH" -timeout=10 \
      -rss_limit_mb=2560 -max_len="$FUZZ_MAX_LEN" -print_final_stats=1 -artifact_prefix="$findings/" \
      > "$log" 2>&1; then
    echo "fuzz: $target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs," \
         "$(ls "$CORPUS/$target" | wc -l) corpus inputs, no crash (${SECONDS_EACH} s)"
    continue
  fi
  FAILED+=("$target")
  crash=$(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')
  echo "fuzz: FAILED: $target crashed ($log):" >&2
  grep -E 'ERROR:|Fatal error|property broken|SUMMARY' "$log" | head -n 5 >&2
  if [ -n "$crash" ] && [ -f "$crash" ]; then
    minimised="$findings/minimised-$(basename "$crash")"
    TAPE_FUZZ_TARGET=$target "$BINARY" "$crash" -minimize_crash=1 -runs=20000 -max_total_time=30 \
      -exact_artifact_path="$minimised" > "$log.minimise" 2>&1 || true
    [ -f "$minimised" ] || cp "$crash" "$minimised"
    echo "fuzz: minimised input: $minimised ($(wc -c < "$minimised") bytes): fix the bug, then keep it as" \
         "Fuzz/regressions/$target/<what-it-shows>" >&2
    od -c "$minimised" | head -n 8 >&2
  fi
done

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, no crash"
