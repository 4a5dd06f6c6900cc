#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the binary seed inputs of tests/fuzz/corpus/{packet,wire}/.

Run from anywhere: python3 tests/fuzz/gen-corpus.py. The text corpora
(control, config) are written by hand. Inputs libFuzzer found and that we
keep as regressions live next to these under names starting "found-"; this
script never touches them.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------- packet
NFNL_SUBSYS_QUEUE = 3
MSG_PACKET = (NFNL_SUBSYS_QUEUE << 8) | 0
NLMSG_ERROR = 2
(NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_MARK, NFQA_TIMESTAMP, NFQA_IFINDEX_INDEV,
 NFQA_IFINDEX_OUTDEV, NFQA_IFINDEX_PHYSINDEV, NFQA_IFINDEX_PHYSOUTDEV, NFQA_HWADDR,
 NFQA_PAYLOAD, NFQA_CT, NFQA_CT_INFO, NFQA_CAP_LEN, NFQA_SKB_INFO, NFQA_EXP, NFQA_UID,
 NFQA_GID, NFQA_SECCTX, NFQA_VLAN, NFQA_L2HDR, NFQA_PRIORITY) = range(1, 22)
NLA_F_NESTED = 0x8000


def align4(n):
    return (n + 3) & ~3


def attr(typ, payload):
    a = struct.pack("=HH", 4 + len(payload), typ) + payload
    return a + b"\0" * (align4(len(a)) - len(a))


def be32(v):
    return struct.pack(">I", v)


def pkt_hdr(pid, proto=0x0800, hook=1):
    return attr(NFQA_PACKET_HDR, struct.pack(">IHB", pid, proto, hook))


def nlmsg(typ, body, seq=0, length=None):
    n = 16 + len(body)
    return struct.pack("=IHHII", n if length is None else length, typ, 0, seq, 0) + body


def packet(queue, attrs, length=None):
    nfg = struct.pack("=BBH", 2, 0, struct.unpack("=H", struct.pack(">H", queue))[0])
    return nlmsg(MSG_PACKET, nfg + b"".join(attrs), length=length)


IP = bytes([0x45, 0, 0, 20, 0xab, 0xcd, 0x40, 0, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])


def simple(queue, pid, payload=IP):
    return packet(queue, [pkt_hdr(pid), attr(NFQA_PAYLOAD, payload)])


def full(queue, pid):
    hw = struct.pack(">HH", 6, 0) + bytes([2, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0])
    vlan = attr(1, struct.pack(">H", 0x8100)) + attr(2, struct.pack(">H", 0x2005))
    ct = attr(8, be32(0x77))
    return packet(queue, [
        pkt_hdr(pid, 0x86dd, 2), attr(NFQA_MARK, be32(0xdeadbeef)),
        attr(NFQA_TIMESTAMP, struct.pack(">QQ", 1700000000, 123456)),
        attr(NFQA_IFINDEX_INDEV, be32(1)), attr(NFQA_IFINDEX_OUTDEV, be32(12)),
        attr(NFQA_IFINDEX_PHYSINDEV, be32(13)), attr(NFQA_IFINDEX_PHYSOUTDEV, be32(14)),
        attr(NFQA_HWADDR, hw), attr(NFQA_PAYLOAD, IP),
        attr(NFQA_CT | NLA_F_NESTED, ct), attr(NFQA_CT_INFO, be32(2)),
        attr(NFQA_CAP_LEN, be32(1500)), attr(NFQA_SKB_INFO, be32(3)),
        attr(NFQA_UID, be32(1000)), attr(NFQA_GID, be32(100)),
        attr(NFQA_SECCTX, b"system_u:object_r:x_t:s0\0"),
        attr(NFQA_VLAN | NLA_F_NESTED, vlan),
        attr(NFQA_L2HDR, bytes(range(14))), attr(NFQA_PRIORITY, be32(6)),
    ])


def error(seq, err):
    return nlmsg(NLMSG_ERROR, struct.pack("=i", err) + struct.pack("=IHHII", 36, 0, 0, seq, 0), seq)


