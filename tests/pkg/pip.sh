#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `pip install .` into a fresh venv, offline: pyproject.toml builds the
# netfilterqueue module with meson-python and installs it with its stubs
# into the venv, where it imports from (not from the build tree), and the
# stubs name exactly what the module has.
#   PYTHON: the interpreter the project was configured with (meson passes it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${SRC:?}" "${PYTHON:?}"

"$PYTHON" -c 'import mesonpy' 2>/dev/null ||
	pkg_skip "meson-python is not installed for $PYTHON (apt-get install python3-mesonpy)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
	pkg_skip "$PYTHON cannot make a venv with pip (apt-get install python3-venv)"

pkg_tmp pip
pkg_copy_tree "$SRC" "$TMPD/src"
"$PYTHON" -m venv --system-site-packages "$TMPD/venv"
vpy=$TMPD/venv/bin/python

# A sanitized build of the project does not reach this one: the module is
# built plain, by meson-python, in the copy.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset ASAN_OPTIONS LD_PRELOAD
(cd "$TMPD/src" && timeout 150 "$vpy" -m pip install --no-build-isolation --no-index . \
	>"$TMPD/pip.log" 2>&1) || { tail -n 40 "$TMPD/pip.log"; pkg_fail "pip install . failed"; }

cd "$TMPD"   # nowhere near a build tree
"$vpy" - "$TMPD/venv" <<'PY'
import ast, os, sys
import netfilterqueue as m

venv = os.path.realpath(sys.argv[1])
where = os.path.realpath(m.__file__)
assert where.startswith(venv + os.sep), f"imported {where}, not from the venv {venv}"
assert callable(m.NetfilterQueue.bind) and callable(m.Packet.get_payload), "API missing"
assert m.LIBNFQB_VERSION.count(".") == 2, m.LIBNFQB_VERSION

stub = os.path.join(os.path.dirname(where), "netfilterqueue.pyi")
assert os.path.isfile(stub), f"no type stubs beside the module ({stub})"
tree = ast.parse(open(stub).read())

def names(body):
    out = set()
    for n in body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.AnnAssign):
            out.add(n.target.id)
    return out

def public(obj):
    return {n for n in dir(obj) if not n.startswith("_")}

top = names(tree.body)
want = public(m) | {"__version__"}
assert top - {"socket"} == want, f"stub vs module: only in stub {top - want}, only in module {want - top}"
for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
    got = names(cls.body) - {"__init__"}
    have = public(getattr(m, cls.name))
    assert got == have, f"{cls.name}: only in stub {got - have}, only in module {have - got}"
print(f"pip: netfilterqueue {m.__version__} (libnfqb {m.LIBNFQB_VERSION}) from {where}, stubs match")
PY
