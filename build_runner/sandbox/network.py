"""The install step's only way out: an allow-list HTTP CONNECT proxy on a UNIX socket.

The sandbox has no network of its own (bwrap's empty network namespace, a container's
`--network none`); the proxy's socket is mounted into it, and an in-sandbox forwarder
(forward.js) turns it back into a TCP proxy address for npm/yarn/pnpm. The proxy runs
in the runner process, in threads, and
- accepts only CONNECT (RFC 9110 §9.3.6) to port 443 of a host on the registry allow-list;
- resolves the name itself and connects to the address it checked, refusing
  loopback (our Redis), link-local (169.254.169.254, cloud metadata), this host's
  own addresses and anything else not globally routable, unless an operator
  allowed that range (a registry mirror on a private network);
- or, when the runner itself reaches the internet through a proxy (HTTPS_PROXY),
  chains the CONNECT to that proxy, which then does the resolving.
Every refusal is reported through `on_refusal`, which the sandbox puts in the build log.
`InstallNetwork` is what a backend uses: the policy from the settings, one proxy per
install, and the paths and variables the sandboxed command needs to reach it.
"""
from __future__ import annotations

import base64
import ipaddress
import logging
import os
import select
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from build_runner.sandbox.addresses import IPAddress, IPNetwork, address_refusal, host_addresses, parse_cidrs
from build_runner.sandbox.base import OnLine
from chalicelib.settings import Settings

ALLOWED_PORTS = frozenset({443})
MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT = 30.0
CONNECT_TIMEOUT = 15.0
# A tunnel with no traffic either way for this long is closed.
IDLE_TIMEOUT = 300.0
# Connections one install may hold open at once. Each is a thread in the runner, outside
# the build's pids cgroup: without a cap, 2,000 idle connections from a build were 2,000
# runner threads. Package managers open far fewer (npm's maxsockets defaults to 15,
# docs.npmjs.com/cli/using-npm/config#maxsockets; yarn berry's networkConcurrency to 50).
MAX_TUNNELS = 64

# How long the proxy reuses a name's checked addresses. Some package managers open one
# tunnel per download through a proxy (measured: pnpm 10, 1,179 CONNECTs for 1,155 tarballs,
# 16 at a time); resolving each one asked the host's resolver ~1,200 times in a burst, some
# lookups failed with EAI_AGAIN, and every 502 cost pnpm a 10-60 s retry (bench/BUILD.md).
RESOLVE_TTL = 30.0
# A lookup that fails with EAI_AGAIN ("try again") is retried after these pauses.
RESOLVE_RETRIES = (0.05, 0.2, 0.5)

# What both backends mount into the sandbox for the install step: the directory holding the
# proxy's socket, and the forwarder, which listens on FORWARD_PORT of the sandbox's own
# loopback (its own network namespace, invisible to the host).
PROXY_SOCKET = "proxy.sock"
SOCKET_DIR = "/run/percel"
FORWARDER = Path(__file__).with_name("forward.js")
FORWARDER_MOUNT = "/run/percel-forward.js"
FORWARD_PORT = 3128

log = logging.getLogger(__name__)


