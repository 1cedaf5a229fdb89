"""`make run`: bring the whole stack up, print the URLs, restart whatever dies, stop everything
on Ctrl-C (SIGINT) or SIGTERM, and on nothing else (devstack/supervisor.py)."""
from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from chalicelib.settings import load_settings
from devstack import services
from devstack.localstack import embedded_s3
from devstack.services import PROJECT, Service, start_stack, warn_loudly


def main() -> None:
    parser = argparse.ArgumentParser(description="Run percel locally.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--runners", type=int, default=int(os.environ.get("RUNNERS", "1")))
    parser.add_argument("--state", default=os.environ.get("STATE_DIR", str(PROJECT / ".state")))
    args = parser.parse_args()
    s3_url, start_s3_endpoint = s3_choice(os.environ)
    stack = start_stack(Path(args.state), args.port, args.runners, redis_url=os.environ.get("REDIS_URL"),
                        s3_url=s3_url, embedded_s3=start_s3_endpoint)
    stopping = threading.Event()

    def stop(*_) -> None:
        # Ctrl-C reaches the children too: stop restarting them before anything else.
        if stack.supervisor is not None:
            stack.supervisor.halt()
        stopping.set()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(banner(stack, args), flush=True)
    if stack.lost_outputs:
        warn_loudly(stack.lost_outputs)  # again, below the banner, where it is seen
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        print("\nstopping percel...", flush=True)
        stack.stop()


def s3_choice(environ: Mapping[str, str]) -> tuple[str, Callable[[Path], Service]]:
    """The S3 endpoint the environment names (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or
    LOCALSTACK_HOST, as percel reads them), or "" and the embedded endpoint that S3 picks
    (moto unless S3=localstack). Naming both is refused: one of them would be ignored."""
    url = load_settings(environ).s3_endpoint_url
    kind = environ.get("S3", "").strip().lower()
    if url and kind:
        raise SystemExit(f"S3={kind} starts an S3 endpoint, but the environment names {url} already "
                         "(AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or LOCALSTACK_HOST): unset one")
    try:
        return url, embedded_s3(kind or "moto")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def banner(stack, args) -> str:
    api = stack.api_url.replace("127.0.0.1", "localhost")
    token_source = ("from PERCEL_ADMIN_TOKEN" if os.environ.get("PERCEL_ADMIN_TOKEN")
                    else f"kept in {Path(args.state) / 'admin-token'}; make more with POST /api/tokens")
    return f"""
percel is running.
  Dashboard: {api}/ (sign in with the token below)
  API:       {api}/api/health
  Redis:     {stack.env['REDIS_URL']}
  S3:        {stack.env['AWS_ENDPOINT_URL_S3']} (bucket {stack.env.get('PERCEL_BUCKET', 'percel')})
  server:    {stack.env.get('SERVER') or services.DEFAULT_SERVER} (SERVER={' or '.join(services.SERVERS)})
  runners:   {args.runners}
  logs:      {Path(args.state) / 'logs'}
  token:     {stack.admin_token}
             (admin; {token_source})
Log the percel command in (it is .venv/bin/percel), then deploy a folder:
  percel login --api {api} --token {stack.admin_token}
  percel deploy ./my-site
Or call the API yourself:
  export PERCEL_TOKEN={stack.admin_token}
  curl -s -X POST {api}/api/deployments -H "Authorization: Bearer $PERCEL_TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"repo_url": "file:///path/to/repo"}}'
  then open the "url" it returns: http://<id>.localhost:{args.port}/
A service that exits is started again (logs/supervisor.log says when and why); Ctrl-C stops everything.
"""


if __name__ == "__main__":
    main()
