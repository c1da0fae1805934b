#!/bin/sh
# Black-box tests and benchmarks of the flownode binary (cmd/flownode/*_test.go).
# Each starts real node processes on 127.0.0.1 with free ports; nothing else is touched.
#
#   scripts/blackbox.sh [test]     the tests, with the race detector in the test process
#   scripts/blackbox.sh race-node  the tests against a node built with -race (slow; a
#                                  race report in any node's stderr fails the test)
#   scripts/blackbox.sh bench      ingest, verify and gateway-RSS figures (never fail on time)
#   scripts/blackbox.sh bench-short the benchmarks without the 100k-record gateway load
#
# FLOWNODE_TEST_BIN=path tests a given binary instead of building one.
set -eu
cd "$(dirname "$0")/.."
pkg=./cmd/flownode/
case "${1:-test}" in
test)        exec go test -race -count=1 -timeout 10m "$pkg" ;;
race-node)   export FLOWNODE_TEST_RACE_NODE=1; exec go test -count=1 -timeout 20m "$pkg" ;;
bench)       exec go test -count=1 -run '^$' -bench . -benchtime 1x -timeout 20m "$pkg" ;;
bench-short) exec go test -count=1 -short -run '^$' -bench . -benchtime 1x -timeout 20m "$pkg" ;;
*) echo "usage: $0 [test|race-node|bench|bench-short]" >&2; exit 2 ;;
esac
