# SPDX-License-Identifier: MIT
"""Misuse gets the original module's exceptions and messages, and harms
nothing else: the queue (or the other queue) keeps working afterwards."""
import errno
import os
import socket

import pytest

from netfilterqueue import NetfilterQueue
from helpers import kstat, pump, send_udp, udp_data

GIVEN = "Verdict already given for this packet"
UNBOUND = "Parent queue has already been unbound"
GONE = "Payload data is no longer available"


def accept_all(nfq, qnum, **kw):
    seen = []

    def cb(pkt):
        seen.append(udp_data(pkt.get_payload()))
        pkt.accept()

    nfq.bind(qnum, cb, **kw)
    return seen


def still_works(nfq, seen, port, rx, payload=b"still-works"):
    before = len(seen)
    send_udp("127.0.0.1", port, payload)
    assert pump(nfq, lambda: len(seen) > before), "queue stopped delivering"
    assert seen[-1] == payload
    assert rx.collect(1) == [payload]


def test_second_verdict(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    kept, msgs = [], []

    def cb(pkt):
        pkt.accept()
        for again in (pkt.accept, pkt.drop, pkt.repeat):
            with pytest.raises(RuntimeError) as ei:
                again()
            msgs.append(str(ei.value))
        kept.append(pkt)

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"once")
    assert pump(nfq, lambda: kept)
    assert msgs == [GIVEN] * 3
    with pytest.raises(RuntimeError, match=GIVEN):
        kept[0].drop()              # after the callback too
    assert rx.collect(1) == [b"once"]


def test_payload_after_callback_needs_retain(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    plain, retained = [], []

    def cb(pkt):
        assert udp_data(pkt.get_payload()) in (b"one", b"two")
        if udp_data(pkt.get_payload()) == b"two":
            pkt.retain()
            retained.append(pkt)
        else:
            plain.append(pkt)

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"one", b"two")
    assert pump(nfq, lambda: plain and retained)
    with pytest.raises(RuntimeError) as ei:
        plain[0].get_payload()
    assert str(ei.value) == (
        "Payload data is no longer available. You must call retain() within the "
        "user_callback in order to copy the payload if you need to expect it "
        "after your callback has returned.")
    with pytest.raises(RuntimeError, match=GONE):
        plain[0].retain()           # too late
    assert udp_data(retained[0].get_payload()) == b"two"
    assert retained[0].get_payload_len() == 31
    # Verdicts still work for both.
    plain[0].accept()
    retained[0].accept()
    assert rx.collect(2) == [b"one", b"two"]


def test_retain_after_verdict_in_callback(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    kept = []

    def cb(pkt):
        pkt.accept()
        pkt.retain()
        kept.append(pkt)

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"late-retain")
    assert pump(nfq, lambda: kept)
    assert udp_data(kept[0].get_payload()) == b"late-retain"
    assert kept[0].outdev_name == "lo"
    assert str(kept[0]) == "UDP packet, 39 bytes"
    assert rx.collect(1) == [b"late-retain"]


def test_use_after_unbind(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    kept = []

    def cb(pkt):
        pkt.retain()
        kept.append(pkt)

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"held")
    assert pump(nfq, lambda: kept)
    nfq.unbind()
    assert nfq.queue_num is None
    assert kstat(qnum) is None
    for verdict in (kept[0].accept, kept[0].drop, kept[0].repeat):
        with pytest.raises(RuntimeError, match=UNBOUND):
            verdict()
    assert udp_data(kept[0].get_payload()) == b"held"     # retained data stays
    nfq.unbind()                     # a second unbind is harmless
    assert rx.collect() == []        # the kernel dropped it at unbind
    # Rebinding the same object works, and old packets stay orphaned.
    seen = accept_all(nfq, qnum)
    with pytest.raises(RuntimeError, match=UNBOUND):
        kept[0].accept()
    still_works(nfq, seen, port, rx)


