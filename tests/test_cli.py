"""The percel command without a server: ignore rules, the folder walk and its hashes, the config
file's mode, colour, usage errors' exit code, and that it never loads the server's libraries."""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from percel_cli import config, files, ignore
from percel_cli.main import main
from percel_cli.output import Printer, human_bytes, use_colour
from percel_cli.upload import UploadResult

PERCEL = Path(sys.executable).parent / "percel"


def ignored(lines: str, path: str, is_dir: bool = False, base: str = "") -> bool:
    return ignore.is_ignored(ignore.parse(lines, base), path, is_dir)


@pytest.mark.parametrize("rules, path, is_dir, expected", [
    ("*.log", "a.log", False, True),
    ("*.log", "deep/er/a.log", False, True),  # no slash: any depth
    ("*.log", "a.log.txt", False, False),
    ("# *.log", "a.log", False, False),  # a comment
    ("\\#notes", "#notes", False, True),  # an escaped #
    ("*.log\n!keep.log", "keep.log", False, False),  # negation: the last match wins
    ("!keep.log\n*.log", "keep.log", False, True),
    ("build/", "build", True, True),  # a trailing slash: folders only
    ("build/", "build", False, False),
    ("build/", "src/build", True, True),
    ("/build", "build", True, True),  # a leading slash anchors
    ("/build", "src/build", True, False),
    ("docs/*.md", "docs/a.md", False, True),  # a middle slash anchors too
    ("docs/*.md", "x/docs/a.md", False, False),
    ("docs/*.md", "docs/sub/a.md", False, False),  # * never crosses a slash
    ("**/cache", "cache", True, True),
    ("**/cache", "a/b/cache", True, True),
    ("logs/**", "logs/a/b.txt", False, True),
    ("logs/**", "logs", True, False),
    ("a/**/z", "a/z", False, True),
    ("a/**/z", "a/b/c/z", False, True),
    ("a/**/z", "b/a/z", False, False),
    ("file?.txt", "file1.txt", False, True),
    ("file?.txt", "file10.txt", False, False),
    ("[abc].js", "b.js", False, True),
    ("[!abc].js", "b.js", False, False),
    ("[!abc].js", "d.js", False, True),
    ("trailing   ", "trailing", False, True),  # trailing spaces are not part of the pattern
])
def test_ignore_rules_follow_gitignore(rules, path, is_dir, expected):
    assert ignored(rules, path, is_dir) is expected


def test_a_nested_ignore_file_applies_below_its_folder_only():
    rules = ignore.parse("*.tmp\n/only-top", "") + ignore.parse("/local.txt\n!keep.tmp", "sub")
    assert ignore.is_ignored(rules, "sub/local.txt", False)
    assert not ignore.is_ignored(rules, "local.txt", False)
    assert not ignore.is_ignored(rules, "sub/keep.tmp", False)  # the inner file re-includes it
    assert ignore.is_ignored(rules, "sub/other.tmp", False)
    assert not ignore.is_ignored(rules, "sub/only-top", False)


@pytest.mark.parametrize("name, is_dir, never", [
    (".git", True, True), ("node_modules", True, True), (".env", False, True),
    (".env.local", False, True), (".env.production", False, True), (".env.example", False, False),
    ("server.pem", False, True), ("id_rsa", False, True), ("id_rsa.pub", False, True),
    ("id_ed25519", False, True), (".npmrc", False, True), ("environment.ts", False, False),
    ("index.html", False, False), (".git", False, False), ("src", True, False),
])
def test_the_fixed_list_of_never_sent_names(name, is_dir, never):
    assert ignore.never_sent(name, is_dir) is never


def write(root: Path, tree: dict[str, str]) -> None:
    for name, content in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def test_the_walk_sends_what_the_ignore_files_and_the_fixed_list_allow(tmp_path):
    root = tmp_path / "site"
    write(root, {
        "index.html": "<h1>hi</h1>", "a.log": "x", "keep.log": "kept",
        ".gitignore": "*.log\n!keep.log\n/build/\n!/build/out.js\n", "build/out.js": "not entered",
        "src/build/inner.js": "kept: /build/ is anchored", "src/.percelignore": "secret-notes.md\n",
        "src/secret-notes.md": "x", "src/app.js": "app",
        ".env": "TOKEN=1", ".env.local": "TOKEN=2", ".env.example": "TOKEN=", "certs/server.pem": "x",
        ".git/HEAD": "ref", "node_modules/x/index.js": "x", "pkg/node_modules/y.js": "x",
        ".percelignore": "!.env\n",  # cannot bring a secret back
    })
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    walk = files.collect(root)
    sent = {f.path: f for f in walk.files}
    assert sorted(sent) == [".env.example", ".gitignore", ".percelignore", "index.html", "keep.log",
                            "run.sh", "src/.percelignore", "src/app.js", "src/build/inner.js"]
    assert sent["run.sh"].mode == 0o755 and sent["index.html"].mode == 0o644


