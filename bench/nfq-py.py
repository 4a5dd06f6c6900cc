#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""nfq-py QUEUE - the Python consumer of scripts/bench: accept every packet
with the `netfilterqueue` module (python-netfilterqueue's API; here the
project's own module on libnfqb, built with -Dpython=true: upstream
python-netfilterqueue is not packaged in Debian). No print per packet.
Writes "ready queue=Q" to stderr once bound; SIGTERM ends it."""
import signal
import sys

from netfilterqueue import NetfilterQueue


def accept(pkt):
    pkt.accept()


def main():
    queue = int(sys.argv[1])
    nfq = NetfilterQueue()
    nfq.bind(queue, accept, max_len=65536, sock_len=256 << 20)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready queue=%d" % queue, file=sys.stderr, flush=True)
    try:
        nfq.run()
    finally:
        nfq.unbind()


if __name__ == "__main__":
    main()
