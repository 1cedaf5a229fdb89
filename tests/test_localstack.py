"""LocalStack as the local stack's bucket (devstack/localstack.py, `make run S3=localstack`), and
which S3 endpoint `make run` uses when the environment names one (devstack/__main__.py).

The tests marked `localstack` start LocalStack itself: they run in `make test`'s LocalStack
pass (S3=localstack), where conftest's S3 endpoint is LocalStack too.
"""
from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from devstack import localstack, services
from devstack.__main__ import s3_choice
from tests.conftest import TEST_SANDBOX

STARTED = "percel is running."


# --- which endpoint (no server) ----------------------------------------------------------------

@pytest.mark.parametrize("named", [{"AWS_ENDPOINT_URL_S3": "http://10.1.2.3:9000"},
                                   {"AWS_ENDPOINT_URL": "http://10.1.2.3:9000"},
                                   {"LOCALSTACK_HOST": "10.1.2.3:9000"}])
def test_an_endpoint_the_environment_names_is_used_as_it_is(named):
    assert s3_choice(named)[0] == "http://10.1.2.3:9000"


@pytest.mark.parametrize(("s3", "starter"), [("", services.start_s3), ("moto", services.start_s3),
                                             ("localstack", localstack.start_localstack),
                                             ("LocalStack", localstack.start_localstack)])
def test_without_an_endpoint_s3_picks_the_embedded_one(s3, starter):
    assert s3_choice({"S3": s3}) == ("", starter)


@pytest.mark.parametrize("named", [{"AWS_ENDPOINT_URL_S3": "http://s3:1"}, {"LOCALSTACK_HOST": "ls"}])
def test_an_embedded_endpoint_and_a_named_one_together_are_refused(named):
    with pytest.raises(SystemExit, match="S3=localstack starts an S3 endpoint, but the environment "
                                         "names http://(s3:1|ls:4566) already"):
        s3_choice({"S3": "localstack", **named})


def test_an_unknown_s3_is_refused_with_the_choices():
    with pytest.raises(SystemExit, match="S3 must be one of moto, localstack, not 'minio'"):
        s3_choice({"S3": "minio"})


def test_localstack_missing_is_refused_with_the_remedy(tmp_path):
    with pytest.raises(RuntimeError, match="`make localstack` installs it"):
        localstack.interpreter({"LOCALSTACK_PYTHON": str(tmp_path / "nowhere" / "python")})


# --- make run, with LocalStack ------------------------------------------------------------------

def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process `pid` listens on, and every UDP socket it has
    bound, read from /proc (proc(5): /proc/net/tcp, /proc/[pid]/fd)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            listening = fields[3] == "0A" if table.startswith("tcp") else True
            if listening and fields[9] in inodes:
                found.add((str(kernel_address(address)), int(port, 16)))
    return found


def kernel_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} prints it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    return ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # exited meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry), cmdline))
    return found


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, str]]]:
    """Starts `make run` (python -m devstack) with the given variables, no build runner, on free
    ports, and returns it with its banner; whatever it started is stopped at teardown."""
    started: list[subprocess.Popen] = []

    def start(**env: str) -> tuple[subprocess.Popen, str]:
        log_path = tmp_path / "devstack.log"
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "LOCALSTACK_HOST")}
        with open(log_path, "w") as log:
            process = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=services.PROJECT,
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env={**clean, "PORT": str(services.free_port()), "RUNNERS": "0",
                                            "STATE_DIR": str(tmp_path / "state"),
                                            "BUILD_SANDBOX": TEST_SANDBOX, **env})
        started.append(process)
        deadline = time.monotonic() + 120
        while STARTED not in (text := log_path.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make run did not start:\n{text[-3000:]}", pytrace=False)
            time.sleep(0.2)
        return process, text

    yield start
    for process in started:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """Ctrl-C's equivalent for `make run` (it stops its services on SIGTERM too)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def banner_s3(banner: str) -> str:
    return re.search(r"S3:\s+(\S+)", banner).group(1)


@pytest.mark.localstack
def test_make_run_s3_localstack_serves_the_bucket_from_loopback_only(make_run):
    process, banner = make_run(S3="localstack")
    url = banner_s3(banner)
    started = dict(children(process.pid))
    [server] = [pid for pid, cmd in started.items() if "localstack.runtime.main" in cmd]
    assert not [cmd for cmd in started.values() if "moto" in cmd]
    assert localstack.s3_running(url)
    assert listening_addresses(server) == {("127.0.0.1", int(url.rsplit(":", 1)[1]))}
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    assert "percel" in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    stop(process)
    assert process.returncode == 0
    assert not Path(f"/proc/{server}").exists()  # LocalStack stopped with the stack


@pytest.mark.localstack
@pytest.mark.parametrize("variable", ["LOCALSTACK_HOST", "AWS_ENDPOINT_URL"])
def test_make_run_uses_the_localstack_the_environment_names_and_starts_no_moto(
        make_run, s3_service, variable):
    """The session's LocalStack stands for one the developer runs; make run must use it."""
    host = s3_service.url.removeprefix("http://")
    bucket = f"named-{variable.lower().replace('_', '-')}-{os.getpid()}"
    process, banner = make_run(**{variable: host if variable == "LOCALSTACK_HOST" else s3_service.url},
                               PERCEL_BUCKET=bucket)
    assert banner_s3(banner) == s3_service.url
    assert not [cmd for _, cmd in children(process.pid) if "moto" in cmd or "localstack.runtime" in cmd]
    s3 = boto3.client("s3", endpoint_url=s3_service.url, region_name="us-east-1")
    s3.head_bucket(Bucket=bucket)  # made by make run, in the LocalStack it was shown
