"""BUILD_NETWORK=public (build_runner/sandbox/public_network.py), with real sandboxes.

The test builds its own little internet: a network namespace joined to the host by a veth
pair, holding an HTTP server on several addresses:
- ADMITTED (198.18.x.2): a benchmarking-range address that BUILD_PROXY_ALLOW_CIDRS admits,
  standing in for a public server (no traffic may leave this machine);
- PRIVATE (172.31.x.5, RFC 1918) and METADATA (169.254.169.254), routed from the host
  into the namespace, so that a filter that lets them through would reach a real server;
- the host's own end of the veth (198.18.x.1, inside the allowed range, so "never the
  host" must win over the allow-list) and the host's other addresses, where a server
  bound to 0.0.0.0 listens, plus one on 127.0.0.1.
Every refusal test also checks that the server saw nothing, and `test_without_the_filter_*`
shows the same probes do get through when the filter is replaced by an accept-all table,
so the refusals are the filter's doing.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from build_runner.sandbox import SandboxUnavailable, make_sandbox, public_network
from build_runner.sandbox.addresses import NON_PUBLIC_V4, host_addresses, parse_cidrs
from build_runner.sandbox.public_network import refusal_line, refused_destinations, ruleset
from chalicelib.settings import Settings
from tests.test_sandbox import REGISTRY, Build, UpstreamProxy, registry_cidrs

needs_bwrap = pytest.mark.needs_bwrap

SUBNET = os.getpid() % 250 + 1  # the third octet: concurrent runs of this file do not collide
HOST_END = f"198.18.{SUBNET}.1"
ADMITTED = f"198.18.{SUBNET}.2"
PRIVATE = f"172.31.{SUBNET}.5"
METADATA = "169.254.169.254"
PORT = 8080
ALLOW = f"198.18.{SUBNET}.0/30"  # ADMITTED and HOST_END, not PRIVATE


def settings(**overrides) -> Settings:
    allow = ",".join(filter(None, [ALLOW, registry_cidrs()]))
    base = Settings(build_sandbox="bwrap", build_network="public", build_memory_mb=512, build_max_pids=256,
                    build_max_file_mb=64, build_tmp_mb=64, build_proxy_allow_cidrs=allow)
    return replace(base, **overrides)


# --- the test's own network -----------------------------------------------------------------

SERVER = r"""
import http.server, socket, sys, threading
def udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", int(sys.argv[1])))
    while True:
        data, peer = sock.recvfrom(512)
        print("udp", flush=True)
        sock.sendto(b"echo " + data, peer)
