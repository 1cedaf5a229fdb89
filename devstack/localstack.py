"""LocalStack's S3 as the local stack's bucket: `make run S3=localstack` and the tests' LocalStack pass.

LocalStack runs in host mode (no Docker) from a virtualenv of its own, `.venv-localstack`, which
`make localstack` builds from devstack/localstack-requirements.txt: its pins would clash with
percel's (docs/DECISIONS.md#localstack).
"""
from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from devstack.services import PROJECT, Service, _spawn, free_port, start_s3, wait_until

# The interpreter LocalStack is installed in, unless LOCALSTACK_PYTHON names another.
VENV_PYTHON = PROJECT / ".venv-localstack" / "bin" / "python"
# The S3 endpoints the local stack can embed, by the value of S3 (`make run S3=...`).
EMBEDDED = ("moto", "localstack")
# What start_localstack() waits for at most: ready in about 2 s on this 2-core machine.
START_SECONDS = 60
# Variables LocalStack's runtime needs from ours; everything else of it is set here.
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def interpreter(environ: Mapping[str, str] = os.environ) -> Path:
    """LOCALSTACK_PYTHON, else the project's .venv-localstack; refused with the remedy when absent."""
    chosen = Path(environ.get("LOCALSTACK_PYTHON") or VENV_PYTHON)
    if not chosen.exists():
        raise RuntimeError(f"LocalStack is not installed at {chosen}: `make localstack` installs it "
                           "(or set LOCALSTACK_PYTHON to a Python that has localstack-core)")
    return chosen


def server_env(port: int, root: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """LocalStack's configuration: S3 only, on 127.0.0.1:`port`, its files under `root`.

    Names from docs.localstack.cloud/aws/customization/configuration-options/; the rest measured
    with localstack-core 4.13.1 (docs/DECISIONS.md#localstack).
    """
    return {**{name: environ[name] for name in PASSED_ON if name in environ},
            "SERVICES": "s3", "EAGER_SERVICE_LOADING": "1",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            # Its default server (twisted) listens on 0.0.0.0 whatever GATEWAY_LISTEN says;
            # hypercorn listens where it is told.
            "GATEWAY_SERVER": "hypercorn",
            # It guesses "in Docker" from this machine's cgroups, and would then write under
            # /var/lib/localstack; in host mode its files live under FILESYSTEM_ROOT.
            "OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(root),
            # No DNS server (it would listen on port 53 of every address), no usage events,
            # no download of its TLS certificate at start.
            "DNS_ADDRESS": "0", "DISABLE_EVENTS": "1", "SKIP_SSL_CERT_DOWNLOAD": "1",
            # Check signatures as S3 and R2 do (its default skips the check): a presigned PUT
            # without a header it signed is then refused (docs/DECISIONS.md#uploads).
            "S3_SKIP_SIGNATURE_VALIDATION": "0"}


def s3_running(url: str) -> bool:
    """LocalStack's health document says its S3 is loaded."""
    with urllib.request.urlopen(url + "/_localstack/health", timeout=2) as response:
        return json.load(response)["services"].get("s3") == "running"


def start_localstack(state_dir: Path, port: int | None = None) -> Service:
    """LocalStack's S3 on a free loopback port, its files and log under `state_dir`."""
    port = port or free_port()
    argv = [str(interpreter()), "-m", "localstack.runtime.main"]
    process, log_path = _spawn(f"localstack-{port}", argv, state_dir / "logs",
                               server_env(port, state_dir / "localstack"))
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: process.poll() is not None or s3_running(url), START_SECONDS, "LocalStack")
    if process.poll() is not None:
        raise RuntimeError(f"LocalStack exited; see {log_path}")
    return Service("s3", process, url, log_path)


def embedded_s3(kind: str) -> Callable[[Path], Service]:
    """The function that starts the embedded S3 endpoint `kind` (one of EMBEDDED)."""
    if kind not in EMBEDDED:
        raise ValueError(f"S3 must be one of {', '.join(EMBEDDED)}, not {kind!r}")
    return start_localstack if kind == "localstack" else start_s3
