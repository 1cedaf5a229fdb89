"""End to end: the installed `percel` command against the running stack, as a user runs it."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_ADMIN_TOKEN, make_repo

PERCEL = Path(sys.executable).parent / "percel"
# A whole deploy of a static site takes seconds; this bounds one command, build included.
COMMAND_SECONDS = 300


class Cli:
    def __init__(self, stack, home: Path, token: str | None = TEST_ADMIN_TOKEN):
        # PYTHONPATH: this checkout's percel_cli, whatever the editable install points at.
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(home), "NO_COLOR": "1",
                    "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        self.env.pop("PERCEL_API", None)
        self.env.pop("PERCEL_TOKEN", None)
        if token is not None:
            self.env.update(PERCEL_API=stack.api_url, PERCEL_TOKEN=token)

    def __call__(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(PERCEL), *args], capture_output=True, text=True, env=self.env,
                              cwd=cwd, timeout=COMMAND_SECONDS)

    def json(self, *args: str, code: int = 0, cwd: Path | None = None) -> dict:
        result = self(*args, "--json", cwd=cwd)
        assert result.returncode == code, result.stderr
        return json.loads(result.stdout)  # exactly one object: json.loads refuses anything more


@pytest.fixture
def cli(stack, tmp_path) -> Cli:
    return Cli(stack, tmp_path / "config")


def static_repo(root: Path, page: str = "<h1>from git</h1>") -> str:
    return make_repo(root, {"index.html": page, "about/index.html": "<h1>about</h1>"})


def test_deploy_a_repository_prints_its_url_and_the_build_log(cli, http, tmp_path):
    result = cli("deploy", "--repo", static_repo(tmp_path / "repo"))
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    deployment_id = url.split("//")[1].split(".")[0]
    assert url == f"http://{deployment_id}.localhost:{http.base.rsplit(':', 1)[1]}/"
    assert "deployed" in result.stderr and "uploading" in result.stderr
    assert http.site(deployment_id, "/")[2] == b"<h1>from git</h1>"


def test_json_deploy_and_the_listing_commands(cli, tmp_path):
    record = cli.json("deploy", "--repo", static_repo(tmp_path / "repo"))
    assert record["status"] == "deployed" and record["url"] and record["id"]
    listed = cli.json("ls", "--limit", "5")["deployments"]
    assert record["id"] in [d["id"] for d in listed]
    assert cli.json("inspect", record["id"])["framework"] == "static"
    logs = cli("logs", record["id"])
    assert logs.returncode == 0 and "framework static" in logs.stdout, logs
    assert cli.json("logs", record["id"])["lines"] == logs.stdout.splitlines()
    table = cli("ls", "--limit", "5")
    assert table.stdout.startswith("ID") and record["id"] in table.stdout


def test_no_wait_then_logs_follow(cli, tmp_path):
    accepted = cli.json("deploy", "--repo", static_repo(tmp_path / "repo"), "--no-wait")
    assert accepted["status"] == "uploading"
    followed = cli.json("logs", "-f", accepted["id"])
    assert followed["status"] == "deployed" and followed["lines"]


def test_a_failing_build_exits_1_with_its_error(cli, tmp_path):
    url = make_repo(tmp_path / "broken", {
        "package.json": '{"name": "broken", "version": "1.0.0", "scripts": '
                        '{"build": "echo boom: syntax error >&2 && exit 3"}}'})
    result = cli("deploy", "--repo", url)
    assert result.returncode == 1 and result.stdout == ""
    assert "boom: syntax error" in result.stderr and "failed" in result.stderr
    record = cli.json("deploy", "--repo", url, code=1)
    assert record["status"] == "failed" and "exited with code 3" in record["error"]


def test_api_errors_are_one_line_and_exit_2(cli, stack, tmp_path):
    result = cli("inspect", "nosuchdeployment")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: 404 not_found")
    refused = Cli(stack, tmp_path / "other", token="pcl_wrong")("ls")
    assert refused.returncode == 2 and refused.stderr.startswith("error: 401 ")


def test_login_stores_a_private_config_that_later_commands_use(stack, tmp_path):
    logged_out = Cli(stack, tmp_path / "config", token=None)
    bad = logged_out("login", "--api", stack.api_url, "--token", "pcl_wrong")
    assert bad.returncode == 2 and "refused the token" in bad.stderr
    assert logged_out("login", "--api", stack.api_url, "--token", TEST_ADMIN_TOKEN).returncode == 0
    path = tmp_path / "config" / "percel" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert logged_out.json("whoami")["authenticated"] is True
    assert logged_out("logout").returncode == 0 and not path.exists()
    assert logged_out("ls").returncode == 2


def test_projects_domains_hooks_and_tokens(cli, tmp_path):
    repo = static_repo(tmp_path / "repo", "<h1>shop v1</h1>")
    created = cli.json("projects", "create", "clishop", "--repo", repo)
    assert created["name"] == "clishop" and created["webhook_secret"]
    updated = cli.json("projects", "update", "clishop", "--install-command", "true")
    assert updated["install_command"] == "true"
    first = cli.json("deploy", "--project", "clishop", "--git")
    assert first["status"] == "deployed" and first["target"] == "production"
    second = cli.json("deploy", "--project", "clishop", "--git")
    assert cli.json("projects", "inspect", "clishop")["production_deployment"] == second["id"]
    assert cli.json("rollback", "clishop")["production_deployment"] == first["id"]
    assert cli.json("promote", "clishop", second["id"])["production_deployment"] == second["id"]
    assert [d["id"] for d in cli.json("ls", "--project", "clishop")["deployments"]] == [second["id"], first["id"]]

    cli.json("domains", "add", "clishop", "www.clishop.test")
    assert cli.json("domains", "ls", "clishop")["domains"] == {"www.clishop.test": None}
    cli.json("domains", "rm", "clishop", "www.clishop.test")

    hook = cli.json("hooks", "add", "clishop", "--branch", "main")
    assert hook["url"].startswith("http") and "/api/hooks/" in hook["url"]
    assert [h["id"] for h in cli.json("hooks", "ls", "clishop")["hooks"]] == [hook["id"]]
    assert cli.json("hooks", "rm", "clishop", hook["id"])["deleted"] is True

    token = cli.json("tokens", "create", "cli-ci", "--role", "deploy", "--project", "clishop")
    assert token["token"] and token["projects"] == ["clishop"]
    assert token["id"] in [t["id"] for t in cli.json("tokens")["tokens"]]
    assert cli.json("tokens", "revoke", token["id"])["revoked"] is True

    assert cli("projects", "rm", "clishop").returncode == 2  # no terminal to ask on, no --yes
    assert cli.json("projects", "rm", "clishop", "--yes")["deleted"] is True


# --- folders: these need POST /api/uploads ----------------------------------------------------

def site_folder(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def test_deploy_a_folder_then_again_unchanged_uploads_nothing(cli, http, tmp_path):
    page = f"<h1>from a folder {tmp_path.name}</h1>"   # bytes the shared bucket has not seen
    folder = site_folder(tmp_path / "site", {
        "index.html": page, "css/site.css": "h1{}", ".env": "SECRET=1",
        ".gitignore": "drafts/\n", "drafts/wip.html": "<h1>draft</h1>"})
    first = cli("deploy", str(folder))
    assert first.returncode == 0, first.stderr
    assert "uploaded" in first.stderr
    deployment_id = first.stdout.strip().split("//")[1].split(".")[0]
    assert http.site(deployment_id, "/")[2] == page.encode()
    assert http.site(deployment_id, "/.env")[0] == 404
    assert http.site(deployment_id, "/drafts/wip.html")[0] == 404

    again = cli("deploy", str(folder))
    assert again.returncode == 0, again.stderr
    assert "nothing to upload: 0 bytes (all 3 files already there)" in again.stderr


def test_a_folder_of_small_files_goes_up_in_one_pack_then_builds_and_serves(cli, http, stack_s3_calls,
                                                                            tmp_path):
    """docs/DECISIONS.md#packs: one PUT for the small files, not one each; the runner's build
    reads them out of the pack and the site serves each file's own bytes."""
    folder = tmp_path / "site"
    files = {"index.html": os.urandom(64),
             **{f"section-{i % 5}/page-{i}.bin": os.urandom(100 + 37 * i) for i in range(120)}}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    mark = stack_s3_calls.mark()
    accepted = cli.json("deploy", str(folder), "--no-wait", "--build-command",
                        "mkdir -p out && cp -r index.html section-* out/", "--output-dir", "out")
    sent = [c.key for c in stack_s3_calls.since(mark)
            if c.method == "PUT" and c.key.startswith(("blobs/", "uploads/"))]
    # The client's pack and the API's checked copy of it (once per API process, its two
    # checksum-probe PUTs may come first).
    assert len([key for key in sent if "checksum-probe" not in key]) == 2, sent
    record = cli.json("logs", "-f", accepted["id"])
    assert record["status"] == "deployed", record
    assert http.site(accepted["id"], "/")[2] == files["index.html"]
    for name in list(files)[1::7]:
        assert http.site(accepted["id"], "/" + name)[2] == files[name]
    again = cli("deploy", str(folder), "--no-wait")
    assert again.returncode == 0, again.stderr
    assert "nothing to upload: 0 bytes (all 121 files already there)" in again.stderr


