#!/usr/bin/env bash
# make stress: runs the live-ring packages RUNS times in a row (default 20)
# with the race detector, keeps each run's log in bin/stress/, and prints
# the pass count and, for each failed run, its first failure line. Exits 1
# when any run failed. PKGS and GOFLAGS_STRESS override what runs.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
RUNS=${RUNS:-20}
PKGS=${PKGS:-./chord/... ./node/ ./cmd/flownode/}
out=bin/stress
rm -rf "$out" && mkdir -p "$out"

# Build the test binaries once, so that every run tests the same code.
$GO test -race -count=1 -run '^$' $PKGS >/dev/null || { echo "stress: the packages do not build"; exit 2; }

pass=0
failures=()
for i in $(seq 1 "$RUNS"); do
  log="$out/run-$i.log"
  start=$(date +%s)
  if $GO test -race -count=1 ${GOFLAGS_STRESS:-} $PKGS >"$log" 2>&1; then
    pass=$((pass + 1))
    echo "run $i/$RUNS: ok ($(( $(date +%s) - start )) s)"
  else
    # The first failure line: a test's FAIL with the message under it, a
    # panic, a data race, or a build error.
    first=$(grep -m1 -A1 -E '^\s*--- FAIL|^panic:|WARNING: DATA RACE|^FAIL\s' "$log" | tr '\n' ' ' | cut -c1-300)
    failures+=("run $i: $first")
    echo "run $i/$RUNS: FAIL ($(( $(date +%s) - start )) s): $first"
  fi
done
echo "stress: $pass of $RUNS runs passed ($PKGS)"
for f in "${failures[@]}"; do echo "  $f"; done
[ "$pass" -eq "$RUNS" ]
