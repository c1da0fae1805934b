#!/usr/bin/env bash
# scripts/idle-growth.sh [MINUTES]: how fast an idle ring's disk grows.
#
# Starts a fresh three-node ring of `flownode run` processes on loopback (laptop
# profile unless PROFILE says otherwise, one network: network init, admit, run,
# run --join), puts a few readings, lets it settle, then puts nothing for MINUTES
# (default 10) and
# prints the bytes of each data dir at the start and at the end, and the growth
# extrapolated to MB per day per node. It stops its processes and removes its
# temporary directory on any exit.
#
# Sizes are allocated bytes (du's block usage), not apparent sizes: Badger maps
# its memtable logs and value-log files at their full size up front, so their
# apparent size says nothing about what was written. The apparent size is
# printed too, for reference, and so are the store writes each node made since
# it started (GET /api/v1/node, storeWrites) at the start and at the end.
#
# Environment: BIN (default bin/flownode, built with `go build` when missing),
# PROFILE (laptop), PUTS readings put round the ring once it is up (30), SETTLE
# seconds after them before the first measurement (30),
# BASE_PORT (a random one in 20000-31999, below the ephemeral ports; the nodes use BASE_PORT+0..+8),
# KEEP=1 keeps the temporary directory (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
if ! [[ $minutes =~ ^[0-9]+$ ]] || [ "$minutes" -lt 1 ] || [ "$minutes" -gt 1440 ]; then
  echo "usage: $0 [MINUTES]   (1 to 1440, default 10)" >&2
  exit 2
fi
BIN=${BIN:-bin/flownode}
PROFILE=${PROFILE:-laptop}
SETTLE=${SETTLE:-30}
PUTS=${PUTS:-30}
BASE_PORT=${BASE_PORT:-$((20000 + RANDOM % 12000))} # below Linux's ephemeral ports (32768-)
nodes=3

if [ ! -x "$BIN" ]; then
  echo "building $BIN" >&2
  go build -o "$BIN" ./cmd/flownode
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/idle-growth.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    # Bounded: a node that ignores SIGTERM for 20 s is killed.
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then
    echo "kept $dir" >&2
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN" network init --dir "$dir/authority" --network idle-growth --profile "$PROFILE" >/dev/null
for i in $(seq 1 $nodes); do
  "$BIN" admit --network "$dir/authority" --data "$dir/d$i" >/dev/null
done

# start_node I [JOIN]: runs node I on ports BASE_PORT+3(I-1)+{0,1,2} and waits for
# its "is running" line.
start_node() {
  local i=$1 join=${2:-} off=$((3 * ($1 - 1)))
  local args=(run --data "$dir/d$i" --profile "$PROFILE" --log-level warn
    --http "127.0.0.1:$((BASE_PORT + off))" --coap "127.0.0.1:$((BASE_PORT + off + 1))"
    --coaps "127.0.0.1:$((BASE_PORT + off + 2))")
  [ -n "$join" ] && args+=(--join "$join")
  "$BIN" "${args[@]}" >"$dir/out$i" 2>"$dir/err$i" &
  pids+=($!)
  for _ in $(seq 1 300); do
    grep -q "is running" "$dir/out$i" 2>/dev/null && return 0
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "node $i exited:" >&2
      tail -20 "$dir/err$i" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "node $i printed no 'is running' line in 30 s" >&2
  tail -20 "$dir/err$i" >&2
  exit 1
}

start_node 1
for i in $(seq 2 $nodes); do
  start_node "$i" "127.0.0.1:$BASE_PORT"
done

# sizes prints "allocated apparent" bytes of node I's data dir.
sizes() {
  local d=$dir/d$1
  echo "$(du -s --block-size=1 "$d" | cut -f1) $(du -s --apparent-size --block-size=1 "$d" | cut -f1)"
}
# writes prints node I's store writes since it started (GET /api/v1/node), or "?".
writes() {
  local w
  w=$(curl -fsS --max-time 5 "http://127.0.0.1:$((BASE_PORT + 3 * ($1 - 1)))/api/v1/node" 2>/dev/null |
    grep -o '"storeWrites":[0-9]*' | cut -d: -f2) || true
  echo "${w:-?}"
}
alive() {
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a node exited during the measurement" >&2; exit 1; }
  done
}

# Some records first, so that the ring has blocks, replicas and checkpoints to keep
# (or not) while it idles.
for i in $(seq 1 "$PUTS"); do
  port=$((BASE_PORT + 3 * ((i - 1) % nodes)))
  curl -fsS --max-time 10 -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"thing\":\"idle-growth-$((i % 4))\",\"data\":{\"n\":$i}}" "http://127.0.0.1:$port/api/v1/records" ||
    echo "put $i through port $port failed" >&2
done
echo "ring of $nodes $PROFILE nodes up in $dir (ports from $BASE_PORT), $PUTS readings put; settling ${SETTLE}s"
sleep "$SETTLE"
alive
declare -a start_alloc start_app start_writes
for i in $(seq 1 $nodes); do
  read -r a b <<<"$(sizes "$i")"
  start_alloc[i]=$a start_app[i]=$b start_writes[i]=$(writes "$i")
done
echo "idle for $minutes min"
sleep $((minutes * 60))
alive

total=0
printf '%-5s %12s %12s %12s %12s %8s %8s %10s\n' node start_bytes end_bytes start_appar end_appar writes0 writes1 MB/day
for i in $(seq 1 $nodes); do
  read -r a b <<<"$(sizes "$i")"
  grow=$((a - start_alloc[i]))
  total=$((total + grow))
  printf '%-5s %12d %12d %12d %12d %8s %8s %10s\n' "d$i" "${start_alloc[i]}" "$a" "${start_app[i]}" "$b" \
    "${start_writes[i]}" "$(writes "$i")" \
    "$(awk -v g="$grow" -v m="$minutes" 'BEGIN { printf "%.2f", g / m * 1440 / 1e6 }')"
done
awk -v g="$total" -v m="$minutes" -v n="$nodes" \
  'BEGIN { printf "mean growth: %.2f MB/day per node (%d bytes in %d min over %d nodes)\n", g / n / m * 1440 / 1e6, g, m, n }'
