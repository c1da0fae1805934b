#!/bin/sh
# Tests of the OpenWrt init script (flownode.init) off the device: procd, UCI and
# logger are stubbed as shell functions that record what they are given, the
# script's start_service runs against UCI files (the shipped flownode.config among
# them) and a fake /proc/mounts, and the resulting procd instance is compared with
# what it should be, including every refusal (JFFS2, the overlay root, missing dir).
#
#   sh scripts/openwrt/test.sh        # exits non-zero on any mismatch
#
# It runs the cases under every shell it finds of sh, dash and `busybox sh` (the ash
# of OpenWrt); set REQUIRE_BUSYBOX=1 to fail when busybox is missing. It also runs
# `sh -n` and, when installed, `shellcheck -s sh`. With a flownode binary for this
# machine at bin/flownode (or FLOWNODE_BIN=path), it checks that `flownode run`
# accepts every flag the script produces.
# shellcheck disable=SC3043 # 'local' exists in busybox ash and dash
# shellcheck disable=SC2317 # the stubs are called by the init script
# shellcheck disable=SC2034 # PROG, MOUNTS are read by the init script

set -u
here=$(cd "$(dirname "$0")" && pwd -P)
init="$here/flownode.init"

# ---------------------------------------------------------------------------
# Driver: syntax checks, then this file again with --cases under each shell.
if [ "${1:-}" != --cases ]; then
	fail=0
	shells="sh"
	command -v dash >/dev/null 2>&1 && shells="$shells dash"
	if command -v busybox >/dev/null 2>&1; then
		shells="$shells busybox"
	elif [ "${REQUIRE_BUSYBOX:-0}" = 1 ]; then
		echo "FAIL: busybox not found (REQUIRE_BUSYBOX=1)"
		fail=1
	else
		echo "note: busybox not found; the cases run without busybox ash"
	fi
	for s in $shells; do
		run="$s"
		[ "$s" = busybox ] && run="busybox sh"
		if $run -n "$init" && $run -n "$here/test.sh"; then
			echo "ok   $run -n"
		else
			echo "FAIL $run -n"
			fail=1
		fi
	done
	if command -v shellcheck >/dev/null 2>&1; then
		if shellcheck -s sh "$init" "$here/test.sh"; then
			echo "ok   shellcheck -s sh"
		else
			echo "FAIL shellcheck -s sh"
			fail=1
		fi
	else
		echo "note: shellcheck not installed; skipped"
	fi
	for s in $shells; do
		run="$s"
		[ "$s" = busybox ] && run="busybox sh"
		echo "== cases under $run"
		$run "$here/test.sh" --cases || fail=1
	done
	if [ "$fail" = 0 ]; then echo "PASS"; else echo "FAIL"; fi
	exit "$fail"
fi

# ---------------------------------------------------------------------------
# Cases (run under one shell).

T=$(mktemp -d)
T=$(cd "$T" && pwd -P)
trap 'rm -rf "$T"' EXIT
failures=0

# A fake board: the root is overlayfs whose upper dir is on JFFS2 (OpenWrt's
# layout), an ext4 SD card, a tmpfs, a read-only ext4 stick.
mkdir -p "$T/etc" "$T/bin" "$T/flash/upper" "$T/flash/flownode" "$T/plain/flownode" \
	"$T/sd/flownode" "$T/sd2/flownode" "$T/ram/flownode" "$T/ro/flownode" "$T/ovl/flownode"
# Admitted data dirs (the init script refuses to start without a membership).
for d in flash plain sd sd2 ram ro ovl; do
	touch "$T/$d/flownode/network.json" "$T/$d/flownode/membership.pem"
done
mkdir -p "$T/sd/unadmitted"
ln -s "$T/flash/flownode" "$T/link"
ln -s "$T/sd/flownode" "$T/sdlink"
cat >"$T/mounts" <<EOF
rootfs / rootfs rw 0 0
/dev/root /rom squashfs ro,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,noatime 0 0
/dev/mtdblock6 $T/flash jffs2 rw,noatime 0 0
overlayfs:/overlay / overlay rw,noatime,lowerdir=/,upperdir=$T/flash/upper,workdir=$T/flash/work 0 0
/dev/mmcblk0p1 $T/sd ext4 rw,relatime 0 0
tmpfs $T/ram tmpfs rw,nosuid,nodev 0 0
/dev/sda1 $T/ro ext4 ro,relatime 0 0
overlayfs:/x $T/ovl overlay rw,lowerdir=/rom,upperdir=$T/flash/upper,workdir=$T/flash/work 0 0
EOF
PROG="$T/bin/flownode"
printf '#!/bin/sh\nexit 0\n' >"$PROG"
chmod +x "$PROG"
MOUNTS="$T/mounts"
OUT="$T/out" # what the stubs were given, one call per line
UCI_DIR="$T/etc"

