#!/usr/bin/env bash
# Provisions the compose ring (compose.yaml) as one permissioned network before
# it starts; make ring-up and scripts/ring/test.sh call it before `compose up`.
#
# - The network's authority is created once, on the host, in $RING_DIR/authority
#   (default .ring/authority, git-ignored): authority.key never enters an image
#   or a volume. Delete $RING_DIR to start a new network.
# - Each node's container is created (`compose up --no-start`, which creates its
#   volume), and a node whose volume holds no membership yet is admitted: flownode
#   admit writes node.key, network.json and membership.pem into a private staging
#   directory on the host, which is streamed into the volume as a tar owned by the
#   image's user (65532; the image is FROM scratch, so there is no cp or chown in
#   it: docker cp does the copy into the stopped container), then deleted. The
#   node key lives only in the volume from then on.
# - An admin token for every Thing is written to $RING_DIR/token (0600): the
#   operator's and the drills' credential.
# Re-running it is harmless: members are left as they are.
set -euo pipefail
cd "$(dirname "$0")/../.."
COMPOSE=${COMPOSE:-docker-compose -p flownode -f compose.yaml}
BIN=${BIN:-bin/flownode}
RING_DIR=${RING_DIR:-.ring}
NETWORK=${NETWORK:-flownode-ring}
NODES=${NODES:-node1 node2 node3 node4 node5}
NODE_USER=65532 # the image's USER

auth=$RING_DIR/authority
mkdir -p "$RING_DIR"
chmod 700 "$RING_DIR"
if [ ! -f "$auth/authority.key" ]; then
  # laptop and gateway share their mining rules, so one network serves both.
  "$BIN" network init --dir "$auth" --network "$NETWORK" --profile laptop
  rm -f "$RING_DIR/token"
fi
# The operator's credential: clients reach the nodes through Docker's port
# mapping, not from the nodes' loopback, so every write and verify needs one.
# export FLOWNODE_TOKEN=$(cat .ring/token) for flownode's client commands and
# the drills; curl -H "Authorization: Bearer $(cat .ring/token)".
if [ ! -s "$RING_DIR/token" ]; then
  (umask 077; "$BIN" token create --network "$auth" --thing '*' --scope admin --note "compose ring operator" --quiet > "$RING_DIR/token")
  echo "wrote the operator's admin token to $RING_DIR/token"
fi

$COMPOSE up --no-start
stage=
trap '[ -n "$stage" ] && rm -rf "$stage"' EXIT
for n in $NODES; do
  c=flownode-$n
  if docker cp "$c:/data/membership.pem" - >/dev/null 2>&1; then
    echo "$n: already a member (its volume holds membership.pem)"
    continue
  fi
  stage=$(mktemp -d "$RING_DIR/stage.XXXXXX")
  echo -n "$n: "
  "$BIN" admit --network "$auth" --data "$stage"
  tar -C "$stage" --owner=$NODE_USER --group=$NODE_USER --numeric-owner -cf - . | docker cp - "$c:/data"
  rm -rf "$stage"
  stage=
done
