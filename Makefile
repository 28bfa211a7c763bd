# Tape — the two commands a fresh machine needs (see README):
#   make run    install everything, build, replay the sample recordings, write a report
#   make test   install everything, build, run every test (unit, real-data, scenarios)
SHELL := /bin/bash
SHARED ?= ../shared
SWIFT ?= swift
TAPE := .build/release/tape
RUN_DIR ?= reports/sample

.PHONY: all setup build sample run test bench clean

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

test: build
	$(SWIFT) test -c release 2>&1 | tee .test.log; exit $${PIPESTATUS[0]}

bench: build
	@scripts/bench.sh

clean:
	rm -rf .build reports/sample recordings/bench
