# SPDX-License-Identifier: MIT
"""Every Packet behaviour checked against real packets."""
import socket
import struct
import time

import pytest

from netfilterqueue import COPY_META, COPY_NONE, NetfilterQueue
from helpers import kstat, peer_send, pump, run_tool, send_udp, udp_data

INPUT, OUTPUT = 1, 3


def capture(nfq, qnum, n, verdict="accept", timeout=5.0, **kw):
    """Bind, let @n packets reach the callback, return them (retained)."""
    got = []

    def cb(pkt):
        pkt.retain()
        got.append(pkt)
        if verdict:
            getattr(pkt, verdict)()

    nfq.bind(qnum, cb, **kw)
    return got, (lambda: pump(nfq, lambda: len(got) >= n, timeout))


def test_accept_and_drop(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    seen = []

    def cb(pkt):
        data = udp_data(pkt.get_payload())
        seen.append(data)
        if data.startswith(b"drop"):
            pkt.drop()
        else:
            pkt.accept()

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"keep1", b"drop1", b"keep2", b"drop2", b"keep3")
    assert pump(nfq, lambda: len(seen) == 5)
    assert seen == [b"keep1", b"drop1", b"keep2", b"drop2", b"keep3"]
    assert rx.collect() == [b"keep1", b"keep2", b"keep3"]
    st = nfq.get_stats()
    assert st["packets"] == 5 and st["verdicts"] == 5 and st["unsettled"] == 0
    nfq.unbind()
    # Unbound and no rule change: the kernel drops what the rule queues.
    send_udp("127.0.0.1", port, b"after-unbind")
    assert rx.collect() == []


def test_packet_metadata_output_v4(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    got, run = capture(nfq, qnum, 2)
    send_udp("127.0.0.1", port, b"one", b"two")
    assert run()
    a, b = got
    assert b.id == a.id + 1
    assert a.hw_protocol == 0x0800
    assert a.hook == OUTPUT
    assert a.mark == 0 and a.get_mark() == 0
    assert a.indev == 0 and a.outdev == socket.if_nametoindex("lo")
    assert a.physindev == 0 and a.physoutdev == 0
    assert a.outdev_name == "lo" and a.indev_name is None
    assert a.get_hw() is None            # no source MAC on OUTPUT
    assert a.get_timestamp() == 0.0      # nor a timestamp
    assert a.get_payload_len() == 20 + 8 + 3 == a.cap_len
    assert a.queue_num == qnum
    assert a.uid is None and a.gid is None   # not asked for
    assert str(a) == "UDP packet, 31 bytes"
    assert rx.collect(2) == [b"one", b"two"]


def test_packet_metadata_input_from_peer(env, qnum, port, rules, receiver):
    rules.add(["INPUT", "-i", env.q_dev, "-p", "udp", "--dport", str(port),
               "-j", "NFQUEUE", "--queue-num", str(qnum)])
    rx = receiver(env.q4, port)
    # The kernel stamps arriving packets only while some socket wants it.
    rx.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMP", 29), 1)
    time.sleep(0.2)
    nfq = NetfilterQueue()
    got, run = capture(nfq, qnum, 1)
    t0 = time.time()
    peer_send(env.peer, env.q4, port, b"from-peer")
    assert run()
    t1 = time.time()
    p = got[0]
    peer_mac = run_tool(["cat", f"/sys/class/net/{env.peer_dev}/address"], ns=env.peer).stdout.strip()
    assert p.hook == INPUT
    assert p.indev == socket.if_nametoindex(env.q_dev) and p.outdev == 0
    assert p.indev_name == env.q_dev
    assert p.get_hw() == bytes.fromhex(peer_mac.replace(":", ""))
    assert t0 - 1 <= p.get_timestamp() <= t1 + 1
    assert udp_data(p.get_payload()) == b"from-peer"
    assert rx.collect(1) == [b"from-peer"]


def test_ipv6_packets_and_str(env, qnum, port, rules, receiver):
    rules.queue_lo(qnum, port, v6=True)
    rx = receiver("::1", port)
    nfq = NetfilterQueue()
    got, run = capture(nfq, qnum, 2)
    send_udp("::1", port, b"six")
    # A destination options header before UDP: str() must look past it.
    dstopts = bytes([0, 0, 1, 4, 0, 0, 0, 0])
    send_udp("::1", port, b"opts", sock_opts=[(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, dstopts)])
    assert run()
    plain, opts = got
    assert plain.hw_protocol == 0x86DD
    assert str(plain) == "UDP packet, 51 bytes"
    assert opts.get_payload()[6] == 60          # next header: destination options
    assert str(opts) == "UDP packet, 60 bytes"
    assert rx.collect(2) == [b"six", b"opts"]


def test_str_without_retain(qnum, port, rules):
    rules.queue_lo(qnum, port)
    nfq = NetfilterQueue()
    kept = []

    def cb(pkt):
        assert str(pkt) == "UDP packet, 33 bytes"
        kept.append(pkt)
        pkt.accept()

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"hello")
    assert pump(nfq, lambda: kept)
    assert str(kept[0]) == "33 byte packet, contents unretained"


