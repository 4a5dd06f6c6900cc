# SPDX-License-Identifier: MIT
"""Helpers shared by the netfilterqueue tests (see conftest.py)."""
import os
import select
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

# Helper processes run under the interpreter pytest runs under (the one
# tests/netns/python.sh chose), never a pinned path.
PY = sys.executable
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")


class Env:
    """Names and addresses of the namespaces set up by tests/netns/python.sh."""

    def __init__(self):
        e = os.environ
        self.ns = e.get("NFQB_PY_NS", "")
        self.peer = e.get("NFQB_PY_PEER", "")
        self.exns = e.get("NFQB_PY_EXNS", "")
        self.q_dev = e.get("NFQB_PY_Q_DEV", "q0")
        self.peer_dev = e.get("NFQB_PY_PEER_DEV", "p0")
        self.q4 = e.get("NFQB_PY_Q4", "")
        self.peer4 = e.get("NFQB_PY_PEER4", "")
        self.q6 = e.get("NFQB_PY_Q6", "")
        self.peer6 = e.get("NFQB_PY_PEER6", "")

    @staticmethod
    def path(ns):
        return f"/run/netns/{ns}"


def tool_env():
    """Environment for ip/iptables: no sanitizer runtime preloaded into them."""
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    return e


def run_tool(args, ns=None, check=True, timeout=15):
    """Run a command (inside namespace @ns if given) and return its result."""
    args = list(args)
    if ns:
        args = ["ip", "netns", "exec", ns] + args
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=tool_env())
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Rules:
    """iptables rules that are removed again when the test ends."""

    def __init__(self):
        self._added = []

    def add(self, rule, *, table="filter", v6=False, ns=None):
        cmd = ["ip6tables" if v6 else "iptables", "-w", "5", "-t", table]
        run_tool(cmd + ["-A"] + list(rule), ns=ns)
        self._added.append((cmd, list(rule), ns))

    def queue_lo(self, queue_num, port, *, v6=False, chain="OUTPUT", table="filter",
                 extra=(), ns=None):
        """Queue UDP to @port on the loopback interface."""
        iface = "-i" if chain in ("INPUT", "PREROUTING") else "-o"
        self.add([chain, iface, "lo", "-p", "udp", "--dport", str(port), *extra,
                  "-j", "NFQUEUE", "--queue-num", str(queue_num)],
                 table=table, v6=v6, ns=ns)

    def cleanup(self):
        for cmd, rule, ns in reversed(self._added):
            run_tool(cmd + ["-D"] + rule, ns=ns, check=False)
        self._added.clear()


class Receiver:
    """A UDP socket that collects what reaches it."""

    def __init__(self, addr, port):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((addr, port))
        self.addr = (addr, port)

    def collect(self, expect=None, quiet=0.3, timeout=5.0):
        """Datagrams until @expect arrived (or @timeout), or, with no
        @expect, until @quiet seconds pass without one."""
        got = []
        end = time.monotonic() + timeout
        while expect is None or len(got) < expect:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], min(left, quiet))
            if not r:
                if expect is None:
                    break
                continue
            got.append(self.sock.recv(70000))
        return got

    def close(self):
        self.sock.close()


def send_udp(addr, port, *payloads, sock_opts=()):
    """Send UDP datagrams from this process."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        for level, opt, val in sock_opts:
            s.setsockopt(level, opt, val)
        for p in payloads:
            s.sendto(p, (addr, port))


SENDER = r"""
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
with socket.socket(fam, socket.SOCK_DGRAM) as s:
    for h in sys.argv[3:]:
        s.sendto(bytes.fromhex(h), (addr, port))
"""


def peer_send(ns, addr, port, *payloads):
    """Send UDP datagrams from a process inside namespace @ns."""
    run_tool([PY, "-c", SENDER, addr, str(port)] + [p.hex() for p in payloads], ns=ns)


def pump(nfq, cond, timeout=5.0):
    """run(block=False) whenever the queue's fd is readable, until cond()."""
    end = time.monotonic() + timeout
    fd = nfq.get_fd()
    while not cond():
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            nfq.run(False)
    return True


class Deadline(Exception):
    """Raised by the SIGALRM safety net of a blocking call."""


@contextmanager
def deadline(seconds):
    """Interrupt a blocking call after @seconds by raising Deadline."""
    def on_alarm(sig, frame):
        raise Deadline(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def kstat(queue_num, ns=None, pid=None):
    """The nfnetlink_queue /proc line of @queue_num as a dict, None if unbound."""
    if pid is not None:
        path = f"/proc/{pid}/net/netfilter/nfnetlink_queue"
    else:
        path = "/proc/net/netfilter/nfnetlink_queue"
    if ns:
        text = run_tool(["cat", path], ns=ns).stdout
    else:
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
    keys = ("queue", "portid", "queued", "copy_mode", "range", "dropped_full",
            "dropped_netlink", "id_seq")
    for line in text.splitlines():
        f = line.split()
        if f and int(f[0]) == queue_num:
            return dict(zip(keys, map(int, f)))
    return None


def wait_until(cond, timeout=5.0, step=0.05):
    """Poll cond() until true or @timeout seconds; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def udp_data(pkt):
    """The UDP data of an IPv4 packet, or of an IPv6 one without extension headers."""
    if pkt[0] >> 4 == 4:
        return pkt[(pkt[0] & 15) * 4 + 8:]
    return pkt[48:]
