#!/usr/bin/env bash
# make ring-test: starts a fresh five-node ring from compose.yaml (the image
# must be built: make image), runs the fault drills (scripts/drills) against
# it, and removes it. On failure it prints the tail of every node's log. The
# exit status is the drills'.
set -euo pipefail
cd "$(dirname "$0")/../.."
COMPOSE=${COMPOSE:-docker-compose -p flownode -f compose.yaml}
GO=${GO:-go}

cleanup() { $COMPOSE down -v --remove-orphans >/dev/null 2>&1 || true; }
logs() {
  for c in $(docker ps -a --filter name=flownode-node --format '{{.Names}}' | sort); do
    echo "== last lines of $c"
    docker logs --tail 40 "$c" 2>&1 | cut -c1-400
  done
}
trap cleanup EXIT

cleanup
started=$(date +%s)
COMPOSE=$COMPOSE scripts/ring/provision.sh
$COMPOSE up -d
scripts/ring/wait-healthy.sh 120
echo "ring up and healthy in $(( $(date +%s) - started )) s"
$GO build -o bin/drills ./scripts/drills
FLOWNODE_TOKEN=$(cat "${RING_DIR:-.ring}/token")
export FLOWNODE_TOKEN
if ! bin/drills "$@"; then
  logs
  exit 1
fi
