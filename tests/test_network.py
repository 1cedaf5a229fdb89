"""The install step's allow-list proxy (build_runner/netproxy.py), over a real UNIX socket.

Policy tables (addresses, hosts) and the end-to-end installs live in tests/test_sandbox.py.
"""
from __future__ import annotations

import socket
import time

import pytest

from build_runner.sandbox.network import AllowListProxy, ProxyPolicy, Refused, parse_hosts, split_target

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


@pytest.mark.parametrize("target", ["registry.npmjs.org:\u00b2", "registry.npmjs.org:+443",
                                    "registry.npmjs.org:", "registry.npmjs.org"])
def test_odd_ports_are_a_clean_400(target):
    with pytest.raises(Refused) as refused:
        split_target(target)
    assert refused.value.status == 400
