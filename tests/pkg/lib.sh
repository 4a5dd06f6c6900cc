# SPDX-License-Identifier: MIT
# Shared by the packaging tests (tests/pkg/*.sh): a scratch directory
# removed on exit, and a copy of the source tree to build from, so a test
# never writes into the checkout.

pkg_tmp() {   # PREFIX: make $TMPD, removed on exit
	TMPD=$(mktemp -d "/tmp/nfqb-$1-XXXXXX")
	trap 'rm -rf "$TMPD"' EXIT
}

pkg_skip() { echo "SKIP: $*"; exit 77; }
pkg_fail() { echo "FAIL: $*"; exit 1; }

# pkg_copy_tree SRC DEST: the files git knows of (tracked and new, not
# ignored; what the working tree has now, uncommitted edits included), or
# without git everything but build directories.
pkg_copy_tree() {
	local src=$1 dest=$2
	mkdir -p "$dest"
	if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(cd "$src" && git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done |
			tar --null -cf - -T -) | tar -xf - -C "$dest"
	else
		tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$dest"
	fi
	[[ -f "$dest/meson.build" ]] || pkg_fail "copying the source tree to $dest"
}
