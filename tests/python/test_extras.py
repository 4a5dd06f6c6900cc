# SPDX-License-Identifier: MIT
"""What libnfqb adds: queue flags as keyword arguments, extra metadata, and
queues of another network namespace through a socket from an agent."""
import errno
import os
import socket
import subprocess

import pytest

from netfilterqueue import NetfilterQueue
from helpers import PY, kstat, peer_send, pump, send_udp, tool_env, udp_data


def test_fail_open(new_qnum, port, rules, receiver):
    q_open, q_closed = new_qnum(), new_qnum()
    rules.queue_lo(q_open, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    seen = []

    def cb(pkt):
        seen.append(udp_data(pkt.get_payload()))
        pkt.accept()

    nfq.bind(q_open, cb, max_len=1, fail_open=True)
    send_udp("127.0.0.1", port, b"q", b"o1", b"o2", b"o3")
    # Queue full after the first: the kernel lets the others pass.
    assert sorted(rx.collect(3)) == [b"o1", b"o2", b"o3"]
    assert pump(nfq, lambda: seen)
    assert seen == [b"q"]
    assert rx.collect(1) == [b"q"]
    assert kstat(q_open)["dropped_full"] == 0
    nfq.unbind()
    rules.cleanup()

    # The same without fail_open: the overflow is dropped.
    rules.queue_lo(q_closed, port)
    nfq.bind(q_closed, cb, max_len=1)
    send_udp("127.0.0.1", port, b"c1", b"c2", b"c3")
    assert pump(nfq, lambda: len(seen) == 2)
    assert seen[1] == b"c1"
    assert rx.collect() == [b"c1"]
    assert kstat(q_closed)["dropped_full"] == 2


SEND_AS = r"""
import os, socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.sendto(b"uid %d" % os.getuid(), ("127.0.0.1", int(sys.argv[1])))
"""


def test_uid_gid(qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    got = []

    def cb(pkt):
        got.append((pkt.uid, pkt.gid, udp_data(pkt.get_payload())))
        pkt.accept()

    nfq.bind(qnum, cb, uid_gid=True)
    subprocess.run([PY, "-c", SEND_AS, str(port)], user=65534, group=65534,
                   env=tool_env(), check=True, timeout=15)
    send_udp("127.0.0.1", port, b"root")
    assert pump(nfq, lambda: len(got) == 2)
    assert got == [(65534, 65534, b"uid 65534"), (0, 0, b"root")]
    assert rx.collect(2) == [b"uid 65534", b"root"]


@pytest.mark.parametrize("flag", ["gso", "secctx", "conntrack"])
def test_other_flags(flag, qnum, port, rules, receiver):
    rules.queue_lo(qnum, port)
    rx = receiver("127.0.0.1", port)
    nfq = NetfilterQueue()
    got = []

    def cb(pkt):
        got.append(pkt.secctx)
        pkt.accept()

    kw = {flag: flag != "gso"}          # gso is on by default: turn it off
    try:
        nfq.bind(qnum, cb, **kw)
    except OSError as e:
        # A kernel without the feature says so, naming the flag.
        assert flag != "gso"
        assert e.errno == errno.EOPNOTSUPP
        assert str(e) == f"[Errno 95] Failed to create queue {qnum}: kernel does not support flag {flag}."
        assert nfq.queue_num is None and kstat(qnum) is None
        nfq.bind(qnum, cb)              # nothing was left half-bound
    send_udp("127.0.0.1", port, b"flags")
    assert pump(nfq, lambda: got)
    assert got[0] is None or isinstance(got[0], str)
    assert rx.collect(1) == [b"flags"]


def test_requeue(new_qnum, port, rules, receiver):
    q1, q2 = new_qnum(), new_qnum()
    rules.queue_lo(q1, port)
    rx = receiver("127.0.0.1", port)
    first, second = NetfilterQueue(), NetfilterQueue()
    seen = []
    first.bind(q1, lambda p: p.requeue(q2))
    second.bind(q2, lambda p: (seen.append(p.queue_num), p.accept()))
    send_udp("127.0.0.1", port, b"hop")
    assert pump(first, lambda: first.get_stats()["verdicts"] == 1)
    assert pump(second, lambda: seen)
    assert seen == [q2]
    assert rx.collect(1) == [b"hop"]
    assert first.queue_num == q1 and second.queue_num == q2


AGENT = r"""
import os, socket, sys
# Like nfq-agent: open the sockets in this namespace, drop privileges,
# hand them over, hold the lease until the other side closes.
conn = socket.socket(fileno=int(sys.argv[1]))
nf = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
rt = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
socket.send_fds(conn, [b"fds"], [nf.fileno(), rt.fileno()])
conn.recv(1)
"""


def test_socket_from_an_agent_in_another_namespace(env, qnum, port, rules, receiver):
    """NetfilterQueue(sockfd=...) on a socket an unprivileged agent opened in
    the peer namespace: the queue lives there, names resolve there."""
    rules.add(["OUTPUT", "-o", env.peer_dev, "-p", "udp", "--dport", str(port),
               "-j", "NFQUEUE", "--queue-num", str(qnum)], ns=env.peer)
    rx = receiver(env.q4, port)
    mine, theirs = socket.socketpair()
    agent = subprocess.Popen(["ip", "netns", "exec", env.peer, PY, "-c", AGENT,
                              str(theirs.fileno())], pass_fds=[theirs.fileno()],
                             env=tool_env())
    theirs.close()
    try:
        mine.settimeout(10)
        _, fds, _, _ = socket.recv_fds(mine, 16, 2)
        assert len(fds) == 2
        nfq = NetfilterQueue(sockfd=fds[0], rtnl_sockfd=fds[1])
        for fd in fds:
            os.close(fd)                  # ours were copies
        got = []

        def cb(pkt):
            got.append((pkt.outdev_name, pkt.hook, udp_data(pkt.get_payload())))
            pkt.drop() if udp_data(pkt.get_payload()) == b"no" else pkt.accept()

        nfq.bind(qnum, cb)
        assert kstat(qnum) is None                       # not in our namespace
        assert kstat(qnum, ns=env.peer) is not None      # but in the peer's
        peer_send(env.peer, env.q4, port, b"yes", b"no", b"yes2")
        assert pump(nfq, lambda: len(got) == 3)
        assert got == [(env.peer_dev, 3, b"yes"), (env.peer_dev, 3, b"no"),
                       (env.peer_dev, 3, b"yes2")]
        assert rx.collect(2) == [b"yes", b"yes2"]
        nfq.unbind()
        assert kstat(qnum, ns=env.peer) is None
    finally:
        mine.close()
        agent.wait(10)
    assert agent.returncode == 0


def test_netns_keyword(env, qnum, port, rules, receiver):
    rules.add(["OUTPUT", "-o", env.peer_dev, "-p", "udp", "--dport", str(port),
               "-j", "NFQUEUE", "--queue-num", str(qnum)], ns=env.peer)
    rx = receiver(env.q4, port)
    nfq = NetfilterQueue(netns=env.path(env.peer))
    got = []

    def cb(pkt):
        got.append(pkt.outdev_name)
        pkt.accept()

    nfq.bind(qnum, cb)
    peer_send(env.peer, env.q4, port, b"via-netns")
    assert pump(nfq, lambda: got)
    assert got == [env.peer_dev]
    assert rx.collect(1) == [b"via-netns"]
    with pytest.raises(FileNotFoundError):
        NetfilterQueue(netns="/run/netns/does-not-exist-nfqb")
    with pytest.raises(ValueError, match="either sockfd or netns"):
        NetfilterQueue(netns=env.path(env.peer), sockfd=nfq.get_fd())


def test_sock_len_warning(qnum):
    nfq = NetfilterQueue()
    with pytest.warns(RuntimeWarning, match="rcvbuf limit is") as record:
        nfq.bind(qnum, lambda p: None, sock_len=2 ** 30)
    assert record[0].filename == __file__      # points at the caller
    assert nfq.queue_num == qnum
    nfq.unbind()
    nfq.bind(qnum, lambda p: None, sock_len=131072 * 64)   # no warning


def test_sock_len_warning_as_error_unbinds(qnum):
    import warnings
    nfq = NetfilterQueue()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            nfq.bind(qnum, lambda p: None, sock_len=2 ** 30)
    assert nfq.queue_num is None and kstat(qnum) is None