# --- stubs of /lib/functions.sh (UCI) --------------------------------------
# config_load parses a UCI file the way uci does for the simple syntax used here:
# config/option/list lines, values in '' or "", full-line comments.
config_load() {
	local kw name val sec=""
	while read -r kw name val; do
		case "$kw" in "" | "#"*) continue ;; esac
		name=$(unquote "$name")
		val=$(unquote "$val")
		case "$kw" in
		config) sec="$val" ;;
		option) eval "CONFIG_${sec}_${name}=\$val" ;;
		list) eval "CONFIG_${sec}_${name}=\${CONFIG_${sec}_${name}:+\$CONFIG_${sec}_${name} }\$val" ;;
		*) echo "bad UCI line: $kw $name $val" >&2 ;;
		esac
	done <"$UCI_DIR/$1"
}
unquote() {
	case "$1" in
	\'*\') set -- "${1#\'}" && set -- "${1%\'}" ;;
	\"*\") set -- "${1#\"}" && set -- "${1%\"}" ;;
	esac
	printf '%s' "$1"
}
# As OpenWrt's: an empty or unset option gives the default.
config_get() { eval "$1=\${CONFIG_${2}_${3}:-\${4-}}"; }
config_get_bool() {
	local _tmp
	config_get _tmp "$2" "$3" "${4-}"
	case "$_tmp" in
	1 | on | true | yes | enabled) _tmp=1 ;;
	0 | off | false | no | disabled) _tmp=0 ;;
	*) _tmp="${4-}" ;;
	esac
	eval "$1=\$_tmp"
}

# --- stubs of /lib/functions/procd.sh and logger ---------------------------
record() { # WORD [ARGS..]: one line "WORD [arg] [arg].."
	{
		printf '%s' "$1"
		shift
		for a in "$@"; do printf ' [%s]' "$a"; done
		echo
	} >>"$OUT"
}
procd_open_instance() { record open_instance "$@"; }
procd_close_instance() { record close_instance "$@"; }
procd_set_param() { record "set_$1" "$@"; }
procd_append_param() { record "append_$1" "$@"; }
procd_add_reload_trigger() { record reload_trigger "$@"; }
procd_add_restart_mount_trigger() { record restart_mount_trigger "$@"; }
logger() { record logger "$@"; }

# shellcheck disable=SC1090,SC1091 # checked on its own
. "$init"

# --- helpers ------------------------------------------------------------------
fail() {
	echo "FAIL $case: $*"
	failures=$((failures + 1))
}
# uci NAME: the UCI file for the next case, from stdin
uci() { cat >"$UCI_DIR/flownode"; }
# start: run start_service in a subshell (fresh CONFIG_* each time); sets rc
start() {
	: >"$OUT"
	(start_service) >"$T/stdout" 2>"$T/stderr"
	rc=$?
}
# cmdline: the command procd was given, set_command plus append_command lines
cmdline() {
	sed -n -e 's/^set_command \[command\] //p' -e 's/^append_command \[command\] //p' "$OUT" |
		tr '\n' ' ' | sed 's/ $//'
}
want_rc() { [ "$rc" = "$1" ] || fail "start_service returned $rc, want $1 ($(cat "$T/stderr"))"; }
want_cmd() {
	local got
	got=$(cmdline)
	[ "$got" = "$1" ] || fail "command
  got:  $got
  want: $1"
}
want_line() { grep -qxF -- "$1" "$OUT" || fail "no call: $1 (calls: $(cat "$OUT"))"; }
want_no_instance() { ! grep -q '^open_instance' "$OUT" || fail "an instance was opened: $(cat "$OUT")"; }
want_log() { # PRIORITY TEXT: logger got a message with TEXT, and stderr has it too
	grep -F "logger [-t] [flownode] [-p] [daemon.$1]" "$OUT" | grep -qF -- "$2" ||
		fail "no daemon.$1 log with '$2' (calls: $(cat "$OUT"))"
	grep -qF -- "$2" "$T/stderr" || fail "stderr lacks '$2'"
}
refused() { # DATA_DIR TEXT: start refuses with a log containing TEXT
	printf "config flownode 'node'\n\toption enabled '1'\n\toption data_dir '%s'\n" "$1" | uci
	start
	want_rc 1
	want_no_instance
	want_log err "refusing to start"
	want_log err "$2"
}

