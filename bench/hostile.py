"""Hostile requests against a running local stack: how many, how many 5xx, how many leaks.

    .venv/bin/python bench/hostile.py            # ~1-2 min: starts its own stack, 1 runner

It starts what `make run` starts (on free ports, its own state directory), deploys one static
site whose repository carries secrets (`.env`, `.npmrc`, `.git*`, a build env value), then sends
a few hundred requests an attacker would try, grouped:
- auth: no token, wrong tokens, tokens in odd places, a read token writing;
- bodies: nested, huge, non-JSON types, invalid UTF-8, wrong shapes;
- parameters: `limit`, `cursor` and ids in every odd form;
- repo URLs: ports, IDN, metadata / link-local / private addresses, other schemes, credentials,
  control characters;
- site paths and headers: traversal in every encoding, NUL, odd Range / conditional / Host.
Each answer is checked: a 5xx is a failure (the API must say 4xx for bad input), and a leak is
any body or header holding a secret marker, a server file's content or a Python traceback.
The totals go to stdout; bench/README.md keeps the last figures.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack import services  # noqa: E402

SECRET = "percel-hostile-secret-7d1e"          # in .env, .npmrc and the build env
# A Location that leaves the site: `//host` (protocol-relative) or an absolute URL elsewhere.
_OPEN_REDIRECT = re.compile(r"(?im)^location:\s*(?://|\\|https?://(?!127\.0\.0\.1|[^/]*localhost))")
MARKERS = (SECRET, "root:x:0:0", "Traceback (most recent call last)", "BEGIN OPENSSH",
           "PERCEL_ADMIN_TOKEN", "PERCEL_SECRET_KEY")


@dataclass
class Tally:
    cases: int = 0
    by_group: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def record(self, group: str, what: str, status: int, raw: bytes) -> None:
        self.cases += 1
        self.by_group[group] = self.by_group.get(group, 0) + 1
        seen = self.statuses.setdefault(group, {})
        seen[status] = seen.get(status, 0) + 1
        if status >= 500 and status != 503:
            self.server_errors.append(f"{group}: {what} -> {status}")
        text = raw.decode("latin-1")
        if _OPEN_REDIRECT.search(text):
            self.leaks.append(f"{group}: {what} -> an open redirect")
        for marker in MARKERS:
            if marker in text:
                self.leaks.append(f"{group}: {what} -> {marker!r}")


def send(port: int, method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, bytes]:
    """One raw request; the answer's status and its whole text (head and body)."""
    # A request line is ASCII: other characters go as their UTF-8 bytes, percent-encoded.
    target = "".join(c if ord(c) < 128 else quote(c) for c in target)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        head = "".join(f"{k}: {v}\n" for k, v in response.getheaders()).encode()
        return response.status, head + response.read()
    except (ConnectionError, socket.timeout, http.client.HTTPException) as error:
        return 0, str(error).encode()
    finally:
        connection.close()


def make_repo(root: Path) -> str:
    files = {"index.html": "<h1>hostile target</h1>", "about.html": "<h1>about</h1>",
             ".env": f"API_KEY={SECRET}\n", ".env.production": f"KEY={SECRET}\n",
             ".npmrc": f"//registry.npmjs.org/:_authToken={SECRET}\n",
             ".gitmodules": f"[submodule \"x\"]\n\turl = https://{SECRET}@example.com/x\n",
             "_redirects": "/go/* /:splat 301\n/r /about 200\n"}
    for name, text in files.items():
        (root / name).write_text(text)
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=h", "-c", "user.email=h@h", "commit", "-qm", "site"]):
        subprocess.run(command, cwd=root, check=True)
    return f"file://{root}"


def auth_cases(port: int, api: dict[str, str], tally: Tally, read_token: str) -> None:
    routes = [("GET", "/api/deployments"), ("POST", "/api/deployments"), ("GET", "/api/tokens"),
              ("POST", "/api/tokens"), ("DELETE", "/api/deployments/abc"),
              ("GET", "/api/deployments/abc/logs"), ("POST", "/api/deployments/abc/cancel")]
    forms = {"none": {}, "empty bearer": {"Authorization": "Bearer "},
             "wrong": {"Authorization": "Bearer pcl_x_y"},
             "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
             "huge": {"Authorization": "Bearer " + "A" * 60000},
             "lower-case scheme": {"Authorization": "bearer " + "B" * 40},
             "two headers": {"Authorization": "Bearer a, Bearer b"},
             "control chars": {"Authorization": "Bearer \x01\x02"}}
    anonymous = {"Host": api["Host"]}
    for method, path in routes:
        for name, headers in forms.items():
            status, raw = send(port, method, path, {**anonymous, **headers, "Content-Type": "application/json"},
                               b"{}" if method == "POST" else None)
            tally.record("auth", f"{method} {path} [{name}]", status, raw)
            if status not in (401, 429, 431, 400, 0):
                tally.server_errors.append(f"auth: {method} {path} [{name}] answered {status}")
        status, raw = send(port, method, path, {**anonymous, "Authorization": f"Bearer {read_token}",
                                                "Content-Type": "application/json"},
                           b"{}" if method == "POST" else None)
        tally.record("auth", f"{method} {path} [read token]", status, raw)


