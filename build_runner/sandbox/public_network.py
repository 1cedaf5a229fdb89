"""BUILD_NETWORK=public: a network namespace that looks like the internet, filtered on our side.

The sandbox keeps its own network namespace (bwrap --unshare-net). The runner, root on the
host, then gives it a way out before the command starts (bwrap --block-fd holds it):

1. slirp4netns attaches a TAP device to the namespace and carries its traffic as ordinary
   sockets of the host (10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3). The runner
   configures the device itself (`ip`, through nsenter) rather than with slirp4netns's
   `--configure`, which also sets the namespace's `lo` up: racing bwrap's own loopback
   setup, that failed 11 runs in 100 here ("bwrap: loopback: Failed RTM_NEWADDR").
   `--disable-host-loopback` stops 10.0.2.2 from reaching the host's 127.0.0.1;
   `--enable-sandbox --enable-seccomp` confine slirp4netns itself, which parses the
   build's packets as root.
2. An nftables table, installed INSIDE the namespace through nsenter, sees every packet
   the build sends before slirp4netns does: DNS (port 53) only to slirp's forwarder, which
   asks the host's resolver; no IPv6; never loopback, link-local (169.254.169.254),
   multicast or this host's own addresses (slirp4netns would connect to those from the
   host), and no other non-public address unless BUILD_PROXY_ALLOW_CIDRS admits it. The
   build runs as uid 1000 without capabilities, so it cannot change the table. A DNS answer
   pointing at a private address (rebinding) meets the same table, since it filters
   addresses, not names.
3. Refused destinations are recorded in a set of the table; after the command the runner
   reads it and puts one line per destination in the build log.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import select
import subprocess
import time
from collections.abc import Sequence
from types import TracebackType

from build_runner.sandbox.addresses import (
    NEVER_V4,
    NON_PUBLIC_V4,
    IPAddress,
    IPNetwork,
    address_refusal,
    host_addresses,
)
from build_runner.sandbox.base import OnLine

SLIRP4NETNS = "/usr/bin/slirp4netns"
NSENTER = "/usr/bin/nsenter"
NFT = "/usr/sbin/nft"
IP = "/usr/bin/ip"
# slirp4netns's defaults for --cidr 10.0.2.0/24 (slirp4netns(1)).
SLIRP_NET = "10.0.2.0/24"
SLIRP_DNS = "10.0.2.3"
SLIRP_GATEWAY = "10.0.2.2"
SANDBOX_ADDRESS = "10.0.2.100/24"
TAP = "tap0"
# 65520 is slirp4netns's largest MTU; its man page measures about 10x the throughput of 1500.
MTU = 65520
# How long the runner waits for bwrap to report the sandbox's pid, for slirp4netns to start
# and for each nsenter (measured: about 10, 5 and 4 ms here) before giving the build up.
SETUP_TIMEOUT = 10.0
TABLE = "percel"
REFUSED_SET = "refused"
# Distinct refused destinations remembered per command: enough to explain a failure.
MAX_REPORTED = 64

log = logging.getLogger(__name__)


class NetworkSetupFailed(RuntimeError):
    """The public network could not be attached; the command must not run without its filter."""


def public_network_problem() -> str | None:
    """None when this host has what BUILD_NETWORK=public needs, else why not."""
    for tool, package in ((SLIRP4NETNS, "slirp4netns"), (NSENTER, "util-linux"), (NFT, "nftables"),
                          (IP, "iproute2")):
        if not os.access(tool, os.X_OK):
            return f"{tool} not found (Debian package {package})"
    return None


def resolv_conf() -> str:
    return f"nameserver {SLIRP_DNS}\noptions edns0\n"


def _elements(members: Sequence[object]) -> str:
    """An nft set's elements clause; an empty set has none (nft refuses `elements = { }`)."""
    return f" elements = {{ {', '.join(str(m) for m in members)} }};" if members else ""


