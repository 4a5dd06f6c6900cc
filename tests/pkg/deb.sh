#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages as a user gets them: dpkg-buildpackage -b from a
# copy of the source tree (the checkout is never written to), lintian with
# no error, then the packages unpacked into a scratch root (dpkg -x; the
# machine's own packages are not touched) and used from there: the example
# program built against the installed headers and run against the
# installed libnfqb, `nfq-broker --check` on the installed example config,
# the man pages, the Python module.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${SRC:?}"

for tool in dpkg-buildpackage dh lintian cc; do
	command -v "$tool" >/dev/null ||
		pkg_skip "$tool not installed (apt-get install dpkg-dev debhelper lintian dh-python build-essential)"
done
# Build-Depends that are missing: the build would stop with a list of them.
missing=$(cd "$SRC" && { dpkg-checkbuilddeps -B -P nocheck 2>&1 || true; } |
	sed -n 's/.*Unmet build dependencies: //p')
[[ -z "$missing" ]] || pkg_skip "unmet build dependencies: $missing"

pkg_tmp deb
pkg_copy_tree "$SRC" "$TMPD/src"
# The build must not see the test's environment (a sanitizer build's
# preload and options, meson's test variables).
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS NFQB_SANITIZE NFQB_ASAN_LIB MESON_TESTTHREADS
export DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)"

t0=$SECONDS
(cd "$TMPD/src" && timeout 400 dpkg-buildpackage -b -us -uc >"$TMPD/build.log" 2>&1) ||
	{ tail -n 60 "$TMPD/build.log"; pkg_fail "dpkg-buildpackage -b failed"; }
echo "built in $((SECONDS - t0)) s:"
shopt -s nullglob
debs=("$TMPD"/*.deb)
for want in libnfqb1 libnfqb-dev nfq-broker python3-netfilterqueue-nfqb; do
	compgen -G "$TMPD/${want}_*.deb" >/dev/null || pkg_fail "package $want was not built"
done
for d in "${debs[@]}"; do echo "  $(basename "$d")"; done

# One version: the changelog's is meson.build's.
ver=$(cd "$TMPD/src" && dpkg-parsechangelog -S Version)
mver=$(sed -n "s/^  version: '\(.*\)',$/\1/p" "$TMPD/src/meson.build" | head -n1)
[[ "$ver" == "$mver" ]] || pkg_fail "debian/changelog says $ver, meson.build says $mver"

t0=$SECONDS
changes=("$TMPD"/*.changes)
lintian --fail-on error --no-tag-display-limit "${changes[0]}" >"$TMPD/lintian.log" 2>&1 ||
	{ cat "$TMPD/lintian.log"; pkg_fail "lintian reports errors"; }
echo "lintian in $((SECONDS - t0)) s: $(grep -c '^E:' "$TMPD/lintian.log" || true) errors," \
	"$(grep -c '^W:' "$TMPD/lintian.log" || true) warnings"
grep '^[EW]:' "$TMPD/lintian.log" | sed 's/^/  /' || true

# The Python package must not shadow Debian's netfilterqueue silently.
py_deb=$(compgen -G "$TMPD/python3-netfilterqueue-nfqb_*.deb")
conflicts=$(dpkg-deb -f "$py_deb" Conflicts)
grep -qw python3-netfilterqueue <<<"$conflicts" ||
	pkg_fail "python3-netfilterqueue-nfqb does not conflict with python3-netfilterqueue"

root=$TMPD/root
for d in "${debs[@]}"; do dpkg -x "$d" "$root"; done
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=$root/usr/lib/$arch
[[ -L "$libdir/libnfqb.so.1" ]] || pkg_fail "libnfqb.so.1 not in libnfqb1"

# The example and a version check, built against what the packages installed.
cat >"$TMPD/ver.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <nfqb/queue.h>
int main(void)
{
	printf("%s %s\n", NFQB_VERSION_STRING, nfqb_version());
	return strcmp(NFQB_VERSION_STRING, nfqb_version()) != 0;
}
C
cflags=(-I"$root/usr/include" -L"$libdir" -Wl,-rpath-link,"$libdir")
cc "${cflags[@]}" -o "$TMPD/print_and_accept" "$TMPD/src/examples/print_and_accept.c" \
	"$TMPD/src/examples/example-args.c" -lnfqb || pkg_fail "the example does not build against libnfqb-dev"
cc "${cflags[@]}" -o "$TMPD/ver" "$TMPD/ver.c" -lnfqb || pkg_fail "nfqb_version() does not link"
export LD_LIBRARY_PATH=$libdir
deps=$(ldd "$TMPD/print_and_accept")
grep -q "$libdir/libnfqb.so.1" <<<"$deps" ||
	{ echo "$deps"; pkg_fail "the example does not load the packaged libnfqb"; }
"$TMPD/print_and_accept" --help >/dev/null || pkg_fail "the example does not run"
read -r hver rver < <("$TMPD/ver") || pkg_fail "header and library versions differ"
[[ "$rver" == "$mver" ]] || pkg_fail "nfqb_version() is $rver, meson.build says $mver"
# The whole output first: grep -q stopping early would SIGPIPE objdump (pipefail).
dynsyms=$(objdump -T "$libdir/libnfqb.so.1")
grep -qE 'NFQB_1\.2 +nfqb_version$' <<<"$dynsyms" ||
	pkg_fail "nfqb_version is not in version node NFQB_1.2"

bin=$root/usr/bin
out=$("$bin/nfq-broker" --version)
[[ "$out" == "nfq-broker $mver" ]] || pkg_fail "nfq-broker --version says '$out'"
cfg=$root/usr/share/doc/nfq-broker/examples/demo.json
[[ -f "$cfg" ]] || cfg=$cfg.gz
[[ -f "$cfg" ]] || pkg_fail "no example config in nfq-broker"
[[ "$cfg" != *.gz ]] || { gzip -dc "$cfg" >"$TMPD/demo.json"; cfg=$TMPD/demo.json; }
out=$("$bin/nfq-broker" --check --config "$cfg") || pkg_fail "nfq-broker --check on $cfg: $out"
[[ "$out" == ok ]] || pkg_fail "nfq-broker --check printed '$out'"
for p in nfq-agent nfq-ctl nfq-cni nfq-holder; do "$bin/$p" --version >/dev/null || pkg_fail "$p does not run"; done

for page in man8/nfq-broker.8 man8/nfq-agent.8 man8/nfq-ctl.8 man8/nfq-cni.8 man8/nfq-holder.8 \
	man5/nfq-broker.json.5 man3/libnfqb.3; do
	f=$root/usr/share/man/$page.gz
	[[ -f "$f" ]] || pkg_fail "man page $page not packaged"
done

pydir=$(compgen -G "$root/usr/lib/python3*/dist-packages" | head -n1)
compgen -G "$pydir/netfilterqueue.pyi" >/dev/null || pkg_fail "no type stubs packaged"
where=$(cd "$TMPD" && PYTHONPATH=$pydir "${PYTHON:-python3}" -c 'import netfilterqueue; print(netfilterqueue.__file__)') ||
	pkg_fail "the packaged Python module does not import"
[[ "$where" == "$pydir"/* ]] || pkg_fail "imported $where, not the packaged module"
echo "deb: ${#debs[@]} packages, version $ver; example, nfq-broker --check, man pages, python ok"