def body_cases(port: int, api: dict[str, str], tally: Tally) -> None:
    bodies = {"nested arrays": b"[" * 100000, "nested objects": b'{"a":' * 50000,
              "huge number": b'{"repo_url": 1' + b"0" * 5000 + b"}", "invalid utf-8": b'{"repo_url": "\xff\xfe"}',
              "not json": b"repo_url=x", "null": b"null", "list": b"[]", "string": b'"x"',
              "unknown field": b'{"repo_url": "file:///tmp", "evil": 1}',
              "wrong types": b'{"repo_url": ["a"], "ref": 5, "env": "x"}',
              "env not strings": b'{"repo_url": "file:///tmp/x", "env": {"A": {"b": 1}}}',
              "env huge": json.dumps({"repo_url": "file:///tmp/x", "env": {"A": "x" * 900000}}).encode(),
              "2 MB": b'{"repo_url": "' + b"a" * 2_000_000 + b'"}', "empty": b""}
    types = ["application/json", "text/plain", "application/x-www-form-urlencoded",
             "multipart/form-data; boundary=x", "application/json; charset=utf-7"]
    for name, body in bodies.items():
        for content_type in types:
            status, raw = send(port, "POST", "/api/deployments", {**api, "Content-Type": content_type}, body)
            tally.record("bodies", f"{name} as {content_type}", status, raw)


def parameter_cases(port: int, api: dict[str, str], tally: Tally, deployment_id: str) -> None:
    for value in ["0", "-1", "201", "1e3", "0x10", "²", "١٢", "9" * 5000, "", "%00", "1%20", "NaN"]:
        status, raw = send(port, "GET", f"/api/deployments?limit={value}", api)
        tally.record("parameters", f"limit={value[:20]}", status, raw)
    for value in ["x", "-1", "0-0", "1-", "9" * 30 + "-0", "18446744073709551616-0", "%ff", "$", "+"]:
        status, raw = send(port, "GET", f"/api/deployments/{deployment_id}/logs?cursor={value}", api)
        tally.record("parameters", f"cursor={value[:20]}", status, raw)
    for ident in ["..", "%2e%2e", "a" * 5000, "%00", "ü", "%C3%BC", "..%2f..%2fetc%2fpasswd", "*", "$(id)"]:
        for method, suffix in (("GET", ""), ("GET", "/logs"), ("POST", "/cancel"), ("DELETE", "")):
            status, raw = send(port, method, f"/api/deployments/{ident}{suffix}",
                               {**api, "Content-Type": "application/json"}, b"{}" if method == "POST" else None)
            tally.record("parameters", f"{method} id={ident[:20]}{suffix}", status, raw)


def repo_url_cases(port: int, api: dict[str, str], tally: Tally) -> None:
    urls = ["http://127.0.0.1:99999/r", "http://127.0.0.1:abc/r", "http://127.0.0.1:0/r",
            "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://100.100.100.200/",
            "http://[fe80::1]/", "http://10.0.0.1/r", "http://192.168.1.1/r", "http://[::ffff:169.254.169.254]/",
            "http://0251.0376.0251.0376/", "http://2852039166/", "http://bücher.localhost/r",
            "http://xn--/r", "https://example.com/r", "ssh://git@127.0.0.1/r", "git://127.0.0.1/r",
            "ext::sh -c id", "file:///etc", "file:///etc/passwd", "file://localhost/../../etc",
            "--upload-pack=id", "-oProxyCommand=id", "http://user:pass@127.0.0.1/r",
            "http://127.0.0.1/r\r\nX: y", "http://127.0.0.1/\x00", "http://" + "a" * 3000 + ".localhost/",
            "http://[::1", "http://%31%32%37.0.0.1/", "gopher://127.0.0.1/", "", " "]
    for url in urls:
        for extra in ({}, {"ref": "--upload-pack=id"}, {"root_dir": "../../etc"}):
            body = json.dumps({"repo_url": url, **extra}).encode()
            status, raw = send(port, "POST", "/api/deployments", {**api, "Content-Type": "application/json"}, body)
            tally.record("repo URLs", f"{url[:40]!r} {extra}", status, raw)
            if status == 202:
                tally.server_errors.append(f"repo URLs: {url[:40]!r} {extra} was accepted")


