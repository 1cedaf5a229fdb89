"""Which addresses are not the public internet: one rule for everything percel connects to.

The upload service's clone (chalicelib/pipeline/validation.py) and both ways out of the build
sandbox (build_runner/sandbox/addresses.py) refuse the same destinations: loopback (our Redis,
the API, the S3 endpoint), link-local (169.254.169.254: the cloud metadata service of AWS, GCP,
Azure, Oracle, DigitalOcean, OpenStack), multicast, and any other address that is not globally
routable (private ranges, carrier-grade NAT with Alibaba's metadata at 100.100.100.200, IPv6
unique-local with AWS's fd00:ec2::254, Oracle's 192.0.0.192), unless a caller admits a range.
Loopback and link-local are refused even then.
"""
from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv4 ranges that are never public, for the packet filter (which cannot call is_global):
# the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates), whole blocks.
NON_PUBLIC_V4 = tuple(ipaddress.IPv4Network(net) for net in (
    "0.0.0.0/8",        # "this network" (RFC 791)
    "10.0.0.0/8",       # private (RFC 1918)
    "100.64.0.0/10",    # carrier-grade NAT (RFC 6598); Alibaba Cloud metadata at 100.100.100.200
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local (RFC 3927), cloud metadata at 169.254.169.254
    "172.16.0.0/12",    # private (RFC 1918)
    "192.0.0.0/24",     # IETF protocol assignments (RFC 6890); Oracle Cloud metadata at 192.0.0.192
    "192.0.2.0/24",     # documentation (RFC 5737)
    "192.168.0.0/16",   # private (RFC 1918)
    "198.18.0.0/15",    # benchmarking (RFC 2544)
    "198.51.100.0/24",  # documentation (RFC 5737)
    "203.0.113.0/24",   # documentation (RFC 5737)
    "224.0.0.0/4",      # multicast (RFC 5771)
    "240.0.0.0/4",      # reserved, and the limited broadcast 255.255.255.255 (RFC 1112, RFC 919)
))
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052 section 2.1);
# Python counts the whole prefix as global, so the address inside is what must be judged.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_v4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped (::ffff:a.b.c.d) or NAT64 address reaches, else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_loopback(address: IPAddress) -> bool:
    return embedded_v4(address).is_loopback


def address_refusal(address: IPAddress, *, allow: tuple[IPNetwork, ...] = (),
                    local: frozenset[IPAddress] = frozenset()) -> str | None:
    """Why percel must not connect to `address` for a user, or None when it may."""
    address = embedded_v4(address)
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
