#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/upstream/build.sh OUTDIR - build the vendored python-netfilterqueue
# (bench/upstream/python-netfilterqueue, upstream's 1.1.0 release, untouched)
# as upstream's setup.py would: Cython, then one C extension linked with
# libnetfilter_queue. The package lands in OUTDIR/netfilterqueue, for
# PYTHONPATH=OUTDIR. Rebuilds only when a source is newer than the module.
# Needs cython3, python3-dev and libnetfilter-queue-dev; exits 3 naming
# what is missing, so that scripts/bench can skip the row and say why.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$here/python-netfilterqueue/netfilterqueue
out=${1:?usage: build.sh OUTDIR}
py=${PYTHON:-python3}

# the interpreter that will import it says where its headers are and
# what its extensions are called (a venv's python included)
inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
suffix=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null ||
	true)
missing=()
command -v cython3 >/dev/null || missing+=(cython3)
[[ -n $inc && -e $inc/Python.h && -n $suffix ]] || missing+=(python3-dev)
pkg-config --exists libnetfilter_queue 2>/dev/null || missing+=(libnetfilter-queue-dev)
if ((${#missing[@]})); then
	echo "python-netfilterqueue not built: missing ${missing[*]}" >&2
	exit 3
fi

mod=$out/netfilterqueue/_impl$suffix
if [[ -e $mod && -z $(find "$src" "$0" -newer "$mod" -print -quit) ]]; then
	exit 0
fi
mkdir -p "$out/netfilterqueue"
cp "$src/__init__.py" "$src/_version.py" "$out/netfilterqueue/"
# setup.py's compiler directive; _impl.pxd is found beside _impl.pyx
cython3 -3 --directive language_level=3str -o "$out/netfilterqueue/_impl.c" "$src/_impl.pyx"
# shellcheck disable=SC2046 # pkg-config's flags are words
${CC:-cc} -O2 -g -DNDEBUG -fwrapv -fno-strict-aliasing -fPIC -shared -w -I"$inc" \
	"$out/netfilterqueue/_impl.c" $(pkg-config --cflags --libs libnetfilter_queue) \
	-o "$mod.tmp"
mv "$mod.tmp" "$mod"
