#!/usr/bin/env bash
# bench-compare.sh — the ring benchmarks of `make bench` at two revisions, side by
# side, alternating runs so that both see the same machine load:
#
#	scripts/bench-compare.sh BEFORE [AFTER] [ROUNDS]
#
# AFTER defaults to the working tree, ROUNDS to 2. Each revision is checked out in
# a temporary worktree (the working tree is used as is for AFTER when omitted). It
# prints each benchmark line prefixed with its revision, and never fails on a figure.
set -euo pipefail
GO=${GO:-go}
before=${1:?usage: bench-compare.sh BEFORE [AFTER] [ROUNDS]}
after=${2:-}
rounds=${3:-2}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/before" >/dev/null 2>&1 || true;
      [ -z "$after" ] || git -C "$root" worktree remove --force "$tmp/after" >/dev/null 2>&1 || true;
      rm -rf "$tmp"' EXIT
git -C "$root" worktree add -q --detach "$tmp/before" "$before"
dirs=("$tmp/before")
names=("$(git -C "$root" rev-parse --short "$before")")
if [ -n "$after" ]; then
	git -C "$root" worktree add -q --detach "$tmp/after" "$after"
	dirs+=("$tmp/after")
	names+=("$(git -C "$root" rev-parse --short "$after")")
else
	dirs+=("$root")
	names+=("worktree")
fi
benches=(
	"./node/ RingIngest 200x"
	"./node/ ReadByTxID 2000x"
	"./node/ RestoreCopies 1x"
	"./chord/driver/ Lookup 2000x"
)
echo "== $(nproc) cores, $($GO version), rounds=$rounds"
for r in $(seq 1 "$rounds"); do
	for b in "${benches[@]}"; do
		read -r pkg name times <<<"$b"
		for i in 0 1; do
			(cd "${dirs[$i]}" && $GO test -run '^$' -bench "^Benchmark$name\$" -benchtime "$times" -count=1 "$pkg" 2>&1) |
				grep -E '^Benchmark' | sed "s/^/${names[$i]} r$r  /" || true
		done
	done
done
