# SPDX-License-Identifier: MIT
"""run(): callback exceptions propagate, signals interrupt a blocking run,
garbage collection unbinds."""
import gc
import os
import signal
import socket
import sys
import threading
import time
import weakref

import pytest

from netfilterqueue import NetfilterQueue
from helpers import Deadline, deadline, kstat, pump, send_udp, udp_data, wait_until


class Boom(Exception):
    pass


def test_exception_propagates_from_run_nonblocking(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    pkts = []

    def cb(pkt):
        pkts.append(pkt)
        if udp_data(pkt.get_payload()) == b"boom":
            raise Boom("test")
        pkt.accept()

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"boom", b"after")
    with pytest.raises(Boom, match="test") as ei:
        pump(nfq, lambda: len(pkts) == 2)
    assert any(e.name == "cb" for e in ei.traceback)
    # The failing packet can still be decided; its payload was not retained.
    with pytest.raises(RuntimeError, match="Payload data is no longer"):
        pkts[0].get_payload()
    pkts[0].accept()
    with pytest.raises(RuntimeError, match="Verdict already given for this packet"):
        pkts[0].drop()
    # The queue goes on with the next packet.
    assert pump(nfq, lambda: len(pkts) == 2)
    assert rx.collect(2) == [b"boom", b"after"]


def test_exception_propagates_from_blocking_run(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    count = []

    def cb(pkt):
        pkt.accept()
        count.append(1)
        if len(count) == 3:
            raise Boom("third")

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"1", b"2", b"3", b"4")
    with deadline(5), pytest.raises(Boom, match="third") as ei:
        nfq.run()
    assert any("NetfilterQueue.run" in e.name for e in ei.traceback)
    assert len(count) == 3
    assert rx.collect(3) == [b"1", b"2", b"3"]
    # The fourth waits for the next run.
    assert pump(nfq, lambda: len(count) == 4)
    assert rx.collect(1) == [b"4"]


def test_keyboard_interrupt_from_signal_handler(qnum):
    nfq = NetfilterQueue()
    nfq.bind(qnum, lambda p: None)

    def raise_alarm(sig, frame):
        raise KeyboardInterrupt("brrrrrring!")

    old = signal.signal(signal.SIGALRM, raise_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt, match="brrrrrring!") as ei:
            nfq.run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert 0.2 < time.monotonic() - t0 < 5
    assert any("NetfilterQueue.run" in e.name for e in ei.traceback)
    assert kstat(qnum) is not None     # still bound, usable
    nfq.unbind()


def test_sigint_default_handler_interrupts_run(qnum):
    nfq = NetfilterQueue()
    nfq.bind(qnum, lambda p: None)
    timer = threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with deadline(5), pytest.raises(KeyboardInterrupt):
            nfq.run()
    finally:
        timer.cancel()


def test_signal_that_does_not_raise_keeps_running(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    calls = []

    def on_usr1(sig, frame):
        calls.append("signal")
        send_udp("127.0.0.1", port, b"after-signal")

    def cb(pkt):
        pkt.accept()
        raise Boom("done")

    nfq.bind(qnum, cb)
    old = signal.signal(signal.SIGUSR1, on_usr1)
    timer = threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1))
    timer.start()
    try:
        with deadline(5), pytest.raises(Boom):
            nfq.run()
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)
    assert calls == ["signal"]
    assert rx.collect(1) == [b"after-signal"]


def test_run_releases_the_gil(qnum):
    nfq = NetfilterQueue()
    nfq.bind(qnum, lambda p: None)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set() and len(ticks) < 1000:
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        with deadline(0.5), pytest.raises(Deadline):
            nfq.run()
    finally:
        stop.set()
        t.join(5)
    assert len(ticks) >= 10


def test_gc_unbinds(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    nfq = NetfilterQueue()
    nfq.bind(qnum, lambda p: p.accept())
    assert kstat(qnum) is not None
    fd = nfq.get_fd()
    ref = weakref.ref(nfq)
    del nfq
    assert ref() is None
    assert kstat(qnum) is None
    assert not os.path.exists(f"/proc/self/fd/{fd}") or \
        not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")


def test_gc_unbinds_through_a_cycle(qnum):
    class Handler:
        def __init__(self):
            self.nfq = NetfilterQueue()
            self.nfq.bind(qnum, self.handle)   # handler <-> queue cycle

        def handle(self, pkt):
            pkt.accept()

    h = Handler()
    ref = weakref.ref(h.nfq)
    assert kstat(qnum) is not None
    del h
    for _ in range(4):
        gc.collect()
        if ref() is None:
            break
    assert ref() is None, "cycle through the callback was not collected"
    assert kstat(qnum) is None


def test_retained_packets_keep_the_queue(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    kept = []

    def cb(pkt):
        pkt.retain()
        kept.append(pkt)

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"kept")
    assert pump(nfq, lambda: kept)
    ref = weakref.ref(nfq)
    del nfq
    gc.collect()
    assert ref() is not None           # the packet holds its queue, as before
    kept[0].accept()
    assert rx.collect(1) == [b"kept"]
    kept.clear()
    gc.collect()
    assert ref() is None
    assert kstat(qnum) is None


def test_callback_error_during_unbind_is_unraisable(qnum, port, rules):
    rules.queue_lo(qnum, port)
    nfq = NetfilterQueue()
    calls = []

    def cb(pkt):
        calls.append(pkt)
        raise Boom("while unbinding")

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"x")
    assert wait_until(lambda: kstat(qnum)["queued"] == 1)
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        nfq.unbind()       # reads the pending packet while waiting for the kernel
    finally:
        sys.unraisablehook = old
    if calls:
        assert seen and seen[0].object == "netfilterqueue callback during unbind"
        assert seen[0].exc_type is Boom
        with pytest.raises(RuntimeError, match="Parent queue has already been unbound"):
            calls[0].drop()
    assert kstat(qnum) is None


def test_subclass_and_gc(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)

    class Counting(NetfilterQueue):
        def __init__(self, **kw):
            self.count = 0

        def handle(self, pkt):
            self.count += 1
            pkt.accept()

    q = Counting(af=socket.AF_INET)
    q.bind(qnum, q.handle)
    send_udp("127.0.0.1", port, b"sub")
    assert pump(q, lambda: q.count == 1)
    assert rx.collect(1) == [b"sub"]
    ref = weakref.ref(q)
    q = None
    gc.collect()
    assert ref() is None and kstat(qnum) is None
