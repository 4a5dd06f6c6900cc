# SPDX-License-Identifier: MIT
"""The README examples of python-netfilterqueue run unchanged on this module,
in a namespace of their own (NFQB_PY_EXNS): they bind queue 1, print each
packet and accept it, and stop cleanly on Ctrl+C (SIGINT)."""
import os
import signal
import subprocess

import pytest

from helpers import EXAMPLES, PY, Rules, kstat, run_tool, wait_until

TRAFFIC = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", port))
rx.settimeout(5)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sizes = [10, 2000, 30000][:n]
for size in sizes:
    tx.sendto(b"e" * size, ("127.0.0.1", port))
got = [len(rx.recv(70000)) for _ in sizes]
print(" ".join(map(str, got)))
"""


def python_env():
    e = dict(os.environ)
    e.pop("PYTEST_CURRENT_TEST", None)
    return e


@pytest.mark.parametrize("script", ["print_and_accept.py", "print_and_accept_socket.py"])
def test_readme_example(env, port, script):
    rules = Rules()
    rules.queue_lo(1, port, ns=env.exns)
    proc = subprocess.Popen(["ip", "netns", "exec", env.exns, PY, os.path.join(EXAMPLES, script)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=python_env())
    try:
        assert wait_until(lambda: proc.poll() is not None or kstat(1, pid=proc.pid), 10), \
            "example never bound queue 1"
        assert proc.poll() is None, proc.communicate()
        r = run_tool([PY, "-c", TRAFFIC, str(port), "3"], ns=env.exns)
        assert r.stdout.split() == ["10", "2000", "30000"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        rules.cleanup()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["UDP packet, 38 bytes", "UDP packet, 2028 bytes",
                                "UDP packet, 30028 bytes", ""]
    assert kstat(1, ns=env.exns) is None       # unbound on the way out
