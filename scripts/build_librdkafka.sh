#!/usr/bin/env bash
# Builds librdkafka from Debian sid's source package into .deps/librdkafka/ (git-ignored), once.
# Called by scripts/setup.sh (so by `make setup`, `make build`, `make test`); see docs/kafka.md.
#
# Why: bookworm's librdkafka (2.0.2) cannot talk to the local broker (tansu). Sid's 2.14 can, and has the
# fix for a metadata-cache use-after-free when a topic comes back with a new id (upstream #4964, fixed in
# 2.10; trixie has 2.8). TAPE_LIBRDKAFKA_SUITE picks another suite (at least MINIMUM_VERSION).
#
# Patched: scripts/patches/*.patch are applied to upstream's tree (see each file; docs/kafka.md): a crash on a
# metadata update that names no topic, and the idempotent producer's 500 ms wait for a broker at start. A
# patch that no longer applies (upstream changed the code) stops the build with its name.
#
# Only the source package is fetched, with apt's state, cache and sources list private to .deps/apt/: the
# system's apt configuration and package set are untouched. The archive's signature and hashes are
# checked by apt as for any package (debian-archive-keyring holds the archive's keys).
#
# Cached: .deps/librdkafka/.built holds the version and the configure flags; when it matches and the
# library is there, this script prints nothing and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEPS="$ROOT/.deps"
PREFIX="$DEPS/librdkafka"
APT_DIR="$DEPS/apt"
SUITE=${TAPE_LIBRDKAFKA_SUITE:-sid}
MIRROR=${TAPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
MINIMUM_VERSION=2.10.0
# librdkafka's own configure (mklove); the external libraries are bookworm's -dev packages (setup.sh).
# --no-download: mklove never fetches modules or libraries itself (there is no internet but the archives).
CONFIGURE_FLAGS=(--enable-ssl --enable-gssapi --enable-zstd --enable-lz4-ext --enable-zlib --enable-curl
                 --no-download)
# What configure must have found (its optional checks only warn; these must not be silently left out).
REQUIRED_FEATURES=(WITH_SSL WITH_SASL_CYRUS WITH_ZSTD WITH_LZ4_EXT WITH_ZLIB WITH_CURL)
STAMP="$PREFIX/.built"
PATCHES=("$ROOT"/scripts/patches/librdkafka-*.patch)
patches_sum() { cat "${PATCHES[@]}" | sha256sum | cut -c1-12; }
stamp_text() { echo "librdkafka $1 from $SUITE source; patches $(patches_sum); configure ${CONFIGURE_FLAGS[*]}"; }

fail() { echo "build_librdkafka: $*" >&2; exit 1; }

if [ -f "$STAMP" ] && [ -e "$PREFIX/lib/librdkafka.so" ] && [ -f "$PREFIX/include/librdkafka/rdkafka.h" ]; then
  built=$(awk '{print $2; exit}' "$STAMP")
  [ "$(cat "$STAMP")" = "$(stamp_text "$built")" ] && exit 0
fi

for tool in apt-get dpkg-source gcc make patch pkg-config; do
  command -v "$tool" > /dev/null || fail "needs $tool (scripts/setup.sh installs build-essential, pkg-config)"
done
for lib in libssl libsasl2 libzstd liblz4 zlib libcurl; do
  pkg-config --exists "$lib" || fail "needs the $lib development files (scripts/setup.sh installs them)"
done

# apt with private state, cache and sources (deb-src of $SUITE only).
mkdir -p "$APT_DIR/state/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/etc/sources.list.d" \
  "$APT_DIR/etc/preferences.d" "$APT_DIR/etc/apt.conf.d"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" \
  > "$APT_DIR/etc/sources.list"
APT=(apt-get -q -o "Dir::State=$APT_DIR/state" -o "Dir::Cache=$APT_DIR/cache"
     -o "Dir::Etc::SourceList=$APT_DIR/etc/sources.list" -o "Dir::Etc::SourceParts=$APT_DIR/etc/sources.list.d"
     -o "Dir::Etc::Preferences=$APT_DIR/etc/preferences" -o "Dir::Etc::PreferencesParts=$APT_DIR/etc/preferences.d"
     -o "Dir::Etc::Parts=$APT_DIR/etc/apt.conf.d" -o "Debug::NoLocking=1")
# As root, apt downloads as the `_apt` user, which cannot write to a root-owned private directory.
[ "$(id -u)" = 0 ] && APT+=(-o "APT::Sandbox::User=root")

LOG="$DEPS/librdkafka-build.log"
echo "setup: building librdkafka from Debian $SUITE's source package into .deps/librdkafka (log: .deps/librdkafka-build.log)"
: > "$LOG"
"${APT[@]}" update >> "$LOG" 2>&1 || fail "apt-get update of $SUITE's sources failed (see $LOG)"
SOURCE_DIR="$DEPS/src"
rm -rf "$SOURCE_DIR"
mkdir -p "$SOURCE_DIR"
# Downloaded and checked by apt, then unpacked without Debian's patches: from 2.10 on they switch the
# vendored nanopb/cJSON/OpenTelemetry sources for Debian packages bookworm does not have; upstream's own
# tree builds with what bookworm has.
(cd "$SOURCE_DIR" && "${APT[@]}" source --download-only "librdkafka/$SUITE" \
  && dpkg-source --skip-patches -x librdkafka_*.dsc) >> "$LOG" 2>&1 \
  || fail "apt-get source librdkafka/$SUITE failed (see $LOG)"
tree=$(find "$SOURCE_DIR" -mindepth 1 -maxdepth 1 -type d -name 'librdkafka-*' | head -1)
[ -n "$tree" ] || fail "no unpacked source tree in $SOURCE_DIR (see $LOG)"
version=${tree##*/librdkafka-}
[ "$(printf '%s\n%s\n' "$MINIMUM_VERSION" "$version" | sort -V | head -1)" = "$MINIMUM_VERSION" ] \
  || fail "$SUITE has librdkafka $version, older than $MINIMUM_VERSION"

for patch in "${PATCHES[@]}"; do
  patch -d "$tree" -p1 --forward --batch < "$patch" >> "$LOG" 2>&1 \
    || fail "${patch#"$ROOT"/} does not apply to librdkafka $version (see $LOG)"
done

rm -rf "$PREFIX"
# One `&&` chain: `set -e` does not apply inside a command followed by `||`, and a `make install` after a
# failed configure would install into /usr/local.
(cd "$tree" && ./configure --prefix="$PREFIX" "${CONFIGURE_FLAGS[@]}") >> "$LOG" 2>&1 \
  || fail "configure of librdkafka $version failed (see $LOG)"
for feature in "${REQUIRED_FEATURES[@]}"; do
  grep -q "^#define $feature 1" "$tree/config.h" || fail "configure left out $feature (see $LOG)"
done
(cd "$tree" && make -C src -j"$(nproc)" && make -C src install) >> "$LOG" 2>&1 \
  || fail "make of librdkafka $version failed (see $LOG)"
[ -f "$PREFIX/include/librdkafka/rdkafka.h" ] && [ -e "$PREFIX/lib/librdkafka.so" ] \
  || fail "make install left no header or library in $PREFIX"
# Only the shared library is linked (the package's rpath points at it); the sources and apt's lists are
# not needed again.
rm -f "$PREFIX"/lib/*.a
rm -rf "$SOURCE_DIR" "$APT_DIR"
stamp_text "$version" > "$STAMP"
echo "setup: librdkafka $version built into .deps/librdkafka"
