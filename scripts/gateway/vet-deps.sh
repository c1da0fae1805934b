#!/usr/bin/env bash
# vet-deps.sh — the 32-bit guard on the dependencies: go vet's shift check over every
# non-std package the node links (go list -deps ./...), for GOARCH=mipsle GOMIPS=softfloat,
# with the patches of scripts/gateway/patches/ applied (through patched-go.sh). Clean
# means no dependency shifts a 32-bit int by its width or more, the bug that silently
# corrupted Badger on 32-bit targets.
#
#	scripts/gateway/vet-deps.sh              # what make vet-deps runs; must be clean
#	scripts/gateway/vet-deps.sh --unpatched  # the same on the module cache as is; flags
#	                                         # exactly the ristretto line the patch fixes:
#	  .../ristretto/v2@v2.2.0/z/allocator.go:290:42: (bufIdx + 1) (32 bits) too small for shift of 32
#
# Only -shift: the full vet suite on the dependencies reports other things that are not
# 32-bit bugs and not ours to fix (unsafeptr in x/sys and murmur3, copylocks in badger's
# protobuf types, unreachable code in protobuf). Only the packages' own files: go vet
# also checks _test.go files, and two dependencies' tests do not compile on 32-bit (see
# vetnotests/main.go), so vet runs through scripts/gateway/vetnotests, which drops them.
set -euo pipefail

GO=${GO:-go}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

patched=1
case ${1:-} in
'') ;;
--unpatched) patched= ;;
*) echo "usage: vet-deps.sh [--unpatched]" >&2; exit 2 ;;
esac

tool=$root/bin/.gateway/vetnotests
mkdir -p "$(dirname "$tool")"
env -u GOOS -u GOARCH -u GOMIPS CGO_ENABLED=0 "$GO" build -o "$tool" ./scripts/gateway/vetnotests
VETNOTESTS_VET=$("$GO" env GOTOOLDIR)/vet
export VETNOTESTS_VET GOOS=linux GOARCH=mipsle GOMIPS=softfloat

self=$(GOWORK=off "$GO" list -m)
deps=$(GOWORK=off "$GO" list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./... |
	grep -v -e "^$self\$" -e "^$self/" || true)
[ -n "$deps" ] || { echo "vet-deps: no dependencies found" >&2; exit 1; }
n=$(echo "$deps" | wc -l)

if [ -n "$patched" ]; then
	echo "vet-deps: go vet -shift over $n dependency packages, $GOARCH/$GOMIPS, patched"
	# shellcheck disable=SC2086
	"$here/patched-go.sh" vet -vettool="$tool" -shift $deps
else
	echo "vet-deps: go vet -shift over $n dependency packages, $GOARCH/$GOMIPS, unpatched"
	# shellcheck disable=SC2086
	GOWORK=off "$GO" vet -vettool="$tool" -shift $deps
fi