def test_deploy_a_prebuilt_folder_as_it_is(cli, http, tmp_path):
    folder = site_folder(tmp_path / "dist", {
        "index.html": "<h1>prebuilt</h1>",
        # Would fail the build if one ran.
        "package.json": '{"name": "x", "scripts": {"build": "exit 7"}}'})
    record = cli.json("deploy", str(folder), "--prebuilt")
    assert record["status"] == "deployed"
    assert http.site(record["id"], "/")[2] == b"<h1>prebuilt</h1>"


def test_a_folder_built_on_the_server_with_build_options(cli, http, tmp_path):
    folder = site_folder(tmp_path / "app", {
        "build.sh": 'mkdir -p out && printf "<p>%s</p>" "$GREETING" > out/index.html\n'})
    record = cli.json("deploy", str(folder), "--build-command", "sh build.sh", "--output-dir", "out",
                      "--env", "GREETING=hello")
    assert record["status"] == "deployed", record.get("error")
    assert http.site(record["id"], "/")[2] == b"<p>hello</p>"


def test_a_folder_as_a_project_preview_then_production(cli, http, stack, tmp_path):
    cli.json("projects", "create", "clifolder", "--repo", static_repo(tmp_path / "repo"))
    folder = site_folder(tmp_path / "site", {"index.html": "<h1>folder preview</h1>"})
    preview = cli.json("deploy", str(folder), "--project", "clifolder", "--branch", "redesign")
    assert preview["status"] == "deployed" and preview["target"] == "preview"
    status, _, body = http.request("GET", "/", host=f"clifolder-git-redesign.localhost:{stack.port}")
    assert status == 200 and body == b"<h1>folder preview</h1>"
    (folder / "index.html").write_text("<h1>folder prod</h1>")
    production = cli.json("deploy", str(folder), "--project", "clifolder", "--prod")
    assert production["target"] == "production"
    status, _, body = http.request("GET", "/", host=f"clifolder.localhost:{stack.port}")
    assert status == 200 and body == b"<h1>folder prod</h1>"


def test_ctrl_c_detaches_and_the_build_goes_on(cli, http, tmp_path):
    import signal
    url = make_repo(tmp_path / "slow", {
        "build.sh": "echo building slowly; sleep 6; mkdir -p out; echo '<h1>slow</h1>' > out/index.html\n"})
    process = subprocess.Popen([str(PERCEL), "deploy", "--repo", url, "--build-command", "sh build.sh",
                                "--output-dir", "out"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=cli.env)
    assert process.stderr is not None
    first = process.stderr.readline()  # "uploading <id>  <url>"
    assert first.startswith("uploading "), first
    deployment_id = first.split()[1]
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 130
    assert f"detached; the build goes on: percel logs -f {deployment_id}" in rest
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "deployed"
    followed = cli("logs", "-f", deployment_id)
    assert followed.returncode == 0 and "building slowly" in followed.stdout
