"""Which addresses a build may reach: one rule for the install proxy and the public network
(the rule itself is chalicelib/addresses.py, which the upload service's clone applies too).

Both ways out of the sandbox (network.py's allow-list proxy, public_network.py's filtered
namespace) refuse the same destinations: loopback (our Redis, the API, the S3 endpoint),
link-local (169.254.169.254, cloud metadata), multicast, this host's own addresses, and any
other address that is not globally routable, unless an operator admitted that range
(BUILD_PROXY_ALLOW_CIDRS: a registry mirror on a private network). Loopback, link-local,
multicast and the host's own addresses are refused even then.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path

# The classifier is shared with the upload service's clone, below both (docs/DECISIONS.md#layers).
from chalicelib.addresses import NON_PUBLIC_V4, IPAddress, IPNetwork, address_refusal

__all__ = ["NEVER_V4", "NON_PUBLIC_V4", "IPAddress", "IPNetwork", "address_refusal", "host_addresses",
           "parse_cidrs"]

# Refused even when an operator's allow-list covers them.
NEVER_V4 = tuple(ipaddress.IPv4Network(net) for net in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16",
                                                        "224.0.0.0/4", "255.255.255.255/32"))


def parse_cidrs(value: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in value.split(",") if c.strip())


def host_addresses() -> frozenset[IPAddress]:
    """Every address of this machine's interfaces (a service bound to 0.0.0.0 listens on all of them)."""
    found: set[IPAddress] = set()
    try:  # IPv4: "/32 host LOCAL" leaves of the local routing table
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for prev, line in zip(lines, lines[1:], strict=False):
            if "/32 host LOCAL" in line and "|--" in prev:
                found.add(ipaddress.ip_address(prev.split("|--")[1].strip()))
    except (OSError, ValueError):
        pass
    try:  # IPv6: first column is the address in 32 hex digits
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            found.add(ipaddress.IPv6Address(int(line.split()[0], 16)))
    except (OSError, ValueError, IndexError):
        pass
    return frozenset(found)
