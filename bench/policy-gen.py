#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""policy-gen.py RULES - print one nfq-broker policy object of RULES rules
for scripts/bench: a platform team's rules (a protocol, two destination
CIDRs of 10.x.y.0/24, a port and a port range each, half accept, half
drop), none of which matches the bench's traffic, then the last rule, which
does: UDP to 127.0.0.0/8 or 10.99.0.0/24, ports 5000-5999, accept. The
default is drop, so a datagram the last rule misses never arrives."""
import json
import sys


def octet(v):
    """10.99.0.0/24 is the bench's veth: no other rule may cover it."""
    return 98 if v == 99 else v


def policy(n):
    seed, rules = 777, []
    for i in range(n - 1):
        seed = (seed * 1103515245 + 12345) & 0xFFFFFFFF
        rules.append({
            "name": "r%d" % i,
            "match": {
                "proto": "tcp" if seed & 1 else "udp",
                "dst": ["10.%d.%d.0/24" % (octet((seed >> 8) & 255), (seed >> 16) & 255),
                        "10.%d.%d.0/24" % (octet((seed >> 4) & 255), (seed >> 20) & 255)],
                "dport": [1024 + (seed >> 12) % 60000,
                          "%d-%d" % (6000 + (seed >> 3) % 50000, 6010 + (seed >> 3) % 50000)],
            },
            "verdict": "accept" if i % 2 else "drop",
        })
    rules.append({"name": "bench", "match": {"proto": "udp",
                                              "dst": ["127.0.0.0/8", "10.99.0.0/24"],
                                              "dport": "5000-5999"},
                  "verdict": "accept"})
    return {"default": "drop", "rules": rules}


if __name__ == "__main__":
    json.dump(policy(int(sys.argv[1])), sys.stdout, separators=(",", ":"))