def test_large_payload_not_truncated(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    got, run = capture(nfq, qnum, 1)
    big = bytes(range(256)) * 160        # 40960 bytes: one packet on lo
    send_udp("127.0.0.1", port, big)
    assert run()
    p = got[0]
    assert p.get_payload_len() == len(big) + 28 == p.cap_len
    assert udp_data(p.get_payload()) == big
    assert rx.collect(1) == [big]


def test_range_truncates_and_cap_len_tells(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    got, run = capture(nfq, qnum, 1, range=40)
    send_udp("127.0.0.1", port, b"x" * 1000)
    assert run()
    p = got[0]
    assert p.get_payload_len() == 40 and len(p.get_payload()) == 40
    assert p.cap_len == 1028
    assert str(p) == "UDP packet, 40 bytes"
    assert rx.collect(1) == [b"x" * 1000]   # accepting a truncated copy keeps the packet whole


def test_copy_meta(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    errors = []

    def cb(pkt):
        with pytest.raises(RuntimeError) as ei:
            pkt.get_payload()
        errors.append(str(ei.value))
        assert pkt.get_payload_len() == 0
        assert pkt.cap_len in (0, 31)     # the kernel gives no length without a copy
        assert str(pkt) == "0 byte packet, contents unretained"
        pkt.retain()                      # harmless here (the original raised)
        pkt.accept()

    nfq.bind(qnum, cb, mode=COPY_META)
    assert kstat(qnum)["copy_mode"] == COPY_META
    send_udp("127.0.0.1", port, b"meta")
    assert pump(nfq, lambda: errors)
    assert errors == ["Packet has no payload -- perhaps you're using COPY_META mode?"]
    assert rx.collect(1) == [b"meta"]


def test_copy_none_is_the_kernels(qnum, port, rules, receiver):
    """COPY_NONE binds, but the kernel then refuses to queue: packets are dropped."""
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    calls = []
    nfq.bind(qnum, calls.append, mode=COPY_NONE)
    assert kstat(qnum)["copy_mode"] == COPY_NONE
    send_udp("127.0.0.1", port, b"none")
    assert not pump(nfq, lambda: calls, timeout=0.5)
    assert rx.collect() == []


def test_mark_repeat(qnum, port, rules, receiver):
    """The upstream scenario: set_mark + repeat brings the packet back with that mark."""
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    marks = []

    def cb(pkt):
        assert pkt.mark == pkt.get_mark()
        marks.append(pkt.mark)
        if pkt.mark < 3:
            pkt.set_mark(pkt.mark + 1)
            assert pkt.get_mark() == pkt.mark + 1
            pkt.repeat()
        else:
            pkt.accept()

    nfq.bind(qnum, cb, mode=COPY_META)
    send_udp("127.0.0.1", port, b"again")
    assert pump(nfq, lambda: len(marks) == 4)
    assert marks == [0, 1, 2, 3]
    assert rx.collect(1) == [b"again"]


def test_set_mark_seen_by_later_rules(new_qnum, port, rules, receiver):
    q1, q2 = new_qnum(), new_qnum()
    rules.queue_lo(q1, port)
    # mangle POSTROUTING comes after filter OUTPUT: queue again what has the mark.
    rules.add(["POSTROUTING", "-o", "lo", "-p", "udp", "--dport", str(port),
               "-m", "mark", "--mark", "0x2a", "-j", "NFQUEUE", "--queue-num", str(q2)],
              table="mangle")
    rx = receiver("127.0.0.1", port)
    first, second = NetfilterQueue(), NetfilterQueue()
    seen2 = []

    def cb1(pkt):
        if udp_data(pkt.get_payload()) == b"mark-me":
            pkt.set_mark(42)
        pkt.accept()

    def cb2(pkt):
        seen2.append((pkt.mark, udp_data(pkt.get_payload())))
        pkt.accept()

    first.bind(q1, cb1)
    second.bind(q2, cb2)
    send_udp("127.0.0.1", port, b"plain", b"mark-me")
    assert pump(first, lambda: first.get_stats()["verdicts"] == 2)
    assert pump(second, lambda: seen2)
    assert seen2 == [(42, b"mark-me")]
    assert sorted(rx.collect(2)) == [b"mark-me", b"plain"]


def fix_udp(pkt_bytes, data):
    """An IPv4/UDP packet with new UDP data: lengths and IP checksum fixed, UDP checksum cleared."""
    p = bytearray(pkt_bytes[:28]) + data
    p[2:4] = struct.pack(">H", len(p))
    p[24:26] = struct.pack(">H", len(data) + 8)
    p[26:28] = b"\0\0"
    p[10:12] = b"\0\0"
    s = sum(struct.unpack(">10H", bytes(p[:20])))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    p[10:12] = struct.pack(">H", s ^ 0xFFFF)
    return bytes(p)


def test_set_payload_and_reorder(qnum, port, rules, receiver):
    """The upstream rewrite/reorder scenario."""
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    held = {}
    count = []

    def cb(pkt):
        count.append(1)
        data = udp_data(pkt.get_payload())
        if data == b"one":
            pkt.set_payload(fix_udp(pkt.get_payload(), b"numero uno"))
            assert udp_data(pkt.get_payload()) == b"numero uno"
            pkt.accept()
        elif data == b"two":
            pkt.retain()
            held["two"] = pkt
        elif data == b"three":
            two = held.pop("two")
            two.set_payload(fix_udp(two.get_payload(), b"TWO"))
            pkt.accept()
            two.accept()
        else:
            pkt.accept()

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"one", b"two", b"three", b"four")
    assert pump(nfq, lambda: len(count) == 4)
    assert rx.collect(4) == [b"numero uno", b"three", b"TWO", b"four"]


def test_set_payload_large(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    done = []
    big = b"B" * 30000

    def cb(pkt):
        pkt.set_payload(fix_udp(pkt.get_payload(), big))
        pkt.accept()
        done.append(1)

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"small")
    assert pump(nfq, lambda: done)
    assert rx.collect(1) == [big]


def test_set_payload_too_large_is_refused(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    errors = []

    def cb(pkt):
        with pytest.raises(ValueError, match="65536 bytes is larger"):
            pkt.set_payload(b"z" * 65536)
        with pytest.raises(TypeError):
            pkt.set_payload(12)
        errors.append(1)
        pkt.accept()      # the packet itself is unharmed

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"intact")
    assert pump(nfq, lambda: errors)
    assert rx.collect(1) == [b"intact"]


def test_delayed_verdicts_out_of_callback(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    kept = []
    nfq.bind(qnum, kept.append)     # no verdict, no retain: decided later
    send_udp("127.0.0.1", port, b"a", b"b", b"c")
    assert pump(nfq, lambda: len(kept) == 3)
    assert rx.collect() == []
    kept[2].accept()
    kept[0].accept()
    kept[1].drop()
    assert rx.collect(2) == [b"c", b"a"]
