# Tape — the two commands a fresh machine needs (see README):
#   make run    install everything, build, replay the sample recordings, write a report
#   make test   install everything, build, run every test (unit, real-data, scenarios), then every
#               fuzz target for FUZZ_TEST_SECONDS in total (and every kept crash input)
#   make fuzz   every fuzz target for FUZZ_SECONDS each (see README, "Fuzzing")
#   make live   the whole live stack (feed-sim or vendors → ingest → Kafka → 2 workers → stores → serve,
#               Prometheus), supervised; `make stop`, `make status` (docs/operations.md)
#   make soak   the live stack under a schedule of faults for SOAK_SECONDS (600), then every check printed
SHELL := /bin/bash
SHARED ?= ../shared
SWIFT ?= swift
TAPE := .build/release/tape
RUN_DIR ?= reports/sample
FUZZ_SECONDS ?= 180
FUZZ_TEST_SECONDS ?= 60

.PHONY: all setup build sample run test fuzz bench clean services services-stop services-status live stop status soak

all: build

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build -c release

sample:
	@SHARED=$(SHARED) scripts/sample.sh

# The main job: replay every sample capture (merged by receive time) at full speed through the
# whole graph and write the run folder with its report.
run: build sample
	$(TAPE) replay recordings/sample/*.gz --out $(RUN_DIR) ; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 3 ]; then exit $$rc; fi; \
	  echo "report: $(RUN_DIR)/index.html"

# One build of everything, tests included (`swift test` alone would rebuild every module with testability
# after `swift build`: twice the time on a fresh clone); the tests use the `tape` binary it builds.
# The fuzz step runs even when a test failed (both results are printed); either failing fails `make test`.
test: setup
	$(SWIFT) build -c release --build-tests
	scripts/services.sh start
	$(SWIFT) test -c release --skip-build 2>&1 | tee .test.log; tests=$${PIPESTATUS[0]}; \
	  SWIFT=$(SWIFT) SHARED=$(SHARED) FUZZ_TOTAL_SECONDS=$(FUZZ_TEST_SECONDS) scripts/fuzz.sh 2>&1 | tee .fuzz.log; \
	  fuzz=$${PIPESTATUS[0]}; \
	  scripts/services.sh check 2>&1 | tee .services.log; services=$${PIPESTATUS[0]}; \
	  [ $$tests -eq 0 ] && [ $$fuzz -eq 0 ] && [ $$services -eq 0 ]

# Coverage-guided fuzzing of every reader and decoder, longer than in `make test`.
fuzz: setup
	SWIFT=$(SWIFT) SHARED=$(SHARED) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

bench: build
	@scripts/bench.sh

clean:
	rm -rf .build reports/sample recordings/bench Fuzz/.build Fuzz/corpus Fuzz/findings

# Local PostgreSQL 15 (+ pg_partman), Redis, InfluxDB and Kafka (tansu) on the loopback ports of config/services.env,
# data under .tape/ (idempotent; see README "Storage").
services: setup
	@scripts/services.sh start

services-stop:
	@scripts/services.sh stop

services-status:
	@scripts/services.sh status

# The live stack of config/live.yaml (TAPE_LIVE_CONFIG=FILE for another), each process supervised
# (scripts/supervise.sh: pid file and log under .tape/live/, restarted with backoff); see docs/operations.md.
live: build sample
	@scripts/live.sh start

stop:
	@scripts/live.sh stop

status:
	@scripts/live.sh status

SOAK_SECONDS ?= 600
soak: build sample
	@SOAK_SECONDS=$(SOAK_SECONDS) scripts/soak.sh