def test_bind_twice_on_one_object(new_qnum, port, rules, receiver):
    q1, q2 = new_qnum(), new_qnum()
    rules.queue_lo(q1, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    seen = accept_all(nfq, q1)
    with pytest.raises(RuntimeError) as ei:
        nfq.bind(q2, lambda p: None)
    assert str(ei.value) == "A queue is already bound; use unbind() first"
    assert kstat(q2) is None
    assert nfq.queue_num == q1
    still_works(nfq, seen, port, rx)


def test_bind_queue_bound_elsewhere(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    owner = NetfilterQueue()
    seen = accept_all(owner, qnum)
    portid = kstat(qnum)["portid"]
    intruder = NetfilterQueue()
    with pytest.raises(OSError) as ei:
        intruder.bind(qnum, lambda p: p.drop())
    assert ei.value.errno == errno.EBUSY
    assert ei.value.strerror == f"Failed to create queue {qnum}."
    assert intruder.queue_num is None
    assert kstat(qnum)["portid"] == portid
    still_works(owner, seen, port, rx)
    # The failed object is still usable for another queue number.
    del intruder


def test_bad_sockfd(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    owner = NetfilterQueue()
    seen = accept_all(owner, qnum)
    with pytest.raises(OSError, match="dup2 failed") as ei:
        NetfilterQueue(sockfd=1000)
    assert ei.value.errno == errno.EBADF
    with open("/dev/null") as fp:
        with pytest.raises(OSError, match="Failed to open NFQueue") as ei:
            NetfilterQueue(sockfd=fp.fileno())
        assert ei.value.errno == errno.ENOTSOCK
        os.fstat(fp.fileno())           # the caller's fd is left alone
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(OSError, match="Failed to open NFQueue") as ei:
            NetfilterQueue(sockfd=s.fileno())
        assert ei.value.errno == errno.EAFNOSUPPORT
        assert s.fileno() >= 0 and os.fstat(s.fileno())
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        with pytest.raises(OSError, match="Failed to open NFQueue") as ei:
            NetfilterQueue(sockfd=s.fileno())
        assert ei.value.errno == errno.EPROTONOSUPPORT
    with pytest.raises(TypeError):
        NetfilterQueue(sockfd="3")
    with pytest.raises(OSError, match="dup failed"):
        NetfilterQueue(rtnl_sockfd=1000)
    still_works(owner, seen, port, rx)


def test_bad_bind_arguments(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    with pytest.raises(OverflowError, match="queue_num out of range 0-65535"):
        nfq.bind(65536, lambda p: None)
    with pytest.raises(OverflowError, match="queue_num"):
        nfq.bind(-1, lambda p: None)
    with pytest.raises(TypeError, match="user_callback must be callable"):
        nfq.bind(qnum, None)
    with pytest.raises(ValueError, match="mode must be"):
        nfq.bind(qnum, lambda p: None, mode=7)
    with pytest.raises(OverflowError, match="max_len"):
        nfq.bind(qnum, lambda p: None, max_len=-5)
    with pytest.raises(ValueError, match=f"Failed to create queue {qnum}: .*max_len"):
        nfq.bind(qnum, lambda p: None, max_len=0)
    with pytest.raises(TypeError):
        nfq.bind(qnum, lambda p: None, 1024, 2, 65535, 4096, True)   # flags are keywords
    assert kstat(qnum) is None and nfq.queue_num is None
    seen = accept_all(nfq, qnum)
    still_works(nfq, seen, port, rx)


def test_reentrant_calls_from_callback(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    msgs = []

    def cb(pkt):
        for call in (lambda: nfq.run(False), lambda: nfq.run_socket(None),
                     lambda: nfq.bind(qnum + 1000, print)):
            with pytest.raises(RuntimeError) as ei:
                call()
            msgs.append(str(ei.value))
        pkt.accept()

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"re")
    assert pump(nfq, lambda: msgs)
    assert msgs == [f"{f}() cannot be called from within the user_callback"
                    for f in ("run", "run_socket", "bind")]
    assert rx.collect(1) == [b"re"]


def test_unbind_from_callback(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    got = []

    def cb(pkt):
        got.append(pkt)
        if udp_data(pkt.get_payload()) == b"stop":
            nfq.unbind()
            assert nfq.queue_num is None
            with pytest.raises(RuntimeError, match=UNBOUND):
                pkt.accept()
        else:
            pkt.accept()

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"go", b"stop")
    assert pump(nfq, lambda: len(got) == 2)
    assert kstat(qnum) is None
    assert rx.collect() == [b"go"]