def site_cases(port: int, site: str, tally: Tally) -> None:
    paths = ["/.env", "/.env.production", "/.npmrc", "/.gitmodules", "/.git/config", "/.git/HEAD",
             "/_redirects", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "/%2e%2e%2f.env",
             "/..\\..\\etc\\passwd", "/%c0%ae%c0%ae/etc/passwd", "/index.html%00.png", "/%00",
             "/" + "a/" * 2000, "/" + "%" * 100, "/go/%0d%0aSet-Cookie:%20x=1", "/go//evil.example",
             "/go/%2f%2fevil.example", "/go/\\evil.example", "/r?" + "a=1&" * 3000, "/.ENV", "/.Env",
             "/about.html/..", "/about.html/../.env", "/./.env", "//.env", "/%252e%252e/.env"]
    for path in paths:
        status, raw = send(port, "GET", path, {"Host": site})
        tally.record("site paths", path[:50], status, raw)
        if "-v" in sys.argv:
            print(f"{status} {path[:60]}")
        if status == 200 and path.lower().lstrip("/").startswith((".env", ".npmrc", ".git", "_redirects")):
            tally.leaks.append(f"site paths: {path} answered 200")
    headers = {"Range": ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-0", "bytes=5-1",
                         "bytes=0-1,2-3," * 1000, "bytes=\x00", "items=0-1", "bytes=-" + "9" * 400],
               "If-None-Match": ['"' + "a" * 60000 + '"', "*", "W/", ",,,,"],
               "Accept-Encoding": ["br;q=" + "9" * 400, "*;q=0", "gzip" * 5000, "identity;q=0"],
               "If-Range": ['"x"', "Mon, 99 Foo 9999"]}
    for name, values in headers.items():
        for value in values:
            status, raw = send(port, "GET", "/about", {"Host": site, name: value})
            tally.record("site headers", f"{name}: {value[:30]}", status, raw)
    for host in ["", "x" * 5000 + ".localhost", site.replace("localhost", "localhost.evil.example"),
                 "*.localhost", site.upper(), "[::1]", "localhost:" + "9" * 20]:
        status, raw = send(port, "GET", "/", {"Host": host} if host else {})
        tally.record("site headers", f"Host: {host[:30]}", status, raw)


def main() -> int:
    state = Path(tempfile.mkdtemp(prefix="percel-hostile-"))
    port = services.free_port()
    # The per-token deploy limit is its own case (tests/test_e2e_auth.py); here it would turn the
    # repo URL cases into 429s before their URL is looked at.
    stack = services.start_stack(state, port, runners=1, extra_env={"DEPLOYS_PER_MINUTE": "100000"})
    try:  # start_stack has waited for /api/health
        token = stack.admin_token
        api = {"Host": f"127.0.0.1:{port}", "Authorization": f"Bearer {token}"}
        repo = state / "repo"
        repo.mkdir()
        target = services.deploy_and_wait(stack, {"repo_url": make_repo(repo), "env": {"DEPLOY_KEY": SECRET}},
                                          300, poll=0.5)
        if target["status"] in ("uploading", "queued", "building"):
            raise SystemExit("the target site did not deploy in 300 s")
        deployment_id = target["id"]
        read_token = services.api(stack.api_url, "POST", "/api/tokens",
                                  {"name": "hostile-read", "role": "read"}, token=token)["token"]
        tally = Tally()
        started = time.monotonic()
        body_cases(port, api, tally)
        parameter_cases(port, api, tally, deployment_id)
        repo_url_cases(port, api, tally)
        site_cases(port, f"{deployment_id}.localhost:{port}", tally)
        for path in (f"/api/deployments/{deployment_id}", f"/api/deployments/{deployment_id}/logs",
                     "/api/deployments", "/api/tokens"):    # what an admin reads back holds no secret
            status, raw = send(port, "GET", path, api)
            tally.record("read back", path, status, raw)
        # Last: after AUTH_FAILURES_PER_MINUTE wrong tokens this address gets 429s for a minute,
        # whatever token it sends (docs/DECISIONS.md#tokens).
        auth_cases(port, api, tally, read_token)
        tracebacks = sum(log.read_text(errors="replace").count("Traceback")
                         for log in (state / "logs").glob("*.log"))
        print(f"{tally.cases} hostile requests in {time.monotonic() - started:.0f} s")
        for group, count in tally.by_group.items():
            spread = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses[group].items()))
            print(f"  {group:14} {count:4}   ({spread})")
        print(f"server errors (5xx other than 503, or a refused case accepted): {len(tally.server_errors)}")
        for line in tally.server_errors[:30]:
            print("  " + line)
        print(f"leaks (a secret, a server file, a traceback or an open redirect in an answer): {len(tally.leaks)}")
        for line in tally.leaks[:30]:
            print("  " + line)
        print(f"tracebacks in the stack's logs: {tracebacks}")
        return 1 if tally.server_errors or tally.leaks or tracebacks else 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