threading.Thread(target=udp_echo, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {self.connection.getsockname()[0]}\n".encode()
        print(self.connection.getsockname()[0], flush=True)
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


def sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


class NamespaceHosts:
    """The namespace, its veth, routes into it and the HTTP server inside; records the hits."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.netns, self.veth = f"percel-t{tag}", f"pt{tag}"
        sh("ip", "netns", "add", self.netns)
        try:
            sh("ip", "link", "add", f"{self.veth}h", "type", "veth", "peer", "name", f"{self.veth}n")
            sh("ip", "link", "set", f"{self.veth}n", "netns", self.netns)
            sh("ip", "addr", "add", f"{HOST_END}/29", "dev", f"{self.veth}h")
            sh("ip", "link", "set", f"{self.veth}h", "up")
            inside = ["ip", "netns", "exec", self.netns]
            for address in (f"{ADMITTED}/29", f"{PRIVATE}/32", f"{METADATA}/32"):
                sh(*inside, "ip", "addr", "add", address, "dev", f"{self.veth}n")
            sh(*inside, "ip", "link", "set", f"{self.veth}n", "up")
            sh(*inside, "ip", "link", "set", "lo", "up")
            # Routes on the host side die with the veth, so teardown cannot leave them behind.
            for address in (PRIVATE, METADATA):
                sh("ip", "route", "replace", f"{address}/32", "via", ADMITTED, "dev", f"{self.veth}h")
            self.server = subprocess.Popen([*inside, sys.executable, "-c", SERVER, str(PORT)],
                                           stdout=subprocess.PIPE, text=True)
            self.hits: list[str] = []
            threading.Thread(target=self._read_hits, daemon=True).start()
            self._wait_until_up()
        except BaseException:
            self.close()
            raise

    def _read_hits(self) -> None:
        assert self.server.stdout is not None
        for line in self.server.stdout:
            self.hits.append(line.strip())

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((ADMITTED, PORT), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the test namespace's server did not start")

    def close(self) -> None:
        if getattr(self, "server", None) is not None:
            self.server.kill()
            self.server.wait()
        subprocess.run(["ip", "link", "del", f"{self.veth}h"], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


@pytest.fixture(scope="module")
def hosts():
    test_hosts = NamespaceHosts()
    # The host reaches every one of them: failing from the sandbox is the sandbox's doing.
    for address in (ADMITTED, PRIVATE, METADATA):
        with socket.create_connection((address, PORT), timeout=2):
            pass
    yield test_hosts
    test_hosts.close()


class HostServer:
    """A TCP server on the host answering "+PONG": one on 127.0.0.1 (our Redis), one on
    0.0.0.0 (any service listening on every address of the host)."""

    def __init__(self, bind: str) -> None:
        self.sock = socket.create_server((bind, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"+PONG\r\n")
            conn.close()


@pytest.fixture(scope="module")
def host_servers():
    servers = HostServer("127.0.0.1"), HostServer("0.0.0.0")
    yield servers
    for server in servers:
        server.sock.close()


def own_address() -> str:
    """One of this host's own non-loopback IPv4 addresses (not the test veth's)."""
    for address in sorted(host_addresses(), key=str):
        if address.version == 4 and not address.is_loopback and not str(address).startswith("198.18."):
            return str(address)
    pytest.fail("this host has no IPv4 address besides loopback")


def fetch(url: str) -> str:
    """curl, then node's fetch (which ignores proxy variables), each printing OK or FAILED."""
    node = (f"fetch({json.dumps(url)}).then(r => r.text()).then(t => console.log('node OK', t.trim()), "
            "e => console.log('node FAILED', (e.cause && e.cause.code) || e.message))")
    return (f"if out=$(curl -sS -m 5 {url} 2>&1); then echo \"curl OK $out\"; else echo \"curl FAILED $out\"; fi; "
            f"node -e {json.dumps(node)}")


STEPS = pytest.mark.parametrize("install", [True, False], ids=["install", "build"])


# --- real sandboxes ---------------------------------------------------------------------------

@needs_bwrap
@STEPS
def test_admitted_server_answers_both_steps(tmp_path, hosts, install):
    build = Build(make_sandbox(settings()), tmp_path)
    result = build.run(fetch(f"http://{ADMITTED}:{PORT}/"), network=install)
    assert result.exit_code == 0, build.log
    assert f"curl OK hello from {ADMITTED}" in build.lines, build.log
    assert f"node OK hello from {ADMITTED}" in build.lines, build.log


@needs_bwrap
@STEPS
def test_private_and_metadata_addresses_are_refused(tmp_path, hosts, install):
    build = Build(make_sandbox(settings()), tmp_path)
    hosts.hits.clear()
    build.run("; ".join(fetch(f"http://{address}:{PORT}/") for address in (PRIVATE, METADATA)), network=install)
    assert "OK" not in build.log and build.log.count("FAILED") == 4, build.log
    assert "node FAILED ECONNREFUSED" in build.lines
    assert f"percel sandbox: network access refused: {PRIVATE}:{PORT} is a private or reserved address" \
        in build.lines
    assert f"percel sandbox: network access refused: {METADATA}:{PORT} is a link-local address " \
        "(cloud metadata lives there)" in build.lines
    time.sleep(0.2)
    assert hosts.hits == []


