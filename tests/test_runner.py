"""The build runner's loop (build_runner/loop.py) with a scripted sandbox: how a build's
ending reaches the record and the log. Whole builds are in tests/test_e2e_*.py."""
from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from pathlib import Path

from build_runner import build
from build_runner.loop import Runner
from build_runner.sandbox import RunResult
from build_runner.sandbox.base import MAX_LINE_BYTES
from build_runner.toolchain.registry import Registry
from chalicelib import keys
from chalicelib.context import Context
from chalicelib.pipeline import deploy, lifecycle
from chalicelib.state.records import State
from chalicelib.state.secrets import new_key
from tests.conftest import git, make_ctx, make_repo, upload_sources


class ScriptedSandbox:
    """Prints `lines`, then exits with `exit_code`; writes dist/index.html on success."""
    name = "scripted"

    def __init__(self, lines: list[str], exit_code: int = 0):
        self.lines, self.exit_code = lines, exit_code
        self.tools: list[tuple[Path, ...]] = []

    def run(self, command, *, workdir: Path, home, env, network, timeout, on_line, cancel=None, tools=()):
        self.tools.append(tuple(tools))
        for line in self.lines:
            on_line(line)
        if self.exit_code == 0:
            (workdir / "dist").mkdir(exist_ok=True)
            (workdir / "dist" / "index.html").write_text("built")
        return RunResult(self.exit_code, False, None)


def build_once(ctx: Context, tmp_path: Path, sandbox, files: dict[str, str] | None = None,
               **body) -> tuple[str, State | None]:
    url = make_repo(tmp_path / "repo", files or {"index.html": "source"})
    deployment_id = deploy.create_deployment(ctx, {"repo_url": url, "build_command": "build-it",
                                                   "output_dir": "dist", **body})["id"]
    upload_sources(ctx)
    assert lifecycle.claim(ctx, "runner", timeout=0) == deployment_id
    return deployment_id, Runner(ctx, sandbox, runner_id="runner").process(deployment_id)


def archived(ctx: Context, deployment_id: str) -> list[str]:
    return ctx.store.get_bytes(keys.archived_log(deployment_id)).decode().splitlines()


def test_a_failed_build_records_its_reason_and_log_tail_once(ctx, tmp_path):
    sandbox = ScriptedSandbox(["compiling", "boom: syntax error"], exit_code=3)
    deployment_id, state = build_once(ctx, tmp_path, sandbox)
    assert state is State.FAILED
    error = ctx.records.get(deployment_id)["error"]
    reason = "build command `build-it` failed: exited with code 3"
    assert error.startswith(reason + "\n--- last log lines ---\n")
    assert error.count(reason) == 1 and error.count("boom: syntax error") == 1
    last_two = error.splitlines()[-2:]
    assert last_two[0] == "boom: syntax error" and last_two[1].endswith("(exit 3)")
    lines = archived(ctx, deployment_id)
    assert sum(line == f"percel: build failed: {reason}" for line in lines) == 1
    assert lines[-1] == f"percel: build failed: {reason}"  # logged after the state committed
    assert ctx.queue.depth() == (0, 0)


def test_a_problem_in_the_project_is_reported_as_the_users(ctx, tmp_path):
    deployment_id, state = build_once(ctx, tmp_path, ScriptedSandbox([]), root_dir="nope")
    assert state is State.FAILED
    error = ctx.records.get(deployment_id)["error"]
    assert error.startswith("root_dir 'nope' is not a directory in the repository")


