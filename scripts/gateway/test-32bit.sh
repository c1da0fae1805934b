#!/usr/bin/env bash
# test-32bit.sh — runs the store's tests on a 32-bit build, with the gateway patches
# (patched-go.sh). Where the kernel runs 32-bit x86 binaries, GOARCH=386 natively
# (fast). Kernels built without IA32 emulation (some VM kernels, CI's among them)
# answer "exec format error" to every 386 binary, and qemu-i386 cannot run Go's 386
# runtime; there the tests run as the gateway's own target, GOARCH=mipsle
# GOMIPS=softfloat, under qemu-mipsel-static (slower, and stricter: it also catches
# unaligned accesses). Extra arguments go to go test.
set -euo pipefail
GO=${GO:-go}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'package main\n\nfunc main() {}\n' >"$dir/main.go"
printf 'module probe\n\ngo 1.21\n' >"$dir/go.mod"
(cd "$dir" && CGO_ENABLED=0 GOARCH=386 GOFLAGS= GOWORK=off "$GO" build -o probe .)

if "$dir/probe" 2>/dev/null; then
	echo "test-32bit: GOARCH=386, native"
	GOARCH=386 GO=$GO "$here/patched-go.sh" test -count=1 "$@" ./store/
	exit
fi
command -v qemu-mipsel-static >/dev/null ||
	{ echo "test-32bit: this kernel cannot run 386 binaries, and qemu-mipsel-static is missing: apt-get install qemu-user-static" >&2; exit 1; }
echo "test-32bit: this kernel cannot run 386 binaries; GOARCH=mipsle GOMIPS=softfloat under qemu-mipsel-static"
FLOWNODE_TEST_EXEC=qemu-mipsel-static GOARCH=mipsle GOMIPS=softfloat GO=$GO \
	"$here/patched-go.sh" test -count=1 -timeout 30m -exec qemu-mipsel-static "$@" ./store/