# --- cases ----------------------------------------------------------------------
case="shipped config, data on the SD card"
sed "s|'/mnt/mmcblk0p1/flownode'|'$T/sd/flownode'|" "$here/flownode.config" | uci
grep -q "$T/sd/flownode" "$UCI_DIR/flownode" || fail "the shipped config has no data_dir '/mnt/mmcblk0p1/flownode'"
start
want_rc 0
want_cmd "[$PROG] [run] [--data] [$T/sd/flownode] [--profile] [gateway]"
want_line "open_instance"
want_line "set_env [env] [GOMEMLIMIT=24MiB]"
want_line "set_respawn [respawn] [300] [10] [5]"
want_line "set_term_timeout [term_timeout] [15]"
want_line "set_limits [limits] [nofile=4096 4096]"
want_line "set_stdout [stdout] [1]"
want_line "set_stderr [stderr] [1]"
want_line "set_file [file] [/etc/config/flownode]"
want_line "close_instance"
[ "$(tail -n 1 "$OUT")" = close_instance ] || fail "close_instance is not the last call"

case="every option, join as a UCI list"
uci <<EOF
config flownode 'node'
	option enabled 'yes'
	option data_dir "$T/sdlink"
	option http '0.0.0.0:8000'
	option coap ':5683'
	option coaps '0.0.0.0:5684'
	list join 'ws://192.168.1.10:8000'
	list join 'coap://192.168.1.11:5683'
	option seed '1'
	option rpc 'coap'
	option profile 'laptop'
	option network 'plant-7'
	option advertise '192.168.1.20'
	option replicas '2'
	option log_level 'debug'
	option memlimit '16MiB'
	option auth 'loopback'
	option open_reads '0'
	list allow_host 'gw21.plant.lan'
	list allow_host 'gw21'
	option allow_origin 'https://dash.plant.lan'
EOF
start
want_rc 0
want_cmd "[$PROG] [run] [--data] [$T/sdlink] [--profile] [laptop] [--http] [0.0.0.0:8000] [--coap] [:5683] [--coaps] [0.0.0.0:5684] [--join] [ws://192.168.1.10:8000,coap://192.168.1.11:5683] [--seed] [--rpc] [coap] [--network] [plant-7] [--advertise] [192.168.1.20] [--replicas] [2] [--log-level] [debug] [--auth] [loopback] [--open-reads=false] [--allow-host] [gw21.plant.lan,gw21] [--allow-origin] [https://dash.plant.lan]"
want_line "set_env [env] [GOMEMLIMIT=16MiB]"
full_cmd=$(cmdline)

case="join as a comma- and space-separated string"
uci <<EOF
config flownode 'node'
	option enabled '1'
	option data_dir '$T/sd/flownode'
	option join 'ws://10.0.0.1:8000, coap://10.0.0.2:5683  10.0.0.3:8000,'
EOF
start
want_rc 0
want_cmd "[$PROG] [run] [--data] [$T/sd/flownode] [--profile] [gateway] [--join] [ws://10.0.0.1:8000,coap://10.0.0.2:5683,10.0.0.3:8000]"

case="empty options fall back to defaults"
uci <<EOF
config flownode 'node'
	option enabled '1'
	option data_dir '$T/sd/flownode'
	option profile ''
	option memlimit ''
	option join ''
EOF
start
want_rc 0
want_cmd "[$PROG] [run] [--data] [$T/sd/flownode] [--profile] [gateway]"
want_line "set_env [env] [GOMEMLIMIT=24MiB]"

case="disabled"
uci <<EOF
config flownode 'node'
	option enabled '0'
	option data_dir '$T/sd/flownode'
EOF
start
want_rc 0
want_no_instance
want_log notice "enabled to 1"

case="no enabled option means disabled"
printf "config flownode 'node'\n\toption data_dir '%s'\n" "$T/sd/flownode" | uci
start
want_rc 0
want_no_instance

case="tmpfs is allowed, with a warning"
printf "config flownode 'node'\n\toption enabled '1'\n\toption data_dir '%s'\n" "$T/ram/flownode" | uci
start
want_rc 0
want_cmd "[$PROG] [run] [--data] [$T/ram/flownode] [--profile] [gateway]"
want_log warn "lost at reboot"

