#!/usr/bin/env bash
# The library as a user gets it: `meson install` into a scratch DESTDIR,
# then an example built only through `pkg-config libnfqb` against the
# shared library, which must export nfqb_* and nothing else.
set -euo pipefail
: "${BUILD:?}" "${SRC:?}" "${AGENT_STATIC:?}"
tmp=$(mktemp -d /tmp/nfqb-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

DESTDIR="$tmp/root" meson install -C "$BUILD" --quiet --no-rebuild >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }
pc=$(find "$tmp/root" -name libnfqb.pc | head -n1)
[[ -n "$pc" ]] || { echo "FAIL: libnfqb.pc not installed"; exit 1; }
so=$(find "$tmp/root" -name 'libnfqb.so.*' -type f | head -n1)
[[ -n "$so" ]] || { echo "FAIL: shared library not installed"; exit 1; }

export PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
# A sanitized libnfqb needs its runtime in the program that loads it.
san=$(meson introspect --buildoptions "$BUILD" | python3 -c \
	'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="b_sanitize"))')
sanflags=()
[[ "$san" == none ]] || sanflags=("-fsanitize=$san")
# shellcheck disable=SC2046 # pkg-config prints words on purpose
cc "${sanflags[@]}" -o "$tmp/print_and_accept" "$SRC/examples/print_and_accept.c" \
	"$SRC/examples/example-args.c" \
	$(pkg-config --cflags --libs libnfqb) ||
	{ echo "FAIL: example does not build through pkg-config"; exit 1; }
LD_LIBRARY_PATH=$(dirname "$so") "$tmp/print_and_accept" --help >/dev/null ||
	{ echo "FAIL: example linked to the installed library does not run"; exit 1; }
# ldd's output first, then grep: with pipefail, grep -q stopping early
# would make a SIGPIPE'd ldd fail the check now and then.
deps=$(LD_LIBRARY_PATH=$(dirname "$so") ldd "$tmp/print_and_accept")
grep -q "$(dirname "$so")/libnfqb.so" <<<"$deps" ||
	{ echo "FAIL: example is not linked to the shared library"; echo "$deps"; exit 1; }

# The in-tree programs and examples link the shared library too (a static
# link would hide a missing export from them). Not nfq-agent: its start is on
# the attach path, so it links the hand-off's object (agent/meson.build) and
# needs nothing but libc, or nothing at all with -Dstatic_agent; the
# hand-off API it calls is checked as exports below.
for prog in broker/nfq-broker examples/print_and_accept examples/own_loop \
	examples/mangle; do
	deps=$(ldd "$BUILD/$prog")
	grep -q "libnfqb\.so" <<<"$deps" ||
		{ echo "FAIL: $prog is not linked to the shared libnfqb"; echo "$deps"; exit 1; }
done
agent=$(find "$tmp/root" -name nfq-agent -type f | head -n1)
[[ -n "$agent" ]] || { echo "FAIL: nfq-agent not installed"; exit 1; }
# file(1) is not on a minimal machine: the ELF header's program headers say
# whether a loader is asked for (PT_INTERP), readelf is in binutils.
command -v readelf >/dev/null || { echo "FAIL: readelf (binutils) is missing"; exit 1; }
phdrs=$(readelf -l "$agent")
interp=$(grep -c 'INTERP' <<<"$phdrs" || true)
if [[ $AGENT_STATIC == 1 ]]; then
	((interp == 0)) || { echo "FAIL: -Dstatic_agent but nfq-agent asks for a loader"; exit 1; }
	hdr=$(readelf -h "$agent")
	grep -q 'DYN' <<<"$hdr" ||
		{ echo "FAIL: the static nfq-agent is not position-independent (-static-pie)"; exit 1; }
	ver=$("$agent" --version)
	grep -q '^nfq-agent ' <<<"$ver" ||
		{ echo "FAIL: the static nfq-agent does not run"; exit 1; }
else
	deps=$(ldd "$agent")
	! grep -qE "libnfqb|libmnl|libnetfilter_queue|libcap" <<<"$deps" ||
		{ echo "FAIL: nfq-agent loads more than libc"; echo "$deps"; exit 1; }
fi

exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {sub(/@.*/, "", $3); print $3}')
bad=$(grep -v '^nfqb_' <<<"$exported" || true)
[[ -z "$bad" ]] || { echo "FAIL: exported symbols outside nfqb_*:"; echo "$bad"; exit 1; }
for sym in nfqb_queue_open nfqb_queue_bind nfqb_packet_accept nfqb_agent_attach nfqb_agent_lease_wait nfqb_version \
	nfqb_kstats_read nfqb_agent_open_sockets nfqb_agent_drop_caps nfqb_agent_drop_privileges \
	nfqb_agent_lookup_user nfqb_agent_attach_swap nfqb_agent_detach; do
	grep -qx "$sym" <<<"$exported" || { echo "FAIL: $sym not exported"; exit 1; }
done
for hdr in nfqb/queue.h nfqb/agent.h nfqb/version.h; do
	[[ -n $(find "$tmp/root" -path "*include/$hdr") ]] || { echo "FAIL: $hdr not installed"; exit 1; }
done
echo "install: $(wc -l <<<"$exported") nfqb_* symbols exported, example built via pkg-config"