def test_symlinks_out_of_the_folder_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    write(outside, {"secret.txt": "private"})
    root = tmp_path / "site"
    write(root, {"index.html": "home", "real/page.html": "page"})
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "leakdir").symlink_to(outside)
    (root / "alias.html").symlink_to(root / "real" / "page.html")
    (root / "loop").symlink_to(root)
    walk = files.collect(root)
    paths = [f.path for f in walk.files]
    assert paths == ["alias.html", "index.html", "real/page.html"]
    assert any("leak.txt" in s for s in walk.skipped) and any("leakdir" in s for s in walk.skipped)
    alias = next(f for f in files.hashed(walk.files) if f.path == "alias.html")
    assert alias.sha256 == hashlib.sha256(b"page").hexdigest()


def test_hashes_are_the_sha256_of_each_file(tmp_path):
    root = tmp_path / "site"
    big = os.urandom(files.CHUNK * 2 + 17)
    root.mkdir()
    (root / "big.bin").write_bytes(big)
    (root / "empty").write_bytes(b"")
    entries = {f.path: f.manifest_entry() for f in files.hashed(files.collect(root).files)}
    assert entries["big.bin"] == {"path": "big.bin", "sha256": hashlib.sha256(big).hexdigest(),
                                  "size": len(big), "mode": 0o644}
    assert entries["empty"]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_the_config_file_is_private_to_its_owner(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    path = config.save("http://localhost:8000/", "pcl_secret", env)
    assert path == tmp_path / "cfg" / "percel" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"api": "http://localhost:8000", "token": "pcl_secret"}
    assert config.load(env).token == "pcl_secret"
    overridden = config.load({**env, "PERCEL_TOKEN": "from-env"})
    assert overridden.token == "from-env" and overridden.api == "http://localhost:8000"
    assert config.forget(env) and not path.exists() and config.load(env).token is None


def test_without_xdg_the_config_is_under_home(tmp_path):
    assert config.config_path({"HOME": str(tmp_path)}) == tmp_path / ".config" / "percel" / "config.json"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color():
    assert use_colour(Terminal(), {})
    assert not use_colour(Terminal(), {"NO_COLOR": ""})  # set to anything, even empty
    assert not use_colour(io.StringIO(), {})
    assert "\x1b[" not in Printer(False, io.StringIO(), io.StringIO()).status("deployed")


def test_summary_lines():
    assert UploadResult("u", 1000, 5_000_000, 0, 0, 0.2).summary() == \
        "nothing to upload: 0 bytes (all 1,000 files already there)"
    assert UploadResult("u", 14, 400_000, 12, 340_000, 0.84).summary() == \
        "uploaded 12 files, 340 KB in 0.8 s (2 already there)"
    assert human_bytes(999) == "999 bytes" and human_bytes(1_234_567) == "1.2 MB"


