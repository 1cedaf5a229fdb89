"""granian serving the app through devstack/asgi.py: the API server of `make run` and the test
stack off Lambda (docs/DECISIONS.md#production-server).

`python -m devstack.granian_server --port N` on 127.0.0.1; the environment sizes it as it sizes
gunicorn (devstack/gunicorn_conf.py): WEB_WORKERS processes (default: one per core), each
running the app on WEB_THREADS threads (devstack/asgi.py). Options:
https://github.com/emmett-framework/granian#options
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
import time

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.server import MPServer

from chalicelib.settings import load_settings
from devstack import asgi

# granian bounds the wait for a request's head to 1..60,000 ms.
HEADER_TIMEOUT_MS = (1, 60_000)
# Seconds in-flight requests get after SIGTERM before a worker is killed: inside the 5 s
# devstack's Service.stop allows before SIGKILL, as gunicorn's graceful_timeout.
KILL_TIMEOUT = 4


def worker_application() -> asgi.ChaliceASGI:
    """The app, built in each granian worker process, which exits once its server is gone."""
    watch_parent(os.getppid())
    return asgi.make_application()


def watch_parent(parent: int, every: float = 1.0) -> threading.Thread:
    """A worker whose server process died (SIGKILL, OOM) would go on serving the port, orphaned,
    beside the server the supervisor starts again: check the parent every `every` s, as
    gunicorn's workers do, and stop (SIGTERM, then for good after KILL_TIMEOUT) once it changed."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(KILL_TIMEOUT)
        os._exit(1)
    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def header_read_timeout_ms(seconds: float) -> int:
    low, high = HEADER_TIMEOUT_MS
    return max(low, min(high, int(seconds * 1000)))


def server(port: int, env: dict[str, str] | os._Environ[str] = os.environ) -> MPServer:
    """granian's multi-process server (its default on a GIL build of Python)."""
    settings = load_settings()
    return MPServer(
        "devstack.granian_server:worker_application", factory=True, interface=Interfaces.ASGI,
        address="127.0.0.1", port=port,
        workers=int(env.get("WEB_WORKERS") or os.cpu_count() or 1),
        # HTTP/1.1 only, as gunicorn and chalice local speak it; no websocket route exists.
        http=HTTPModes.http1, websockets=False,
        # A client that sends half a request head is let go after REQUEST_READ_TIMEOUT, as
        # devstack/gunicorn_worker.py does (bodies: devstack/asgi.py's read_body).
        http1_settings=HTTP1Settings(
            header_read_timeout=header_read_timeout_ms(settings.request_read_timeout)),
        # A worker that dies is started again, as gunicorn's arbiter does.
        respawn_failed_workers=True, respawn_interval=0.5,
        workers_kill_timeout=KILL_TIMEOUT,
        # No access log (the app logs what matters), as under gunicorn.
        log_access=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    server(parser.parse_args().port).serve()


if __name__ == "__main__":
    main()
