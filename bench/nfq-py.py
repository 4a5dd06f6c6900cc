#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""nfq-py [--upstream] QUEUE - the Python consumers of scripts/bench: accept
every packet with the `netfilterqueue` module found on PYTHONPATH, which is
python-netfilterqueue's API either way: the project's own module on libnfqb
(built with -Dpython=true), or with --upstream python-netfilterqueue 1.1.0
itself (bench/upstream/, built by bench/upstream/build.sh). Which one was
imported is checked, so a wrong PYTHONPATH cannot measure the other. No
print per packet. Writes "ready queue=Q module=..." to stderr once bound;
SIGTERM ends it."""
import signal
import sys

import netfilterqueue
from netfilterqueue import NetfilterQueue


def accept(pkt):
    pkt.accept()


def main():
    args = sys.argv[1:]
    upstream = args[:1] == ["--upstream"]
    if upstream:
        args = args[1:]
    if len(args) != 1:
        sys.exit("usage: nfq-py.py [--upstream] QUEUE")
    queue = int(args[0])
    # upstream is a package around its Cython extension _impl; ours is
    # one extension module
    is_upstream = hasattr(netfilterqueue, "_impl")
    if is_upstream != upstream:
        sys.exit("nfq-py: imported %s, which is %s python-netfilterqueue"
                 % (netfilterqueue.__file__, "upstream" if is_upstream else "not upstream"))
    nfq = NetfilterQueue()
    nfq.bind(queue, accept, max_len=65536, sock_len=256 << 20)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready queue=%d module=%s" % (queue, netfilterqueue.__file__),
          file=sys.stderr, flush=True)
    try:
        nfq.run()
    finally:
        nfq.unbind()


if __name__ == "__main__":
    main()