class Refused(Exception):
    """A CONNECT the policy does not allow; the message goes to the build log."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_hosts(value: str) -> frozenset[str]:
    return frozenset(h.strip().lower().rstrip(".") for h in value.split(",") if h.strip())


@dataclass
class ProxyPolicy:
    hosts: frozenset[str]
    allow_cidrs: tuple[IPNetwork, ...] = ()
    local: frozenset[IPAddress] = field(default_factory=host_addresses)
    upstream: str | None = None  # http://[user:pass@]host:port of the runner's own proxy
    # (host, port) -> (monotonic expiry, addresses that passed the check); one proxy per install.
    _resolved: dict[tuple[str, int], tuple[float, list[tuple]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check_target(self, target: str) -> tuple[str, int]:
        host, port = split_target(target)
        if host not in self.hosts:
            raise Refused(403, f"{host}:{port} is not on the registry allow-list")
        if port not in ALLOWED_PORTS:
            raise Refused(403, f"{host}:{port}: only port 443 is allowed")
        return host, port

    def resolve(self, host: str, port: int) -> list[tuple]:
        """The addresses to try; refuses the whole name if any of them is forbidden.

        Addresses that passed the check are reused for RESOLVE_TTL seconds: the proxy still
        connects only to addresses it checked, so this opens no way around the policy; a
        refused name is looked up (and refused) again every time."""
        now = time.monotonic()
        with self._lock:
            cached = self._resolved.get((host, port))
        if cached and cached[0] > now:
            return cached[1]
        infos = _getaddrinfo(host, port)
        for info in infos:
            why = address_refusal(ipaddress.ip_address(info[4][0]), allow=self.allow_cidrs, local=self.local)
            if why:
                raise Refused(403, f"{host} resolves to {info[4][0]}, {why}")
        with self._lock:
            self._resolved[(host, port)] = (now + RESOLVE_TTL, infos)
        return infos


def _getaddrinfo(host: str, port: int) -> list[tuple]:
    for pause in (*RESOLVE_RETRIES, None):
        try:
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno != socket.EAI_AGAIN or pause is None:
                raise Refused(502, f"{host}: cannot resolve ({exc.strerror})") from None
            time.sleep(pause)
    raise AssertionError("unreachable")


def split_target(target: str) -> tuple[str, int]:
    """CONNECT's authority-form "host:port" (RFC 9110 §7.2), IPv6 literals in brackets."""
    host, sep, port = target.rpartition(":")
    # isascii: str.isdigit() accepts "²", which int() then refuses, killing the handler thread.
    if not sep or not (port.isascii() and port.isdigit()):
        raise Refused(400, f"bad CONNECT target {target!r}")
    return host.strip("[]").lower().rstrip("."), int(port)