def test_a_bug_in_the_runner_fails_neutrally_and_never_blames_the_project(ctx, tmp_path,
                                                                          monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ValueError("list index out of range in detect")
    monkeypatch.setattr(build.frameworks, "detect", broken)
    with caplog.at_level(logging.ERROR, logger="percel.runner"):
        deployment_id, state = build_once(ctx, tmp_path, ScriptedSandbox([]))
    assert state is State.FAILED
    error = ctx.records.get(deployment_id)["error"]
    assert error == "internal error in the build runner"
    assert "percel: build failed: internal error in the build runner" in archived(ctx, deployment_id)
    assert not any("out of range" in line for line in archived(ctx, deployment_id))
    # The runner's own log keeps what its operators need.
    assert any(record.exc_info and "out of range in detect" in str(record.exc_info[1])
               for record in caplog.records)


def test_a_successful_build_ends_deployed_then_says_so(ctx, tmp_path):
    deployment_id, state = build_once(ctx, tmp_path, ScriptedSandbox(["ok"]))
    assert state is State.DEPLOYED
    lines = archived(ctx, deployment_id)
    assert lines[-1] == f"percel: deployed at {ctx.settings.site_url(deployment_id)}"
    assert ctx.queue.depth() == (0, 0)


def test_config_lines_skipped_by_the_deploy_are_in_the_record_and_the_log(ctx, tmp_path):
    """A bad `_redirects` line does not fail the build: the deployment goes live with the
    other rules, and GET /api/deployments/{id} lists the skipped line under `warnings`."""
    files = {"index.html": "source", "dist/_redirects": "/x?y 301\n/old /new\n",
             "dist/_headers": "/*\nX-Frame-Options: DENY\n  X-Empty:\n"}
    deployment_id, state = build_once(ctx, tmp_path, ScriptedSandbox([]), files)
    assert state is State.DEPLOYED
    expected = ["_redirects line 1: no destination; only a 2xx rule whose path ends in /* may "
                "leave it out; line skipped",
                "_headers line 3: expected `Name: value`, got 'X-Empty:' (no value); line skipped"]
    assert deploy.get_deployment(ctx, deployment_id)["warnings"] == expected
    lines = archived(ctx, deployment_id)
    assert all(f"percel: config warning: {warning}" in lines for warning in expected)
    config = ctx.store.get_json(keys.deployment_manifest(deployment_id))["config"]
    assert [rule["destination"] for rule in config["netlify_redirects"]] == ["/new"]


def test_a_deployment_without_config_warnings_lists_none(ctx, tmp_path):
    deployment_id, _ = build_once(ctx, tmp_path, ScriptedSandbox([]))
    assert deploy.get_deployment(ctx, deployment_id)["warnings"] == []


class CheckoutProbe(ScriptedSandbox):
    """Looks at the build directory as the build sees it, with real git, then builds dist/."""

    def __init__(self):
        super().__init__([])
        self.seen: dict = {}

    def run(self, command, *, workdir: Path, home, env, network, timeout, on_line, cancel=None,
            tools=()):
        def git_out(*args):
            return subprocess.run(["git", *args], cwd=workdir, capture_output=True, text=True,
                                  check=True).stdout.strip()
        self.seen = {"head": git_out("rev-parse", "HEAD"), "status": git_out("status", "--porcelain"),
                     "env": dict(env)}
        return super().run(command, workdir=workdir, home=home, env=env, network=network,
                           timeout=timeout, on_line=on_line, cancel=cancel, tools=tools)


def test_the_build_runs_in_a_clean_checkout_of_the_deployed_commit(ctx, tmp_path):
    probe = CheckoutProbe()
    user_env = {"CI": "false", "PERCEL_GIT_COMMIT_SHA": "forged", "VERCEL_URL": "evil.example",
                "MY_TOKEN": "s3cret-value"}
    deployment_id, state = build_once(ctx, tmp_path, probe, env=user_env)
    assert state is State.DEPLOYED
    commit = ctx.records.get(deployment_id)["commit"]
    assert probe.seen["head"] == commit == git("rev-parse", "HEAD", cwd=tmp_path / "repo")
    assert probe.seen["status"] == ""
    env = probe.seen["env"]
    host = f"{deployment_id}.localhost:8000"
    assert env["PERCEL_GIT_COMMIT_SHA"] == env["VERCEL_GIT_COMMIT_SHA"] == commit  # ours win
    assert env["PERCEL_GIT_COMMIT_REF"] == env["VERCEL_GIT_COMMIT_REF"] == "main"  # the default branch
    assert env["PERCEL_URL"] == f"http://{host}" and env["VERCEL_URL"] == host
    assert env["PERCEL_GIT_REPO_URL"] == f"file://{tmp_path / 'repo'}"
    assert env["VERCEL_ENV"] == "production" and env["PERCEL_DEPLOYMENT_ID"] == deployment_id
    assert env["CI"] == "false" and env["MY_TOKEN"] == "s3cret-value"  # the user's own
    assert "VERCEL" not in env  # adapters read it as "build for Vercel"
    assert not any(name.startswith("AWS_") or name == "REDIS_URL" for name in env)


def test_a_refused_host_is_named_in_the_one_line_reason(ctx, tmp_path):
    sandbox = ScriptedSandbox([
        "npm error network request failed",
        "percel sandbox: network access refused: example.com:443 is not on the registry allow-list",
        "percel sandbox: network access refused: other.example:443 is not on the registry allow-list",
    ], exit_code=1)
    deployment_id, state = build_once(ctx, tmp_path, sandbox)
    assert state is State.FAILED
    first = ctx.records.get(deployment_id)["error"].splitlines()[0]
    assert first == ("build command `build-it` failed: exited with code 1; network access to "
                     "example.com:443 was refused (not on the registry allow-list)")


def test_a_missing_output_directory_says_what_the_build_made_instead(ctx, tmp_path):
    deployment_id, state = build_once(ctx, tmp_path, ScriptedSandbox(["ok"]), output_dir="public")
    assert state is State.FAILED
    first = ctx.records.get(deployment_id)["error"].splitlines()[0]
    assert first.startswith('No Output Directory named "public" found after the Build completed')
    assert first.endswith('Found instead: index.html found in "dist".')


def test_the_reason_hides_the_users_env_values_too(ctx, tmp_path):
    sandbox = ScriptedSandbox(["percel sandbox: network access refused: "
                               "tok-12345.example.com:443 is not on the registry allow-list"], exit_code=1)
    deployment_id, state = build_once(ctx, tmp_path, sandbox, env={"TOKEN": "tok-12345"})
    error = ctx.records.get(deployment_id)["error"]
    assert "network access to ***.example.com:443 was refused" in error.splitlines()[0]
    assert "tok-12345" not in error


def test_a_source_uploaded_before_git_checkouts_builds_as_a_plain_tree(ctx, tmp_path):
    seen: list[bool] = []

    class Look(ScriptedSandbox):
        def run(self, command, *, workdir: Path, **kwargs):
            seen.append((workdir / ".git").exists())
            return super().run(command, workdir=workdir, **kwargs)
    url = make_repo(tmp_path / "repo", {"index.html": "source"})
    deployment_id = deploy.create_deployment(ctx, {"repo_url": url, "build_command": "build-it",
                                                   "output_dir": "dist"})["id"]
    upload_sources(ctx)
    key = keys.source_manifest(deployment_id)
    ctx.store.put_json(key, {k: v for k, v in ctx.store.get_json(key).items() if k != "git"})
    assert lifecycle.claim(ctx, "runner", timeout=0) == deployment_id
    assert Runner(ctx, Look([]), runner_id="runner").process(deployment_id) is State.DEPLOYED
    assert seen == [False]


def test_an_unsupported_node_version_fails_the_build_saying_what_where_and_what_is_supported(ctx, tmp_path):
    deployment_id, state = build_once(ctx, tmp_path, ScriptedSandbox([]),
                                      {".nvmrc": "16\n", "package.json": "{}"})
    assert state is State.FAILED
    assert ctx.records.get(deployment_id)["error"].startswith(
        "Node.js '16' (from .nvmrc) is not supported; supported majors: 18, 20, 22, 24")


def test_the_node_version_option_wins_and_the_build_runs_with_that_toolchain(ctx, tmp_path):
    sandbox = ScriptedSandbox([])
    deployment_id, state = build_once(ctx, tmp_path, sandbox, {".nvmrc": "20\n", "package.json": "{}"},
                                      node_version="22.x")
    assert state is State.DEPLOYED
    record = ctx.records.get(deployment_id)
    assert record["node_version"].startswith("22.")
    assert any(line.startswith(f"percel: toolchain: node {record['node_version']} "
                               "(from the node_version build option)") for line in archived(ctx, deployment_id))
    # Every step ran with the toolchain: its npm, then its node, on PATH (the sandbox mounts them).
    assert sandbox.tools and all(len(tools) == 2 and tools[-1].name.startswith("node-linux-")
                                 and tools[-1].name.endswith(f"-{record['node_version']}")
                                 for tools in sandbox.tools)


class PruningSandbox(ScriptedSandbox):
    """While each step runs, another runner on the host prunes the toolchain cache down to
    nothing; then the step runs the build's node."""

    def __init__(self, cache: Path):
        super().__init__([])
        self.cache = cache
        self.node_said: list[str] = []

    def run(self, command, *, tools=(), **kwargs):
        Registry("http://127.0.0.1:9", self.cache, max_bytes=1).prune()
        node = tools[-1] / "bin" / "node"
        self.node_said.append(subprocess.run([node, "--version"], capture_output=True, text=True).stdout)
        return super().run(command, tools=tools, **kwargs)


def test_the_cache_is_never_pruned_under_a_build_and_is_after_it(settings, tmp_path):
    cache = tmp_path / "toolchains"  # its own: pruning the session's would cost later downloads
    ctx = make_ctx(dataclasses.replace(settings, toolchain_dir=str(cache)))
    sandbox = PruningSandbox(cache)
    deployment_id, state = build_once(ctx, tmp_path, sandbox, {"package.json": "{}"})
    assert state is State.DEPLOYED
    version = ctx.records.get(deployment_id)["node_version"]
    assert sandbox.node_said and all(said == f"v{version}\n" for said in sandbox.node_said)
    # The build has ended: nothing holds its tools any more.
    assert Registry("http://127.0.0.1:9", cache, max_bytes=1).prune()
    assert not list(cache.glob("node-linux-*"))


def test_a_static_repository_gets_no_toolchain(ctx, tmp_path):
    sandbox = ScriptedSandbox([])
    deployment_id, state = build_once(ctx, tmp_path, sandbox)
    assert state is State.DEPLOYED and sandbox.tools == [()]
    assert "node_version" not in ctx.records.get(deployment_id)


class EnvRecordingSandbox(ScriptedSandbox):
    def __init__(self) -> None:
        super().__init__([])
        self.envs: list[dict[str, str]] = []

    def run(self, command, *, env, **kwargs):
        self.envs.append(dict(env))
        return super().run(command, env=env, **kwargs)


def test_the_build_sees_the_env_value_that_redis_holds_only_sealed(ctx, tmp_path):
    sandbox = EnvRecordingSandbox()
    deployment_id, state = build_once(ctx, tmp_path, sandbox, env={"API_TOKEN": "tok-sealed-42"})
    assert state is State.DEPLOYED
    assert b"tok-sealed-42" not in b"".join(ctx.redis.hgetall(keys.record(deployment_id)).values())
    assert sandbox.envs and all(env["API_TOKEN"] == "tok-sealed-42" for env in sandbox.envs)


def test_a_record_written_before_env_was_sealed_still_builds_with_its_env(ctx, tmp_path):
    url = make_repo(tmp_path / "repo", {"index.html": "source"})
    deployment_id = deploy.create_deployment(ctx, {"repo_url": url, "build_command": "build-it",
                                                   "output_dir": "dist"})["id"]
    # What deploy.py wrote before docs/DECISIONS.md#secrets-at-rest: env in clear in options.
    record_key = keys.record(deployment_id)
    options = json.loads(ctx.redis.hget(record_key, "options"))
    ctx.redis.hset(record_key, "options", json.dumps({**options, "env": {"OLD_TOKEN": "tok-clear-7"}}))
    upload_sources(ctx)
    assert lifecycle.claim(ctx, "runner", timeout=0) == deployment_id
    sandbox = EnvRecordingSandbox()
    assert Runner(ctx, sandbox, runner_id="runner").process(deployment_id) is State.DEPLOYED
    assert sandbox.envs[0]["OLD_TOKEN"] == "tok-clear-7"


def test_a_runner_without_the_sealing_key_fails_the_build_saying_so(ctx, tmp_path):
    url = make_repo(tmp_path / "repo", {"index.html": "source"})
    deployment_id = deploy.create_deployment(ctx, {"repo_url": url, "build_command": "build-it",
                                                   "env": {"API_TOKEN": "tok-sealed-42"}})["id"]
    upload_sources(ctx)
    assert lifecycle.claim(ctx, "runner", timeout=0) == deployment_id
    other_key = dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, percel_secret_key=new_key()))
    sandbox = EnvRecordingSandbox()
    assert Runner(other_key, sandbox, runner_id="runner").process(deployment_id) is State.FAILED
    assert sandbox.envs == []  # nothing ran
    error = ctx.records.get(deployment_id)["error"]
    assert "encrypted with a key the build runner's PERCEL_SECRET_KEY does not hold" in error
    assert any("build failed" in line for line in archived(ctx, deployment_id))


def test_a_secret_cut_by_the_64_KiB_line_limit_reaches_the_log_masked_on_both_sides(ctx, tmp_path):
    secret = "tok-straddling-the-cut-99"
    head = "x" * (MAX_LINE_BYTES - 9) + secret[:9]  # a piece the sandbox's splitter cut here
    sandbox = ScriptedSandbox([head, secret[9:] + " end", "after"], exit_code=1)
    deployment_id, state = build_once(ctx, tmp_path, sandbox, env={"TOKEN": secret})
    lines = archived(ctx, deployment_id)
    cut = next(i for i, line in enumerate(lines) if line.startswith("xxx"))
    # The stored log keeps the first logs.MAX_LINE_CHARS of the long piece; its continuation:
    assert lines[cut + 1] == "*** end" and lines[cut + 2] == "after"
    error = ctx.records.get(deployment_id)["error"]
    assert "\n*** end\nafter\n" in error
    assert not any(part in text for part in (secret[:5], secret[-5:]) for text in [error, *lines])
