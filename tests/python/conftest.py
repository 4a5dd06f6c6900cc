# SPDX-License-Identifier: MIT
"""Fixtures for the netfilterqueue tests.

tests/netns/python.sh runs pytest inside a network namespace it created
(NFQB_PY_NS), joined by a veth pair to a peer namespace (NFQB_PY_PEER), and
gives a third namespace for the README examples (NFQB_PY_EXNS). Rules are
added with iptables inside those namespaces only and removed after each
test; every wait is bounded.
"""
import gc
import itertools
import os

import pytest

from helpers import Env, Receiver, Rules

ENV_KEYS = ("NFQB_PY_NS", "NFQB_PY_PEER", "NFQB_PY_EXNS")


def _have_env():
    return all(os.environ.get(k) for k in ENV_KEYS)


def pytest_collection_modifyitems(config, items):
    if not _have_env():
        skip = pytest.mark.skip(reason="run by tests/netns/python.sh (needs its namespaces)")
        for item in items:
            item.add_marker(skip)


def pytest_sessionstart(session):
    # The rules these tests add must never land in another namespace.
    if not _have_env():
        return
    ns = os.environ["NFQB_PY_NS"]
    try:
        inside = os.stat(f"/run/netns/{ns}").st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        inside = False
    if not inside:
        pytest.exit(f"refusing to run: not inside network namespace {ns}", returncode=3)


@pytest.fixture(scope="session")
def env():
    return Env()


_qnums = itertools.count(100)
_ports = itertools.count(21000)


@pytest.fixture
def qnum():
    """A queue number no other test uses."""
    return next(_qnums)


@pytest.fixture
def new_qnum():
    """A factory of queue numbers no other test uses."""
    return lambda: next(_qnums)


@pytest.fixture
def port():
    """A UDP port no other test uses."""
    return next(_ports)


@pytest.fixture
def rules():
    r = Rules()
    yield r
    r.cleanup()


@pytest.fixture
def receiver():
    made = []

    def make(addr, port):
        r = Receiver(addr, port)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture(autouse=True)
def _collect_queues():
    # Queue objects a test leaves behind unbind now, not in a later test.
    yield
    gc.collect()
