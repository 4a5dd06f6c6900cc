# SPDX-License-Identifier: MIT
"""The module's surface is python-netfilterqueue's (no traffic needed)."""
import inspect
import os
import socket

import pytest

import netfilterqueue
from netfilterqueue import COPY_META, COPY_NONE, COPY_PACKET, NetfilterQueue, Packet


def test_names_and_constants():
    assert (COPY_NONE, COPY_META, COPY_PACKET) == (0, 1, 2)
    assert netfilterqueue.Packet is Packet
    assert NetfilterQueue.__name__ == "NetfilterQueue"
    assert repr(NetfilterQueue).endswith("'netfilterqueue.NetfilterQueue'>")
    assert repr(Packet).endswith("'netfilterqueue.Packet'>")
    assert netfilterqueue.PROTOCOLS[6] == "TCP"
    assert netfilterqueue.PROTOCOLS[17] == "UDP"
    assert netfilterqueue.PROTOCOLS[58] == "IPv6-ICMP"
    assert netfilterqueue.VERSION == (1, 1, 0)
    assert netfilterqueue.__version__ == "1.1.0"
    for name in ("bind", "unbind", "get_fd", "run", "run_socket"):
        assert callable(getattr(NetfilterQueue, name))
    for name in ("get_payload", "get_payload_len", "set_payload", "set_mark", "get_mark",
                 "get_hw", "get_timestamp", "retain", "accept", "drop", "repeat"):
        assert callable(getattr(Packet, name))
    for attr in ("id", "hw_protocol", "mark", "hook", "indev", "outdev",
                 "physindev", "physoutdev"):
        assert hasattr(Packet, attr)


def test_packet_not_constructible():
    with pytest.raises(TypeError):
        Packet()


def test_constructor_keywords_only():
    with pytest.raises(TypeError):
        NetfilterQueue(socket.AF_INET)
    nfq = NetfilterQueue(af=socket.AF_INET6)
    assert nfq.get_fd() >= 0
    assert nfq.queue_num is None


def test_fd_is_netlink_netfilter():
    nfq = NetfilterQueue()
    fd = nfq.get_fd()
    s = socket.socket(fileno=os.dup(fd))
    try:
        assert s.family == socket.AF_NETLINK
        assert s.proto == 12
    finally:
        s.close()


def test_docstring_signatures():
    assert NetfilterQueue.bind.__doc__.startswith(
        "bind(queue_num, user_callback, max_len=1024, mode=COPY_PACKET, range=65535,")
    assert "block=True" in NetfilterQueue.run.__doc__
    assert inspect.getdoc(netfilterqueue)


def test_gc_of_unbound_queue_closes_its_socket():
    nfq = NetfilterQueue()
    fd = nfq.get_fd()
    assert os.path.exists(f"/proc/self/fd/{fd}")
    del nfq
    assert not os.path.exists(f"/proc/self/fd/{fd}") or \
        not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
