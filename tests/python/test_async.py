# SPDX-License-Identifier: MIT
"""The event-loop patterns users have: get_fd() + run(block=False) in
asyncio (and trio/gevent when installed), run_socket() on socket.fromfd()."""
import asyncio
import selectors
import socket
import threading

import pytest

from netfilterqueue import NetfilterQueue
from helpers import deadline, send_udp, udp_data


def test_asyncio_add_reader(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()

    async def main():
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        seen = []

        def cb(pkt):
            seen.append(udp_data(pkt.get_payload()))
            pkt.accept()
            if len(seen) == 3:
                done.set()

        nfq.bind(qnum, cb)
        loop.add_reader(nfq.get_fd(), nfq.run, False)
        try:
            await loop.run_in_executor(None, send_udp, "127.0.0.1", port, b"a", b"b", b"c")
            await asyncio.wait_for(done.wait(), 5)
        finally:
            loop.remove_reader(nfq.get_fd())
            nfq.unbind()
        return seen

    assert asyncio.run(main()) == [b"a", b"b", b"c"]
    assert rx.collect(3) == [b"a", b"b", b"c"]


def test_asyncio_verdicts_from_coroutines(qnum, port, rules, receiver):
    """Packets handed to a coroutine and decided later, out of order."""
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()

    async def main():
        loop = asyncio.get_running_loop()
        pending = asyncio.Queue()
        nfq.bind(qnum, lambda pkt: (pkt.retain(), pending.put_nowait(pkt)))
        loop.add_reader(nfq.get_fd(), nfq.run, False)
        try:
            send_udp("127.0.0.1", port, b"first", b"second")
            a = await asyncio.wait_for(pending.get(), 5)
            b = await asyncio.wait_for(pending.get(), 5)
            await asyncio.sleep(0.05)
            b.accept()
            await asyncio.sleep(0.05)
            a.accept()
        finally:
            loop.remove_reader(nfq.get_fd())

    asyncio.run(main())
    assert rx.collect(2) == [b"second", b"first"]


def test_exception_in_asyncio_reader_surfaces(qnum, port, rules):
    rules.queue_lo(qnum, port)
    nfq = NetfilterQueue()

    def cb(pkt):
        pkt.accept()
        raise ValueError("from callback")

    async def main():
        loop = asyncio.get_running_loop()
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx.get("exception")))
        nfq.bind(qnum, cb)
        loop.add_reader(nfq.get_fd(), nfq.run, False)
        try:
            send_udp("127.0.0.1", port, b"x")
            for _ in range(100):
                if errors:
                    break
                await asyncio.sleep(0.05)
        finally:
            loop.remove_reader(nfq.get_fd())
        return errors

    errors = asyncio.run(main())
    assert errors and isinstance(errors[0], ValueError)


def test_selectors_loop(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    seen = []

    def cb(pkt):
        seen.append(pkt.id)
        pkt.drop() if len(seen) % 2 else pkt.accept()

    nfq.bind(qnum, cb)
    send_udp("127.0.0.1", port, b"1", b"2", b"3", b"4")
    with selectors.DefaultSelector() as sel:
        sel.register(nfq.get_fd(), selectors.EVENT_READ)
        for _ in range(50):
            if len(seen) == 4:
                break
            for _key, _ev in sel.select(timeout=0.1):
                nfq.run(block=False)
    assert len(seen) == 4
    assert rx.collect(2) == [b"2", b"4"]


@pytest.mark.parametrize("family,kind", [(socket.AF_UNIX, socket.SOCK_STREAM),
                                         (socket.AF_NETLINK, socket.SOCK_RAW)])
def test_run_socket_nonblocking(family, kind, qnum, port, rules, receiver):
    """README: socket.fromfd(get_fd(), ...) then setblocking(False)."""
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    seen = []

    def cb(pkt):
        seen.append(udp_data(pkt.get_payload()))
        pkt.accept()

    nfq.bind(qnum, cb)
    s = socket.fromfd(nfq.get_fd(), family, kind)
    s.setblocking(False)
    try:
        big = b"L" * 50000                   # larger than the old 4096-byte recv
        send_udp("127.0.0.1", port, b"one", big, b"three")
        with selectors.DefaultSelector() as sel:
            sel.register(s, selectors.EVENT_READ)
            for _ in range(50):
                if len(seen) == 3:
                    break
                if sel.select(timeout=0.1):
                    nfq.run_socket(s)        # returns once nothing is pending
    finally:
        s.close()
    assert seen == [b"one", big, b"three"]
    assert rx.collect(3) == [b"one", big, b"three"]


def test_run_socket_blocking_exception(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()

    def cb(pkt):
        pkt.accept()
        raise KeyError("stop")

    nfq.bind(qnum, cb)
    s = socket.fromfd(nfq.get_fd(), socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        send_udp("127.0.0.1", port, b"blocking")
        with deadline(5), pytest.raises(KeyError):
            nfq.run_socket(s)
    finally:
        s.close()
    assert rx.collect(1) == [b"blocking"]


def test_run_in_a_thread_verdicts_elsewhere(qnum, port, rules, receiver):
    """A blocking run() in one thread, verdicts given from another."""
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    handed = []
    got = threading.Event()

    class Stop(Exception):
        pass

    def cb(pkt):
        if udp_data(pkt.get_payload()) == b"stop":
            pkt.accept()
            raise Stop()
        pkt.retain()
        handed.append(pkt)
        got.set()

    nfq.bind(qnum, cb)
    errors = []

    def runner():
        try:
            nfq.run()
        except Stop:
            pass
        except BaseException as e:     # reported below
            errors.append(e)

    t = threading.Thread(target=runner)
    t.start()
    try:
        send_udp("127.0.0.1", port, b"work")
        assert got.wait(5)
        handed[0].accept()          # while the runner blocks in poll
        assert rx.collect(1) == [b"work"]
    finally:
        send_udp("127.0.0.1", port, b"stop")
        t.join(5)
    assert not t.is_alive() and not errors
    assert rx.collect(1) == [b"stop"]


def test_trio_wait_readable(qnum, port, rules, receiver):
    trio = pytest.importorskip("trio")
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    seen = []

    def cb(pkt):
        seen.append(1)
        pkt.accept()

    nfq.bind(qnum, cb)

    async def main():
        with trio.fail_after(5):
            send_udp("127.0.0.1", port, b"trio")
            while not seen:
                await trio.lowlevel.wait_readable(nfq.get_fd())
                nfq.run(block=False)

    trio.run(main)
    assert rx.collect(1) == [b"trio"]


def test_gevent_run_socket(qnum, port, rules, receiver):
    gevent = pytest.importorskip("gevent")
    gsocket = pytest.importorskip("gevent.socket")
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()

    def cb(pkt):
        pkt.accept()
        raise EOFError()

    nfq.bind(qnum, cb)
    s = gsocket.fromfd(nfq.get_fd(), socket.AF_NETLINK, socket.SOCK_RAW)
    try:
        job = gevent.spawn(nfq.run_socket, s)
        send_udp("127.0.0.1", port, b"gevent")
        job.join(5)
        assert isinstance(job.exception, EOFError)
    finally:
        s.close()
    assert rx.collect(1) == [b"gevent"]