case="JFFS2 mount";               refused "$T/flash/flownode" "is on JFFS2 flash ($T/flash)"
case="JFFS2 through a symlink";   refused "$T/link" "is on JFFS2 flash"
case="overlay root over JFFS2";   refused "$T/plain/flownode" "is on JFFS2 flash ($T/flash)"
case="mount-point prefix trap";   refused "$T/sd2/flownode" "is on JFFS2 flash"
case="overlay mount over JFFS2";  refused "$T/ovl/flownode" "is on JFFS2 flash"
case="read-only mount";           refused "$T/ro/flownode" "read-only mount ($T/ro)"
case="missing data dir";          refused "$T/sd/nothere" "does not exist (is the SD card or USB stick mounted?"
case="relative data dir";         refused "data" "is not an absolute path"
case="no data_dir";               refused "" "no data_dir"
case="no membership";             refused "$T/sd/unadmitted" "holds no membership (network.json and membership.pem)"

case="unknown overlay upper dir"
sed "s|^overlayfs:/overlay / overlay .*|overlayfs:/overlay / overlay rw,noatime 0 0|" "$T/mounts" >"$T/mounts2"
MOUNTS="$T/mounts2" refused "$T/plain/flownode" "upper dir is unknown"

case="unreadable mounts file"
MOUNTS="$T/nomounts" refused "$T/sd/flownode" "cannot find the filesystem"

case="GOMEMLIMIT values"
for v in 24MiB 16777216 16777216B 512KiB 1GiB off; do
	printf "config flownode 'node'\n\toption enabled '1'\n\toption data_dir '%s'\n\toption memlimit '%s'\n" "$T/sd/flownode" "$v" | uci
	start
	want_rc 0
	want_line "set_env [env] [GOMEMLIMIT=$v]"
done
for v in 24M 24mib MiB 2.5MiB "24 MiB" -1; do
	printf "config flownode 'node'\n\toption enabled '1'\n\toption data_dir '%s'\n\toption memlimit '%s'\n" "$T/sd/flownode" "$v" | uci
	start
	want_rc 1
	want_no_instance
	want_log err "is not a GOMEMLIMIT value"
done

case="binary missing"
printf "config flownode 'node'\n\toption enabled '1'\n\toption data_dir '%s'\n" "$T/sd/flownode" | uci
PROG="$T/bin/none"
start
PROG="$T/bin/flownode"
want_rc 1
want_no_instance
want_log err "$T/bin/none is missing or not executable"

case="service_triggers"
printf "config flownode 'node'\n\toption enabled '1'\n\toption data_dir '%s'\n" "$T/sd/flownode" | uci
: >"$OUT"
(service_triggers) >"$T/stdout" 2>&1 || fail "service_triggers failed"
want_line "reload_trigger [flownode]"
want_line "restart_mount_trigger [$T/sd/flownode]"

case="stop_service"
: >"$OUT"
(stop_service) 2>/dev/null || fail "stop_service failed"
grep -q '^logger .*stopping' "$OUT" || fail "stop_service logs nothing"

case="START and USE_PROCD"
[ "${USE_PROCD:-}" = 1 ] || fail "USE_PROCD is not 1"
[ "${START:-0}" -ge 50 ] || fail "START=$START is early (network and block-mount come first)"

# The flags the script produces must be flags of `flownode run`: with a binary for
# this machine, `run <flags> --help` exits 0 only if each one parses.
case="flownode run accepts the flags"
bin="${FLOWNODE_BIN:-$here/../../bin/flownode}"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
	args=$(echo "$full_cmd" | sed -e 's/^\[[^]]*\] \[run\] //' -e 's/^\[//' -e 's/\]$//' -e 's/\] \[/\n/g')
	old_ifs=$IFS
	IFS='
'
	# shellcheck disable=SC2086 # one argument per line
	set -- $args
	IFS=$old_ifs
	if out=$("$bin" run "$@" --help 2>&1); then
		echo "ok   $bin run accepts: $*"
	else
		fail "$bin run rejects the script's flags: $(echo "$out" | tail -n 1)"
	fi
else
	echo "note: no flownode binary for this machine at $bin; flag check skipped"
fi

if [ "$failures" = 0 ]; then
	echo "ok   all cases"
	exit 0
fi
echo "$failures failure(s)"
exit 1