def udp_probe(address: str) -> str:
    script = (f"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)\n"
              f"try:\n s.sendto(b'ping', ({address!r}, {PORT})); print('UDP', s.recv(64).decode())\n"
              "except OSError as e:\n print('UDP FAILED', e)")
    return f"python3 -c \"{script}\""


@needs_bwrap
def test_udp_reaches_the_admitted_server_and_not_a_private_one(tmp_path, hosts):
    build = Build(make_sandbox(settings()), tmp_path)
    hosts.hits.clear()
    build.run(f"{udp_probe(ADMITTED)}; {udp_probe(PRIVATE)}")
    assert build.lines[0] == "UDP echo ping", build.log
    assert build.lines[1].startswith("UDP FAILED"), build.log
    assert f"percel sandbox: network access refused: {PRIVATE}:{PORT} is a private or reserved address (udp)" \
        in build.lines
    time.sleep(0.2)
    assert hosts.hits == ["udp"]  # the admitted one only


@needs_bwrap
def test_a_name_resolving_to_a_private_address_is_refused(tmp_path, hosts):
    # DNS rebinding: the filter judges the address a name resolves to, whatever the name.
    # curl --resolve and node's `lookup` stand in for a DNS server answering with PRIVATE.
    build = Build(make_sandbox(settings()), tmp_path)
    hosts.hits.clear()
    node = (f"require('http').get({{host: 'rebound.example', port: {PORT}, "
            f"lookup: (h, o, cb) => o.all ? cb(null, [{{address: '{PRIVATE}', family: 4}}]) "
            f": cb(null, '{PRIVATE}', 4)}}, "
            "r => console.log('node OK', r.statusCode)).on('error', e => console.log('node FAILED', e.code))")
    build.run(f"curl -sS -m 5 --resolve rebound.example:{PORT}:{PRIVATE} http://rebound.example:{PORT}/; "
              f"node -e {json.dumps(node)}")
    assert "Failed to connect to rebound.example" in build.log and "node FAILED ECONNREFUSED" in build.lines, \
        build.log
    time.sleep(0.2)
    assert hosts.hits == []


@needs_bwrap
@STEPS
def test_host_loopback_and_own_addresses_are_refused(tmp_path, hosts, host_servers, install):
    loopback, everywhere = host_servers
    build = Build(make_sandbox(settings()), tmp_path)
    own = own_address()
    targets = [f"127.0.0.1:{loopback.port}", f"10.0.2.2:{loopback.port}", f"10.0.2.2:{everywhere.port}",
               f"{own}:{everywhere.port}", f"{HOST_END}:{everywhere.port}"]
    build.run("; ".join(f"curl -sS -m 3 telnet://{t} </dev/null 2>&1 | head -1" for t in targets), network=install)
    assert "PONG" not in build.log, build.log
    assert loopback.accepted == 0 and everywhere.accepted == 0
    # HOST_END is inside the allowed range: the host's own addresses are refused all the same.
    assert f"percel sandbox: network access refused: {HOST_END}:{everywhere.port} is " \
        "an address of the build host" in build.lines
    assert f"percel sandbox: network access refused: {own}:{everywhere.port} is " \
        "an address of the build host" in build.lines


@needs_bwrap
@STEPS
def test_dns_resolves_through_the_slirp_forwarder(tmp_path, install):
    build = Build(make_sandbox(settings()), tmp_path)
    result = build.run(f"cat /etc/resolv.conf; getent hosts {REGISTRY}; "
                       f"node -e \"require('dns').promises.resolve4('{REGISTRY}').then(a => console.log('A', a))\"",
                       network=install)
    assert result.exit_code == 0, build.log
    assert "nameserver 10.0.2.3" in build.lines
    assert any(line.endswith(REGISTRY) for line in build.lines), build.log  # getaddrinfo
    assert any(line.startswith("A [") for line in build.lines), build.log  # a DNS query of its own