@pytest.mark.parametrize("argv", [
    ["bogus"], ["deploy", "--repo", "file:///x", "--prebuilt"], ["deploy", "--prod"],
    ["deploy", "--project", "shop", "--repo", "file:///x"], ["deploy", "--ref", "main"],
    ["deploy", "--repo", "file:///x", "--env", "NOEQUALS"], ["rm", "abc"], ["ls", "--limit", "many"],
    ["deploy", "--branch", "x"], ["deploy", "--project", "shop", "--prod", "--branch", "x"],
    ["deploy", ".", "--prebuilt", "--build-command", "make"],
])
def test_usage_errors_exit_2_before_any_request(argv, monkeypatch, capsys):
    # An API nobody listens on: a request would be an "cannot reach" error, also 2, so the
    # message is checked too.
    monkeypatch.setenv("PERCEL_API", "http://127.0.0.1:9")
    monkeypatch.setenv("PERCEL_TOKEN", "t")
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    with pytest.raises(SystemExit) if argv[0] in ("bogus", "ls") else _nothing():
        assert main(argv) == 2
    assert "cannot reach" not in capsys.readouterr().err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_installed_command_reports_usage_errors_with_exit_2(tmp_path):
    result = subprocess.run([str(PERCEL), "deploy", "--prod"], capture_output=True, text=True,
                            env={**os.environ, "PERCEL_API": "http://127.0.0.1:9", "PERCEL_TOKEN": "t",
                                 "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == "error: --prod needs --project"
    assert "exit codes" in subprocess.run([str(PERCEL), "--help"], capture_output=True, text=True).stdout


def test_an_unreachable_api_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([str(PERCEL), "ls", "--json"], capture_output=True, text=True,
                            env={**os.environ, "PERCEL_API": "http://127.0.0.1:9", "PERCEL_TOKEN": "t",
                                 "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot reach the API" in result.stderr


HEAVY = ("chalice", "boto3", "botocore", "git", "redis", "chalicelib", "build_runner")


def test_the_command_never_imports_the_server_libraries(tmp_path):
    probe = ("import sys, runpy\n"
             "sys.argv = ['percel', 'ls']\n"
             "try:\n    runpy.run_module('percel_cli.main', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "PERCEL_API": "http://127.0.0.1:9", "PERCEL_TOKEN": "t",
                                 "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


def test_make_run_prints_the_exact_login_line(monkeypatch):
    from types import SimpleNamespace

    from devstack.__main__ import banner
    monkeypatch.delenv("PERCEL_ADMIN_TOKEN", raising=False)
    stack = SimpleNamespace(api_url="http://127.0.0.1:8123", admin_token="pcl_admin",
                            env={"REDIS_URL": "redis://x", "AWS_ENDPOINT_URL_S3": "http://s3"})
    text = banner(stack, SimpleNamespace(port=8123, runners=1, state="/tmp/state"))
    assert "  percel login --api http://localhost:8123 --token pcl_admin\n" in text
    assert "  Dashboard: http://localhost:8123/ " in text


class BlobServer:
    """A loopback bucket stand-in: records each PUT, answers 500 to the first `failures`."""

    def __init__(self, failures: int):
        import http.server
        import threading
        self.puts: list[tuple[str, object, bytes]] = []
        self.failures = failures
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.puts.append((self.path, self.headers, body))  # names case-insensitive
                failing = outer.failures > 0
                outer.failures -= 1
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_blob_is_put_with_exactly_its_headers_and_retried_after_a_5xx(tmp_path, monkeypatch):
    from percel_cli import upload
    monkeypatch.setattr(upload, "BACKOFF_SECONDS", 0)
    server = BlobServer(failures=1)
    (tmp_path / "a.txt").write_bytes(b"hello")
    blob = {"sha256": "ab" * 32, "size": 5, "url": server.url + "/bucket/key?X-Amz-Signature=s",
            "headers": {"Content-Type": "application/octet-stream", "x-amz-checksum-sha256": "c2lnbg=="}}
    meter = upload.Meter(1, 5, None)
    upload.put_blob(blob, tmp_path / "a.txt", meter)
    server.server.shutdown()
    assert len(server.puts) == 2 and meter.files_done == 1 and meter.bytes_done == 5
    path, headers, body = server.puts[-1]
    assert path == "/bucket/key?X-Amz-Signature=s" and body == b"hello"
    assert headers["x-amz-checksum-sha256"] == "c2lnbg==" and headers["content-type"] == "application/octet-stream"
    assert headers["Authorization"] is None


def test_a_refused_put_is_not_retried(tmp_path, monkeypatch):
    import http.server
    import threading

    from percel_cli import upload
    from percel_cli.client import ApiError
    calls = []

    class Forbidden(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802
            calls.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "a.txt").write_bytes(b"x")
    blob = {"sha256": "cd" * 32, "size": 1, "url": f"http://127.0.0.1:{server.server_port}/k", "headers": {}}
    with pytest.raises(ApiError, match="HTTP 403"):
        upload.put_blob(blob, tmp_path / "a.txt", upload.Meter(1, 1, None))
    server.shutdown()
    assert len(calls) == 1


def test_many_blobs_go_up_on_a_few_kept_alive_connections(tmp_path):
    import http.server
    import threading

    from percel_cli import upload
    connections, bodies = set(), []

    class KeepAlive(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection open between requests

        def do_PUT(self):  # noqa: N802
            connections.add(self.client_address)
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    by_hash, missing = {}, []
    for i in range(60):
        (tmp_path / f"{i}.txt").write_bytes(b"blob %d" % i)
        by_hash[f"{i:064x}"] = tmp_path / f"{i}.txt"
        missing.append({"sha256": f"{i:064x}", "size": len(b"blob %d" % i), "headers": {},
                        "url": f"http://127.0.0.1:{server.server_port}/bucket/{i}?X-Amz-Signature=s"})
    upload.put_all(missing, [], by_hash, upload.Meter(60, 0, None))
    server.shutdown()
    assert sorted(bodies) == sorted(b"blob %d" % i for i in range(60))
    assert len(connections) <= upload.PUT_WORKERS


def test_the_progress_line_is_drawn_on_a_terminal_only(monkeypatch):
    from percel_cli import upload
    monkeypatch.setattr(upload, "PROGRESS_EVERY_SECONDS", 0)
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        meter = upload.Meter(2, 2_000, stream)
        meter.add(1_000)
        meter.add(1_000)
        meter.finish()
    assert "uploading 2/2 files, 2 KB of 2 KB" in terminal.getvalue() and pipe.getvalue() == ""


def test_following_outlasts_a_brief_outage_but_not_a_refusal(monkeypatch):
    from percel_cli import deploy
    from percel_cli.client import ApiError
    monkeypatch.setattr(deploy.time, "sleep", lambda _: None)

    class Flaky:
        def __init__(self, errors):
            self.errors = list(errors)

        def get(self, path, **query):
            if self.errors:
                raise self.errors.pop(0)
            return {"lines": [], "cursor": None, "done": True}

    outage = [ApiError("cannot reach the API"), ApiError("busy", 503, "unavailable")]
    assert deploy.patient_get(Flaky(outage), "/x")["done"] is True
    with pytest.raises(ApiError, match="gone"):
        deploy.patient_get(Flaky([ApiError("gone", 404, "not_found")]), "/x")


def test_the_deployed_folder_is_the_root_of_the_ignore_rules(tmp_path):
    write(tmp_path, {".gitignore": "dist/\n", "dist/index.html": "built", "dist/.gitignore": "*.map\n",
                     "dist/app.js.map": "x"})
    assert [f.path for f in files.collect(tmp_path / "dist").files] == [".gitignore", "index.html"]


def _reads_under(root: Path):
    """The files under `root` opened from now on, seen by an audit hook (sys.addaudithook)."""
    opened: list[str] = []
    prefix = str(root)

    def hook(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str) and args[0].startswith(prefix):
            opened.append(args[0])
    sys.addaudithook(hook)  # hooks cannot be removed; the prefix keeps this one to this test
    return opened


def test_an_unchanged_folder_is_hashed_again_without_reading_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "FINE_SETTLED_NS", 0)  # these files were all written just now
    root = tmp_path / "site"
    write(root, {f"page-{i}.html": f"<p>{i}</p>" for i in range(20)})
    first = files.hashed(files.collect(root).files, cache=files.HashCache(root))
    opened = _reads_under(root)
    again = files.hashed(files.collect(root).files, cache=files.HashCache(root))
    assert [f.sha256 for f in again] == [f.sha256 for f in first]
    assert opened == []
    # A file rewritten with other bytes of the same size, its mtime put back, is read again.
    page = root / "page-3.html"
    before = page.stat()
    page.write_text("<p>X</p>")
    os.utime(page, ns=(before.st_atime_ns, before.st_mtime_ns))
    opened.clear()
    third = {f.path: f.sha256 for f in files.hashed(files.collect(root).files, cache=files.HashCache(root))}
    assert third["page-3.html"] == hashlib.sha256(b"<p>X</p>").hexdigest()
    assert opened == [str(page)]


def test_a_file_written_just_before_it_is_hashed_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "FINE_SETTLED_NS", 60_000_000_000)
    monkeypatch.setattr(files, "COARSE_SETTLED_NS", 60_000_000_000)
    root = tmp_path / "site"
    write(root, {"index.html": "fresh"})
    files.hashed(files.collect(root).files, cache=files.HashCache(root))
    opened = _reads_under(root)
    # Within the margin of its last write (60 s here, so that a slow machine cannot pass it): a
    # change in the same clock tick could go unseen.
    files.hashed(files.collect(root).files, cache=files.HashCache(root))
    assert opened == [str(root / "index.html")]


def test_on_a_whole_second_clock_a_hash_waits_two_seconds_to_be_remembered():
    second = 1_000_000_000
    now = 50 * second
    fine, coarse = (now - 150_000_000, now - 150_000_000, 1), (now - second, now - second, 1)
    assert files._settled(fine, now) and not files._settled(coarse, now)
    assert files._settled((now - 3 * second, now - 3 * second, 1), now)
