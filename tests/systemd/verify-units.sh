#!/bin/bash
# SPDX-License-Identifier: MIT
# The systemd units (systemd/*.in, as configured into $BUILD/systemd):
# `systemd-analyze verify` finds nothing to say about any of them, and they
# agree with the defaults the programs were built with (common/paths.h,
# broker/config.h). Needs BUILD, SRC, BINDIR.
set -euo pipefail

if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze not installed (Debian package systemd)"
	exit 77
fi
fail() { echo "FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify insists that ExecStart= exists: point it at the build's programs.
for u in nfq-broker.service nfq-broker.socket nfq-broker-control.socket nfq-agent@.service nfq-holder.service; do
	[[ -f "$BUILD/systemd/$u" ]] || fail "$u was not generated"
	sed -e "s|$BINDIR/nfq-broker|$BUILD/broker/nfq-broker|g" \
	    -e "s|$BINDIR/nfq-agent|$BUILD/agent/nfq-agent|g" \
	    -e "s|$BINDIR/nfq-holder|$BUILD/holder/nfq-holder|g" "$BUILD/systemd/$u" >"$tmp/$u"
	grep -q '@[a-z]*@' "$tmp/$u" && fail "$u: unsubstituted $(grep -o '@[a-z]*@' "$tmp/$u")"
done
cd "$tmp"
# Warnings (unknown keys, bad values) leave the exit status 0: any output fails.
for u in nfq-broker.service nfq-broker.socket nfq-broker-control.socket nfq-agent@pod-a.service nfq-holder.service; do
	out=$(systemd-analyze verify --man=no "$u" 2>&1) || fail "verify $u: $out"
	[[ -z "$out" ]] || fail "verify $u said: $out"
	echo "ok: systemd-analyze verify $u"
done

# The units and the built-in defaults name the same files.
def() { sed -n "s/^#define $1 *//p" "$SRC/common/paths.h"; }
run=$(def NFQB_RUN_DIR | tr -d '"')
agent=$run/agent.sock control=$run/control.sock
config=$(def NFQB_PATH_CONFIG | tr -d '"')
[[ "$(def NFQB_PATH_AGENT_SOCK)" == 'NFQB_RUN_DIR "/agent.sock"' ]] || fail "paths.h: agent socket moved"
[[ "$(def NFQB_PATH_CONTROL_SOCK)" == 'NFQB_RUN_DIR "/control.sock"' ]] || fail "paths.h: control socket moved"
grep -qx "ListenSequentialPacket=$agent" nfq-broker.socket || fail "nfq-broker.socket does not listen on $agent"
grep -qx "ListenStream=$control" nfq-broker-control.socket || fail "nfq-broker-control.socket does not listen on $control"
grep -qx "FileDescriptorName=agent" nfq-broker.socket || fail "agent socket unnamed"
grep -qx "FileDescriptorName=control" nfq-broker-control.socket || fail "control socket unnamed"
mode=$(sed -n 's/^#define CFG_DEFAULT_MODE *//p' "$SRC/broker/config.h")
for s in nfq-broker.socket nfq-broker-control.socket; do
	grep -qx "SocketMode=$mode" "$s" || fail "$s: SocketMode is not broker's default $mode"
done
grep -qx "ExecStart=$BUILD/broker/nfq-broker --config $config" nfq-broker.service ||
	fail "nfq-broker.service does not start with $config"
grep -qx "RuntimeDirectory=${run#/run/}" nfq-broker.service || fail "RuntimeDirectory is not $run"
grep -qx "Type=notify" nfq-broker.service || fail "nfq-broker.service is not Type=notify"
# Every capability the broker may keep (broker/privs.c) is in the bounding set.
bset=$(sed -n 's/^CapabilityBoundingSet=//p' nfq-broker.service)
for cap in $(grep -o '{ CAP_[A-Z_]*' "$SRC/broker/privs.c" | cut -c3-); do
	[[ " $bset " == *" $cap "* ]] || fail "CapabilityBoundingSet lacks $cap (broker/privs.c needs it)"
done
echo "ok: units agree with common/paths.h, broker/config.h and broker/privs.c"
