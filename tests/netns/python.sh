#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The netfilterqueue Python module (python/): pytest runs tests/python
# inside a namespace created here, with a veth peer namespace for traffic
# that crosses an interface and a third namespace for the upstream README
# examples, which run unchanged. The built module is found under
# $BUILD/python. PYTHON (set by meson) is the interpreter the module was
# built for. Skipped (77) only when it has no pytest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init python

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || nt_skip "$PY not installed"
$PY -c 'import pytest' 2>/dev/null ||
	nt_skip "pytest is not installed for $PY (apt-get install python3-pytest)"

MODDIR=$BUILD/python
compgen -G "$MODDIR/netfilterqueue*.so" >/dev/null ||
	nt_fail "netfilterqueue module not built in $MODDIR (configure with -Dpython=true)"

nt_ns_new NS_Q q
nt_ns_new NS_PEER peer
nt_ns_new NS_EX ex
nt_veth "$NS_Q" q0 10.231.0.1/24,fd00:231::1/64 "$NS_PEER" p0 10.231.0.2/24,fd00:231::2/64

# An ASan build of the module needs the runtime loaded first into python.
san_env=()
if [[ "${NFQB_SANITIZE:-0}" == 1 && -n "${NFQB_ASAN_LIB:-}" ]]; then
	san_env=("LD_PRELOAD=$NFQB_ASAN_LIB"
		 "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
		 "NFQB_PY_PRELOAD=$NFQB_ASAN_LIB")
fi

nt_log "pytest in $NS_Q (peer $NS_PEER, examples $NS_EX)"
rc=0
ip netns exec "$NS_Q" env \
	PYTHONPATH="$MODDIR" PYTHONDONTWRITEBYTECODE=1 \
	NFQB_PY_NS="$NS_Q" NFQB_PY_PEER="$NS_PEER" NFQB_PY_EXNS="$NS_EX" \
	NFQB_PY_Q_DEV=q0 NFQB_PY_PEER_DEV=p0 \
	NFQB_PY_Q4=10.231.0.1 NFQB_PY_PEER4=10.231.0.2 \
	NFQB_PY_Q6=fd00:231::1 NFQB_PY_PEER6=fd00:231::2 \
	"${san_env[@]}" \
	timeout -k 5 240 "$PY" -m pytest -q -p no:cacheprovider -rs \
	"$SRC/tests/python" || rc=$?
[[ $rc -eq 0 ]] || nt_fail "pytest exited with status $rc"