def ruleset(*, allow: tuple[IPNetwork, ...], local: frozenset[IPAddress]) -> str:
    """The nftables table for one sandbox (nft -f syntax). Order matters: the ranges refused
    whatever the operator allowed come before the allow-list, the rest of the non-public
    ranges after it; anything else (public IPv4) is accepted."""
    never: list[object] = [*NEVER_V4, *sorted(a for a in local if a.version == 4), SLIRP_NET]
    allowed = [n for n in allow if n.version == 4]
    return f"""\
table inet {TABLE} {{
  set never {{ type ipv4_addr; flags interval; auto-merge;{_elements(never)} }}
  set allowed {{ type ipv4_addr; flags interval; auto-merge;{_elements(allowed)} }}
  set nonpublic {{ type ipv4_addr; flags interval; auto-merge;{_elements(NON_PUBLIC_V4)} }}
  set {REFUSED_SET} {{ type ipv4_addr . inet_proto . inet_service; flags dynamic; size {MAX_REPORTED}; }}
  chain output {{
    type filter hook output priority 0; policy drop;
    oif "lo" accept
    ip daddr {SLIRP_DNS} udp dport 53 accept
    ip daddr {SLIRP_DNS} tcp dport 53 accept
    meta l4proto {{ tcp, udp }} th dport 53 jump refuse
    meta nfproto ipv6 reject with icmpx type admin-prohibited
    ip daddr @never jump refuse
    ip daddr @allowed accept
    ip daddr @nonpublic jump refuse
    meta nfproto ipv4 accept
  }}
  chain refuse {{
    add @{REFUSED_SET} {{ ip daddr . meta l4proto . th dport }}
    meta l4proto tcp reject with tcp reset
    reject with icmpx type admin-prohibited
  }}
}}
"""