class _Handler(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(HEADER_TIMEOUT)
        try:
            target = read_connect(client)
            if target is None:
                return  # the sandbox went away mid-request: nothing to refuse or report
            upstream = self.server.open(target)
        except Refused as exc:
            self.server.refused(str(exc))
            _send_status(client, exc.status)
            return
        except OSError as exc:
            self.server.refused(f"connection failed: {exc}")
            _send_status(client, 502)
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            relay(client, upstream)


def read_connect(client: socket.socket) -> str | None:
    """Read one request head: the CONNECT target, None if the client left, or raises Refused."""
    head = b""
    while b"\r\n\r\n" not in head:
        try:
            chunk = client.recv(4096)
        except OSError:
            return None
        if not chunk:
            return None
        head += chunk
        if len(head) > MAX_HEADER_BYTES:
            raise Refused(431, "request head too large")
    method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
    if method != "CONNECT":
        raise Refused(405, f"{method} {rest.split(' ')[0]}: only HTTPS (CONNECT) is allowed")
    return rest.split(" ")[0]


def _send_status(client: socket.socket, status: int) -> None:
    reasons = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
               431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable"}
    try:
        client.sendall(f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    except OSError:
        pass


def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes or the tunnel idles out."""
    a.setblocking(True)
    b.setblocking(True)
    peers = {a: b, b: a}
    while peers:
        ready, _, _ = select.select(list(peers), [], [], IDLE_TIMEOUT)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            other = peers[sock]
            if not data:
                # Half-close: pass the EOF on, keep reading the other direction.
                _shutdown_write(other)
                peers.pop(sock, None)
                continue
            try:
                other.sendall(data)
            except OSError:
                return


def _shutdown_write(sock: socket.socket | None) -> None:
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def connect_direct(policy: ProxyPolicy, host: str, port: int) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _, address in policy.resolve(host, port):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(address)  # the checked address itself: no second DNS lookup to rebind
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"no address for {host}")


def connect_via_upstream(upstream: str, host: str, port: int) -> socket.socket:
    """Open a tunnel through the runner's own HTTP proxy (a CONNECT chained to it)."""
    url = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
    sock = socket.create_connection((url.hostname, url.port or 80), timeout=CONNECT_TIMEOUT)
    auth = ""
    if url.username:
        creds = f"{unquote(url.username)}:{unquote(url.password or '')}".encode()
        auth = f"Proxy-Authorization: Basic {base64.b64encode(creds).decode()}\r\n"
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk or len(head) > MAX_HEADER_BYTES:
            sock.close()
            raise OSError("upstream proxy closed the connection")
        head += chunk
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ")
    if len(parts) < 2 or parts[1] != b"200":
        sock.close()
        raise OSError(f"upstream proxy answered {status_line.decode('latin-1')!r}")
    # Bytes after the head belong to the tunnel; a CONNECT 200 has none before the client speaks.
    return sock


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, policy: ProxyPolicy, on_refusal: Callable[[str], None],
                 max_tunnels: int = MAX_TUNNELS) -> None:
        self.policy = policy
        self.on_refusal = on_refusal
        self.max_tunnels = max_tunnels
        self._slots = threading.BoundedSemaphore(max_tunnels)
        # The listen backlog (socketserver's default is 5). When it is full, a non-blocking
        # connect(2) to a UNIX socket fails at once with EAGAIN instead of waiting (unix(7)),
        # and forward.js drops the package manager's connection. pnpm opens one tunnel per
        # tarball, 16 at a time: measured with backlog 5, 3-20 "ECONNRESET"/"error (undefined).
        # Will retry in 10 seconds" per cold install (bench/BUILD.md (c)).
        self.request_queue_size = max_tunnels
        super().__init__(path, _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """Refuse a connection beyond max_tunnels instead of starting one more runner thread."""
        if not self._slots.acquire(blocking=False):
            self.refused(f"more than {self.max_tunnels} connections at once")
            _send_status(request, 503)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket,  # type: ignore[override]
                               client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def open(self, target: str) -> socket.socket:
        host, port = self.policy.check_target(target)
        if self.policy.upstream:
            return connect_via_upstream(self.policy.upstream, host, port)
        return connect_direct(self.policy, host, port)

    def refused(self, message: str) -> None:
        log.info("install proxy refused: %s", message)
        try:
            self.on_refusal(message)
        except Exception:  # the build log must never take the proxy down
            log.exception("reporting a proxy refusal failed")


class AllowListProxy:
    """One proxy per sandboxed install, serving a UNIX socket at `path` until closed."""

    def __init__(self, path: Path, policy: ProxyPolicy, on_refusal: Callable[[str], None],
                 max_tunnels: int = MAX_TUNNELS) -> None:
        self.path = path
        self._server = _Server(str(path), policy, on_refusal, max_tunnels)
        # shutdown() only takes effect when serve_forever's select() times out: this interval
        # is added to every install step (measured: 0.2 s made a sandboxed `true` with the
        # install network take 205 ms; bench/BUILD.md).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="percel-install-proxy", daemon=True)

    def __enter__(self) -> "AllowListProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class InstallNetwork:
    """The install proxy as the settings describe it, read once per backend: a bad
    BUILD_PROXY_ALLOW_CIDRS stops the runner at start rather than failing every install."""

    def __init__(self, settings: Settings) -> None:
        self._hosts = parse_hosts(settings.build_registry_hosts)
        self._allow_cidrs = parse_cidrs(settings.build_proxy_allow_cidrs)
        # The runner's own way out, when it has one (this machine reaches npm directly).
        self._upstream = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or None

    @property
    def allow_cidrs(self) -> tuple[IPNetwork, ...]:
        return self._allow_cidrs

    @property
    def has_upstream(self) -> bool:
        """True when the runner itself reaches the internet only through an HTTP proxy."""
        return self._upstream is not None

    def proxy(self, directory: Path, on_line: OnLine) -> AllowListProxy:
        """A proxy serving `directory`/proxy.sock (the backend mounts `directory` at SOCKET_DIR);
        refusals go to the build log."""
        directory.mkdir()
        policy = ProxyPolicy(self._hosts, self._allow_cidrs, upstream=self._upstream)
        return AllowListProxy(directory / PROXY_SOCKET, policy,
                              lambda message: on_line(f"percel sandbox: network access refused: {message}"))


def forwarder_argv(command: str) -> list[str]:
    """Run `command` under the in-sandbox forwarder (forward.js), which exits with its status."""
    return ["node", FORWARDER_MOUNT, f"{SOCKET_DIR}/{PROXY_SOCKET}", str(FORWARD_PORT), command]


def proxy_env() -> dict[str, str]:
    """Every spelling npm, yarn (1 and berry), pnpm and bun read for an HTTPS proxy."""
    url = f"http://127.0.0.1:{FORWARD_PORT}"
    names = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "npm_config_proxy",
             "npm_config_https_proxy", "YARN_HTTP_PROXY", "YARN_HTTPS_PROXY")
    return {**{name: url for name in names}, "NO_PROXY": "", "no_proxy": ""}
