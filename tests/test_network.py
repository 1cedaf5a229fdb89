"""The install step's allow-list proxy (build_runner/sandbox/network.py): its address policy,
and the proxy over a real UNIX socket. The end-to-end installs live in tests/test_sandbox.py.
"""
from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from build_runner.sandbox.network import (
    AllowListProxy,
    ProxyPolicy,
    Refused,
    address_refusal,
    host_addresses,
    parse_cidrs,
    parse_hosts,
    split_target,
)

POLICY = ProxyPolicy(parse_hosts("registry.npmjs.org"), (), local=frozenset())


def connect(path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(10)
    client.connect(str(path))
    return client


def status_of(client: socket.socket, target: str) -> bytes:
    client.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    return client.recv(4096).split(b"\r\n")[0]


def test_connections_beyond_the_cap_are_refused_not_threaded(tmp_path):
    """Each connection is a runner thread outside the build's pids limit: a build must not
    be able to make the runner start thousands of them."""
    refusals: list[str] = []
    with AllowListProxy(tmp_path / "proxy.sock", POLICY, refusals.append, max_tunnels=3) as proxy:
        idle = [connect(proxy.path) for _ in range(3)]  # each waits for its request head
        time.sleep(0.2)
        extra = connect(proxy.path)
        assert extra.recv(4096).startswith(b"HTTP/1.1 503 ")
        assert refusals == ["more than 3 connections at once"]
        idle.pop().close()
        time.sleep(0.2)  # the slot is given back when its handler ends
        assert status_of(connect(proxy.path), "evil.example:443") == b"HTTP/1.1 403 Forbidden"
        for client in idle + [extra]:
            client.close()


def test_a_burst_of_connections_waits_for_the_proxy_instead_of_failing(tmp_path):
    """Node connects without blocking: a full listen backlog is EAGAIN, which the forwarder
    turns into a reset for the package manager (pnpm opens 16 tunnels at once)."""
    proxy = AllowListProxy(tmp_path / "proxy.sock", POLICY, lambda _: None, max_tunnels=8)
    burst = []
    for _ in range(8):  # the proxy is listening but not accepting yet: a busy runner
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        client.connect(str(proxy.path))  # BlockingIOError (EAGAIN) once the backlog is full
        client.setblocking(True)
        client.settimeout(10)
        burst.append(client)
    with proxy:
        assert [status_of(client, "evil.example:443") for client in burst] == [b"HTTP/1.1 403 Forbidden"] * 8
    for client in burst:
        client.close()


@pytest.mark.parametrize("target", ["registry.npmjs.org:\u00b2", "registry.npmjs.org:+443",
                                    "registry.npmjs.org:", "registry.npmjs.org"])
def test_odd_ports_are_a_clean_400(target):
    with pytest.raises(Refused) as refused:
        split_target(target)
    assert refused.value.status == 400


# --- the proxy's address policy (pure) ----------------------------------------------------

@pytest.mark.parametrize("address, refused", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("0.0.0.0", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.0.0.5", "private"), ("172.16.3.4", "private"), ("192.168.1.1", "private"),
    ("100.64.0.1", "private"), ("fd00::2", "private"), ("::ffff:127.0.0.1", "loopback"),
    ("224.0.0.1", "multicast"), ("104.16.1.34", None), ("2606:4700::6810:1", None),
])
def test_address_policy(address, refused):
    why = address_refusal(ipaddress.ip_address(address))
    assert (why is None) if refused is None else (refused in why)


def test_allowed_cidr_opens_a_range_but_never_loopback_metadata_or_the_host():
    allow = parse_cidrs("10.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16")
    local = frozenset({ipaddress.ip_address("10.1.2.3")})
    assert address_refusal(ipaddress.ip_address("10.9.9.9"), allow=allow, local=local) is None
    for address in ("127.0.0.1", "169.254.169.254", "10.1.2.3"):
        assert address_refusal(ipaddress.ip_address(address), allow=allow, local=local)


def test_host_addresses_include_loopback():
    assert ipaddress.ip_address("127.0.0.1") in host_addresses()


def _policy(hosts: str) -> ProxyPolicy:
    return ProxyPolicy(parse_hosts(hosts), (), local=frozenset())


def test_checked_addresses_are_reused_and_a_refused_name_is_asked_again(monkeypatch):
    """pnpm opens one tunnel per tarball: one lookup per CONNECT was ~1,200 lookups in a burst."""
    answers = {"registry.npmjs.org": "104.16.1.34", "evil.example": "127.0.0.1"}
    lookups: list[str] = []

    def getaddrinfo(host, port, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    policy = _policy("registry.npmjs.org,evil.example")
    for _ in range(5):
        assert policy.resolve("registry.npmjs.org", 443)[0][4][0] == "104.16.1.34"
        with pytest.raises(Refused):
            policy.resolve("evil.example", 443)
    assert lookups == ["registry.npmjs.org"] + ["evil.example"] * 5


def test_a_temporary_lookup_failure_is_retried(monkeypatch):
    failures = [socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")] * 2

    def getaddrinfo(host, port, **kwargs):
        if failures:
            raise failures.pop()
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("104.16.1.34", port))]
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert _policy("registry.npmjs.org").resolve("registry.npmjs.org", 443)[0][4][0] == "104.16.1.34"


def test_a_name_that_does_not_exist_is_not_retried(monkeypatch):
    calls: list[str] = []

    def getaddrinfo(host, port, **kwargs):
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(Refused) as refused:
        _policy("registry.npmjs.org").resolve("registry.npmjs.org", 443)
    assert refused.value.status == 502 and len(calls) == 1
