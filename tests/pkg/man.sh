#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every man page given renders with `man --warnings -l` at 80 columns
# without one warning, and has its NAME and SEE ALSO. man(1) exits 0 on
# troff warnings, so stderr is what counts; a page with a known mistake
# must make it speak, or the check could never fail.
set -euo pipefail
command -v man >/dev/null || { echo "SKIP: man not installed (apt-get install man-db)"; exit 77; }
[[ $# -gt 0 ]] || { echo "FAIL: no pages given"; exit 1; }
tmp=$(mktemp -d /tmp/nfqb-man-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export MANWIDTH=80 MAN_KEEP_FORMATTING=0 LC_ALL=C.UTF-8

render() {   # PAGE: stdout to $tmp/out, stderr to $tmp/err; man's status
	local rc=0
	man --warnings -l "$1" >"$tmp/raw" 2>"$tmp/err" </dev/null || rc=$?
	col -bx <"$tmp/raw" >"$tmp/out"   # bold and underline as plain text
	return $rc
}

printf '.TH BAD 1\n.SH NAME\nbad \\- bad\n.nosuchmacro\n' >"$tmp/bad.1"
render "$tmp/bad.1" || true
[[ -s "$tmp/err" ]] || { echo "FAIL: man --warnings is silent on a broken page: the check is blind"; exit 1; }

fail=0
for page in "$@"; do
	name=$(basename "$page")
	if ! render "$page"; then
		echo "FAIL: $name: man exits non-zero"; cat "$tmp/err"; fail=1; continue
	fi
	if [[ -s "$tmp/err" ]]; then
		echo "FAIL: $name: warnings:"; cat "$tmp/err"; fail=1; continue
	fi
	bad=0
	for sect in NAME 'SEE ALSO'; do
		grep -q "^$sect\$" "$tmp/out" || { echo "FAIL: $name: no $sect section"; bad=1; }
	done
	width=$(wc -L <"$tmp/out")
	[[ $width -le 80 ]] || { echo "FAIL: $name: a line of $width columns"; bad=1; }
	[[ $bad -eq 0 ]] || { fail=1; continue; }
	echo "ok: $name ($(wc -l <"$tmp/out") lines, $width columns)"
done

# libnfqb(3) names every function the public headers declare.
if [[ -n "${SRC:-}" ]]; then
	for fn in $(grep -ohE '\bnfqb_[a-z0-9_]+\(' "$SRC"/include/nfqb/*.h "$SRC"/include/nfqb/*.h.in |
		tr -d '(' | sort -u); do
		grep -qE "\b$fn\*?\(\)" "$SRC/man/libnfqb.3.scd" ||
			{ echo "FAIL: libnfqb(3) does not name $fn()"; fail=1; }
	done
fi
exit $fail