class Attachment:
    """slirp4netns and the filter attached to one sandbox, from setup until the command ended."""

    def __init__(self, pid: int, allow: tuple[IPNetwork, ...], on_line: OnLine) -> None:
        self._allow = allow
        self._local = host_addresses()
        self._on_line = on_line
        self._slirp: subprocess.Popen | None = None
        self._exit_w: int | None = None
        try:
            # Holding the namespace open lets the refusals be read after every process in it exited.
            self._netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:  # the sandbox died before it could be attached
            raise NetworkSetupFailed(f"the sandbox's network namespace is gone: {exc.strerror}") from None
        try:
            self._start_slirp()
            self._inside(IP, "-batch", "-", stdin=f"link set {TAP} mtu {MTU} up\n"
                                                  f"addr add {SANDBOX_ADDRESS} dev {TAP}\n"
                                                  f"route add default via {SLIRP_GATEWAY} dev {TAP}\n")
            self._nft("-f", "-", stdin=ruleset(allow=allow, local=self._local))
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.close()
            raise NetworkSetupFailed(str(exc)) from None
        except BaseException:
            self.close()
            raise

    def _start_slirp(self) -> None:
        ready_r, ready_w = os.pipe()
        exit_r, self._exit_w = os.pipe()  # slirp4netns exits when our end closes (or we die)
        try:
            self._slirp = subprocess.Popen(
                [SLIRP4NETNS, f"--mtu={MTU}", "--disable-host-loopback", "--enable-sandbox",
                 "--enable-seccomp", f"--cidr={SLIRP_NET}", f"--ready-fd={ready_w}", f"--exit-fd={exit_r}",
                 "--netns-type=path", f"/proc/self/fd/{self._netns}", TAP],
                pass_fds=(ready_w, exit_r, self._netns), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={})
        finally:
            os.close(ready_w)
            os.close(exit_r)
        try:
            ready, _, _ = select.select([ready_r], [], [], SETUP_TIMEOUT)
            if not ready or os.read(ready_r, 1) != b"1":
                raise NetworkSetupFailed(f"slirp4netns did not start: {self._slirp_error()}")
        finally:
            os.close(ready_r)

    def _slirp_error(self) -> str:
        assert self._slirp is not None
        self._stop_slirp()
        assert self._slirp.stderr is not None
        return self._slirp.stderr.read().decode(errors="replace").strip()[-500:] or "no output"

    def _nft(self, *args: str, stdin: str = "") -> str:
        return self._inside(NFT, *args, stdin=stdin)

    def _inside(self, tool: str, *args: str, stdin: str = "") -> str:
        """Run `tool` (as the runner, root) in the sandbox's network namespace."""
        done = subprocess.run([NSENTER, f"--net=/proc/self/fd/{self._netns}", tool, *args], input=stdin,
                              capture_output=True, text=True, timeout=SETUP_TIMEOUT, pass_fds=(self._netns,),
                              env={})
        if done.returncode != 0:
            raise NetworkSetupFailed(f"{os.path.basename(tool)} {' '.join(args)}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def report_refusals(self) -> None:
        """One build-log line per destination the filter refused."""
        try:
            listing = json.loads(self._nft("-j", "list", "set", "inet", TABLE, REFUSED_SET))
        except (NetworkSetupFailed, subprocess.TimeoutExpired, ValueError) as exc:
            log.warning("could not read the refused destinations: %s", exc)
            return
        for address, proto, port in refused_destinations(listing):
            self._on_line(refusal_line(address, proto, port, address_refusal(address, allow=self._allow,
                                                                              local=self._local)))

    def _stop_slirp(self) -> None:
        """slirp4netns keeps no state worth a clean exit, so it is killed; the exit fd only
        covers a runner that dies without getting here."""
        if self._slirp is not None and self._slirp.poll() is None:
            self._slirp.kill()
            self._slirp.wait()
        if self._exit_w is not None:
            os.close(self._exit_w)
            self._exit_w = None

    def close(self) -> None:
        self._stop_slirp()
        if self._slirp is not None and self._slirp.stderr is not None:
            self._slirp.stderr.close()
        if self._netns >= 0:
            os.close(self._netns)
            self._netns = -1

    def __enter__(self) -> "Attachment":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def refusal_line(address: IPAddress, proto: str, port: int, why: str | None) -> str:
    """The build-log line for one refused destination, worded like the install proxy's
    ("<host>:<port> is ...") so the runner's error summary reads both alike."""
    if why is None:
        why = f"not the sandbox's DNS resolver ({SLIRP_DNS}), the only one a build may ask" if port == 53 \
            else "not allowed"
    over = "" if proto == "tcp" else f" ({proto})"
    return f"percel sandbox: network access refused: {address}:{port} is {why}{over}"


def refused_destinations(listing: dict) -> list[tuple[IPAddress, str, int]]:
    """(address, protocol, port) of each element of the refused set in `nft -j list set` output."""
    found = []
    for item in listing.get("nftables", []):
        for elem in item.get("set", {}).get("elem", []):
            value = elem.get("elem", {}).get("val", elem) if isinstance(elem, dict) else elem
            parts = value.get("concat", []) if isinstance(value, dict) else []
            if len(parts) == 3:
                found.append((ipaddress.ip_address(parts[0]), str(parts[1]), int(parts[2])))
    return sorted(found)


def read_child_pid(info_fd: int, timeout: float = SETUP_TIMEOUT) -> int | None:
    """The sandbox's pid from bwrap's --info-fd JSON, or None when bwrap exited first."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([info_fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(info_fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError):
            continue
    return None


class PublicNetwork:
    """BUILD_NETWORK=public as the settings describe it, read once per backend."""

    def __init__(self, allow: tuple[IPNetwork, ...]) -> None:
        self._allow = allow

    def attach(self, pid: int, on_line: OnLine) -> Attachment:
        return Attachment(pid, self._allow, on_line)


class Gate:
    """The pipes that hold a bwrap sandbox between setup and command (--info-fd, --block-fd)
    until its network is attached and filtered."""

    def __init__(self) -> None:
        self._info_r, self._info_w = os.pipe()
        self._block_r, self._block_w = os.pipe()

    @property
    def child_fds(self) -> tuple[int, int]:
        return self._info_w, self._block_r

    def bwrap_args(self) -> list[str]:
        return ["--info-fd", str(self._info_w), "--block-fd", str(self._block_r)]

    def open(self, network: PublicNetwork, on_line: OnLine) -> Attachment | None:
        """Attach the network to the started bwrap, then let its command run. None when bwrap
        exited before reporting its pid (its own error is in the output). Raises
        NetworkSetupFailed with the command still held."""
        self._close_child_ends()
        pid = read_child_pid(self._info_r)
        attachment = network.attach(pid, on_line) if pid is not None else None
        try:
            os.write(self._block_w, b"1")
        except BrokenPipeError:
            pass
        return attachment

    def _close_child_ends(self) -> None:
        for fd in (self._info_w, self._block_r):
            if fd >= 0:
                os.close(fd)
        self._info_w = self._block_r = -1

    def close(self) -> None:
        self._close_child_ends()
        for fd in (self._info_r, self._block_w):
            if fd >= 0:
                os.close(fd)
        self._info_r = self._block_w = -1
