"""Which addresses a build may reach: one rule for the install proxy and the public network.

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

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv4 ranges that are never public, for the packet filter (which cannot call is_global):
# the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates), whole blocks.
NON_PUBLIC_V4 = tuple(ipaddress.IPv4Network(net) for net in (
    "0.0.0.0/8",        # "this network" (RFC 791)
    "10.0.0.0/8",       # private (RFC 1918)
    "100.64.0.0/10",    # carrier-grade NAT (RFC 6598)
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local (RFC 3927), cloud metadata at 169.254.169.254
    "172.16.0.0/12",    # private (RFC 1918)
    "192.0.0.0/24",     # IETF protocol assignments (RFC 6890)
    "192.0.2.0/24",     # documentation (RFC 5737)
    "192.168.0.0/16",   # private (RFC 1918)
    "198.18.0.0/15",    # benchmarking (RFC 2544)
    "198.51.100.0/24",  # documentation (RFC 5737)
    "203.0.113.0/24",   # documentation (RFC 5737)
    "224.0.0.0/4",      # multicast (RFC 5771)
    "240.0.0.0/4",      # reserved, and the limited broadcast 255.255.255.255 (RFC 1112, RFC 919)
))
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


def address_refusal(address: IPAddress, *, allow: tuple[IPNetwork, ...] = (),
                    local: frozenset[IPAddress] = frozenset()) -> str | None:
    """Why a build must not connect to `address`, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address in local:
        return "an address of the build host"
    if address.is_multicast:
        return "a multicast address"
    if any(address in net for net in allow):
        return None
    if not address.is_global or any(address in net for net in NON_PUBLIC_V4):
        return "a private or reserved address"
    return None
