#!/usr/bin/env bash
# Waits until every flownode-node* container reports healthy (its HEALTHCHECK,
# `flownode healthcheck`, passes), at most $1 seconds.
set -euo pipefail
limit=${1:-120}
for ((i = 0; i < limit; i++)); do
  states=$(docker ps -a --filter name=flownode-node --format '{{.Names}} {{.Status}}')
  if [ -n "$states" ] && ! grep -qv '(healthy)' <<<"$states"; then
    echo "$states" | sort
    exit 0
  fi
  sleep 1
done
echo "ring not healthy after ${limit}s:" >&2
echo "$states" >&2
exit 1
