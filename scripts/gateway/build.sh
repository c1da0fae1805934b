#!/usr/bin/env bash
# build.sh OUT LDFLAGS — the MIPS gateway binary (what make gateway runs): linux/mipsle
# softfloat, static (CGO_ENABLED=0), stripped, -trimpath, with the 32-bit fixes of
# scripts/gateway/patches/ applied to the dependencies through go build -overlay (see
# patched-go.sh). Prints the binary's size and its xz -9 size (what an OpenWrt squashfs
# image roughly pays for it).
set -euo pipefail

GO=${GO:-go}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 2 ] || { echo "usage: build.sh OUT LDFLAGS" >&2; exit 2; }
out=$1
name=$1
ldflags=$2
case $ldflags in *-s*-w* | *-w*-s*) ;; *) echo "build.sh: LDFLAGS must strip (-s -w): $ldflags" >&2; exit 2 ;; esac
command -v xz >/dev/null || { echo "build.sh: needs xz (apt-get install xz-utils)" >&2; exit 1; }
case $out in /*) ;; *) out=$PWD/$out ;; esac # patched-go.sh runs go from the repo root
mkdir -p "$(dirname "$out")"

CGO_ENABLED=0 GOOS=linux GOARCH=mipsle GOMIPS=softfloat \
	"$here/patched-go.sh" build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/flownode

# The build must have gone through the patched copies (a go.work replace each).
mods=$("$GO" version -m "$out")
while read -r m _; do
	case $m in '' | '#'*) continue ;; esac
	grep -q "=>.*mod-${m//\//_}@" <<<"$mods" || { echo "build.sh: $out was not built with the patched $m" >&2; exit 1; }
done <"$here/patches/series"

size=$(stat -c %s "$out")
xzsize=$(xz -9 -T1 -c "$out" | wc -c)
awk -v f="$name" -v s="$size" -v x="$xzsize" 'BEGIN {
	printf "%s: %d bytes (%.1f MB), xz -9: %d bytes (%.1f MB)\n", f, s, s / 1e6, x, x / 1e6 }'