def packet_seeds():
    s = {}
    for pid in range(8):       # the target's callback acts on id % 8
        s["simple-action%d" % pid] = simple(7, pid)
    s["full"] = full(1, 0)
    s["full-retained"] = full(0, 5)
    s["batch-of-three"] = simple(7, 8) + simple(7, 16) + full(7, 24)
    s["unbound-queue"] = simple(3, 1)
    s["requeue"] = simple(7, (9 << 16) | 4)
    s["set-payload-long"] = simple(7, (60 << 3) | 3, bytes(range(64)))
    s["error-ack"] = error(0, 0)
    s["error-eperm"] = error(1234, -1)
    s["no-packet-hdr"] = packet(7, [attr(NFQA_PAYLOAD, IP)])
    s["empty"] = b""
    good = simple(7, 0)
    s["len-all-ones"] = good + nlmsg(MSG_PACKET, good[16:], length=0xffffffff)
    s["len-high-bit"] = good + nlmsg(MSG_PACKET, good[16:], length=0x80000000)
    s["len-below-header"] = good + nlmsg(MSG_PACKET, good[16:], length=8)
    s["short-tail"] = good + b"\1\2\3"
    last = packet(7, [pkt_hdr(0), struct.pack("=HH", 5, NFQA_PAYLOAD) + b"\x45"])
    s["unaligned-last"] = last
    s["truncated-attr"] = packet(7, [pkt_hdr(0), struct.pack("=HH", 40, NFQA_PAYLOAD) + IP])
    s["vlan-overrun"] = packet(7, [pkt_hdr(0), attr(NFQA_VLAN | NLA_F_NESTED,
                                                    struct.pack("=HH", 12, 2) + b"\0\5\0\0")])
    return s


# ---------------------------------------------------------------- wire
WIRE_MAGIC = 0x4251464E
WIRE_NAME_MAX = 320
FD_NULL, FD_NETFILTER, FD_ROUTE, FD_UNIX = range(4)


def hello(name, nfds, version=1, typ=1, flags=0):
    name = name.encode() if isinstance(name, str) else name
    return struct.pack("=IHHIHH", WIRE_MAGIC, version, typ, 4242, nfds, flags) + \
        name.ljust(WIRE_NAME_MAX, b"\0")[:WIRE_NAME_MAX]


def wire_input(fds, record):
    """byte 0: number of fds (low 2 bits), byte 1: their kinds, 2 bits each."""
    kinds = 0
    for i, k in enumerate(fds):
        kinds |= k << (2 * i)
    return bytes([len(fds), kinds]) + record


def wire_seeds():
    s = {}
    s["hello-one-fd"] = wire_input([FD_NETFILTER], hello("pod-a", 1))
    s["hello-two-fds"] = wire_input([FD_NETFILTER, FD_ROUTE], hello("pod-a", 2))
    s["hello-pinned"] = wire_input([FD_NETFILTER, FD_ROUTE], hello("fuzz-pinned", 2))
    s["hello-no-entry"] = wire_input([FD_NETFILTER], hello("nobody-knows", 1))
    s["hello-fds-swapped"] = wire_input([FD_ROUTE, FD_NETFILTER], hello("pod-a", 2))
    s["hello-devnull"] = wire_input([FD_NULL], hello("pod-a", 1))
    s["hello-unix-fd"] = wire_input([FD_UNIX], hello("pod-a", 1))
    s["hello-three-fds"] = wire_input([FD_NETFILTER, FD_ROUTE, FD_NULL], hello("pod-a", 2))
    s["hello-no-fds"] = wire_input([], hello("pod-a", 1))
    s["hello-nfds-mismatch"] = wire_input([FD_NETFILTER], hello("pod-a", 2))
    s["hello-bad-name"] = wire_input([FD_NETFILTER], hello("pod a\"", 1))
    s["hello-unterminated"] = wire_input([FD_NETFILTER], hello(b"p" * WIRE_NAME_MAX, 1))
    s["hello-version-2"] = wire_input([FD_NETFILTER], hello("pod-a", 1, version=2))
    s["hello-flags"] = wire_input([FD_NETFILTER], hello("pod-a", 1, flags=1))
    s["hello-truncated"] = wire_input([FD_NETFILTER], hello("pod-a", 1)[:100])
    s["hello-oversized"] = wire_input([FD_NETFILTER], hello("pod-a", 1) + b"\0" * 8)
    s["bye"] = wire_input([], struct.pack("=IHH", WIRE_MAGIC, 1, 4))
    s["accept-from-agent"] = wire_input([FD_NETFILTER], struct.pack("=IHHQII", WIRE_MAGIC,
                                                                     1, 2, 1, 1, 0))
    s["empty-record"] = wire_input([], b"")
    return s


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("packet", packet_seeds())
    write("wire", wire_seeds())