@needs_bwrap
def test_dns_goes_only_to_the_forwarder(tmp_path, hosts):
    # The admitted test host would answer on any port; port 53 is refused there all the same.
    build = Build(make_sandbox(settings()), tmp_path)
    build.run(f"node -e \"const r = new (require('dns').promises.Resolver)(); r.setServers(['{ADMITTED}']); "
              f"r.resolve4('{REGISTRY}').then(a => console.log('A', a), e => console.log('DNS', e.code))\"")
    assert f"percel sandbox: network access refused: {ADMITTED}:53 is not the sandbox's DNS resolver " \
        "(10.0.2.3), the only one a build may ask (udp)" in build.lines, build.log


@needs_bwrap
def test_npm_install_and_build_step_reach_the_registry_directly(tmp_path, monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy"):  # a runner with its own way out, see below
        monkeypatch.delenv(name, raising=False)
    build = Build(make_sandbox(settings()), tmp_path)
    result = build.run("env | grep -ci proxy; npm init -y > /dev/null && "
                       "npm install --no-audit --no-fund is-number@7.0.0", network=True, timeout=120)
    assert result.exit_code == 0, build.log
    assert build.lines[0] == "0"  # no proxy variables: the package manager connects itself
    result = build.run(f"node -e \"fetch('https://{REGISTRY}/is-number').then(r => console.log('status', r.status))\"")
    assert result.exit_code == 0 and "status 200" in build.lines, build.log


@needs_bwrap
def test_the_filter_cannot_be_changed_from_inside(tmp_path):
    build = Build(make_sandbox(settings()), tmp_path)
    build.run("nft flush ruleset; echo nft=$?; ip route add 169.254.169.254 dev tap0; echo route=$?")
    assert "nft=1" in build.lines and "route=2" in build.lines, build.log
    assert "Operation not permitted" in build.log


@needs_bwrap
@STEPS
def test_without_the_filter_the_same_probes_get_through(tmp_path, hosts, host_servers, monkeypatch, install):
    # The control for the refusal tests: the test hosts and the host's own addresses are
    # reachable through slirp4netns, so only the filter stands between a build and them.
    monkeypatch.setattr(public_network, "ruleset", lambda **_: "table inet percel { }\n")
    loopback, everywhere = host_servers
    loopback.accepted = 0
    build = Build(make_sandbox(settings()), tmp_path)
    build.run(f"curl -sS -m 5 http://{PRIVATE}:{PORT}/; curl -sS -m 5 http://{METADATA}:{PORT}/; "
              f"curl -sS -m 3 telnet://{own_address()}:{everywhere.port} </dev/null | head -1; "
              f"curl -sS -m 3 telnet://10.0.2.2:{loopback.port} </dev/null | head -1", network=install)
    assert f"hello from {PRIVATE}" in build.lines and f"hello from {METADATA}" in build.lines, build.log
    assert "+PONG" in build.log
    # slirp4netns's --disable-host-loopback alone keeps the host's 127.0.0.1 out of reach.
    assert loopback.accepted == 0


@needs_bwrap
def test_a_filter_that_fails_to_load_stops_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(public_network, "ruleset", lambda **_: "table inet percel { nonsense }\n")
    build = Build(make_sandbox(settings()), tmp_path)
    result = build.run("touch ran")
    assert result.exit_code is None and result.reason.startswith("the build network could not be set up: nft")
    assert not (build.workdir / "ran").exists()


@needs_bwrap
def test_install_also_gets_the_proxy_when_the_runner_needs_one(tmp_path, hosts, monkeypatch):
    # A runner behind an HTTP proxy (HTTPS_PROXY) sends the registry through it, as in
    # registries mode; everything else still goes out through the filtered namespace.
    upstream = UpstreamProxy()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{upstream.port}")
    build = Build(make_sandbox(settings()), tmp_path)
    result = build.run(f"curl -fsS -m 20 https://{REGISTRY}/is-number -o /dev/null && echo registry OK; "
                       + fetch(f"http://{ADMITTED}:{PORT}/"), network=True)
    upstream.sock.close()
    assert result.exit_code == 0 and "registry OK" in build.lines, build.log
    assert upstream.targets == [f"{REGISTRY}:443"]
    assert f"node OK hello from {ADMITTED}" in build.lines, build.log


@needs_bwrap
def test_registries_mode_keeps_the_build_offline(tmp_path, hosts):
    build = Build(make_sandbox(settings(build_network="registries")), tmp_path)
    result = build.run(fetch(f"http://{ADMITTED}:{PORT}/"))
    assert result.exit_code == 0 and "OK" not in build.log, build.log


# --- without a sandbox -------------------------------------------------------------------------

@needs_bwrap
def test_public_mode_without_slirp4netns_refuses_to_start(monkeypatch):
    monkeypatch.setattr(public_network, "SLIRP4NETNS", "/nonexistent/slirp4netns")
    for backend in ("bwrap", "auto"):
        with pytest.raises(SandboxUnavailable, match="BUILD_NETWORK=public needs /nonexistent/slirp4netns"):
            make_sandbox(settings(build_sandbox=backend))
    assert make_sandbox(settings(build_network="registries")).name == "bwrap"


def test_unknown_network_mode_is_a_clear_error():
    with pytest.raises(SandboxUnavailable, match="unknown BUILD_NETWORK"):
        make_sandbox(settings(build_network="open"))


def test_ruleset_refuses_the_host_before_the_allow_list():
    local = frozenset({ipaddress.ip_address("192.0.2.2"), ipaddress.ip_address("fd00::2")})
    rules = ruleset(allow=parse_cidrs("10.1.0.0/16, fd01::/16"), local=local)
    never = next(line for line in rules.splitlines() if "set never" in line)
    assert all(net in never for net in ("127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "192.0.2.2", "10.0.2.0/24"))
    assert "fd00::2" not in rules and "fd01" not in rules  # IPv6 is refused whole
    lines = [line.strip() for line in rules.splitlines()]
    order = [lines.index(rule) for rule in ("ip daddr @never jump refuse", "ip daddr @allowed accept",
                                             "ip daddr @nonpublic jump refuse", "meta nfproto ipv4 accept")]
    assert order == sorted(order)
    assert lines.index("meta nfproto ipv6 reject with icmpx type admin-prohibited") < order[0]


def test_non_public_ranges_agree_with_the_standard_library():
    for net in NON_PUBLIC_V4:
        assert not net[1].is_global or net[1].is_multicast, net
    for public in ("1.1.1.1", "8.8.8.8", "104.16.0.1", "192.0.1.1", "198.20.0.1", "223.255.255.1"):
        assert not any(ipaddress.ip_address(public) in net for net in NON_PUBLIC_V4)


def test_refusal_lines_read_like_the_proxys():
    # "<host>:<port> is <why>", as the install proxy words its refusals.
    metadata = ipaddress.ip_address(METADATA)
    assert refusal_line(metadata, "tcp", 80, "a link-local address") == \
        "percel sandbox: network access refused: 169.254.169.254:80 is a link-local address"
    assert refusal_line(ipaddress.ip_address("1.1.1.1"), "udp", 53, None) == \
        "percel sandbox: network access refused: 1.1.1.1:53 is not the sandbox's DNS resolver (10.0.2.3), " \
        "the only one a build may ask (udp)"


def test_refused_destinations_read_from_nft_json():
    listing = {"nftables": [{"metainfo": {}}, {"set": {"name": "refused", "elem": [
        {"concat": ["169.254.169.254", "tcp", 80]}, {"concat": ["10.0.0.1", "udp", 53]}]}}]}
    assert refused_destinations(listing) == [(ipaddress.ip_address("10.0.0.1"), "udp", 53),
                                             (ipaddress.ip_address("169.254.169.254"), "tcp", 80)]


def test_settings_default_to_the_public_network():
    assert Settings().build_network == "public"


