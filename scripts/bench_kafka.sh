#!/usr/bin/env bash
# Kafka throughput on this machine against the local broker (tansu, memory storage): produce N small
# records (64-byte values, 100 keys, linger 5 ms, idempotent, acks=all) without compression and with
# lz4, then read them back with a manually assigned consumer. Prints records/s and the ratios, with the
# command that measured them. N: $1 or TAPE_KAFKA_BENCH_MESSAGES (default 1,000,000).
#   scripts/bench_kafka.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source config/services.env
N=${1:-${TAPE_KAFKA_BENCH_MESSAGES:-1000000}}
SWIFT=${SWIFT:-swift}
# Stop afterwards the broker this script started (one already up stays up).
started=0
scripts/services.sh status | grep -q '^kafka .* up ' || started=1
scripts/services.sh start kafka > /dev/null
[ $started = 1 ] && trap 'scripts/services.sh stop kafka > /dev/null' EXIT
[ -x .build/release/TapePackageTests.xctest ] || $SWIFT build -c release --build-tests > /dev/null
command="TAPE_KAFKA_BENCH_MESSAGES=$N $SWIFT test -c release --skip-build --filter KafkaThroughputTests"
log=$(mktemp)
TAPE_KAFKA_BENCH_MESSAGES=$N $SWIFT test -c release --skip-build --filter KafkaThroughputTests > "$log" 2>&1 \
  || { cat "$log"; rm -f "$log"; exit 1; }
line=$(grep '^KAFKA-BENCH messages=' "$log")
grep '^KAFKA-BENCH produce' "$log" | sed 's/^KAFKA-BENCH /  /'
rm -f "$log"
python3 - "$line" "$command" "$(nproc)" <<'PY'
import sys
fields = dict(part.split("=") for part in sys.argv[1].split()[1:])
number = {key: float(value) for key, value in fields.items()}
print(f"Kafka on tansu 127.0.0.1 (memory storage), {int(number['messages']):,} records of {int(number['value_bytes'])} bytes, "
      f"{int(number['partitions'])} partitions, linger {int(number['linger_ms'])} ms, {sys.argv[3]} cores")
for codec in ("none", "lz4"):
    print(f"  produce {codec:4}  {number[f'produce_{codec}_per_s']:>12,.0f} records/s   (to the last delivery report)")
for codec in ("none", "lz4"):
    print(f"  consume {codec:4}  {number[f'consume_{codec}_per_s']:>12,.0f} records/s")
print(f"  produce lz4 / none  {number['produce_lz4_per_s'] / number['produce_none_per_s']:.2f} x")
print(f"  consume lz4 / none  {number['consume_lz4_per_s'] / number['consume_none_per_s']:.2f} x")
print(f"command: {sys.argv[2]}")
PY
