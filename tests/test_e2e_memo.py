"""End to end: a deployment whose build inputs equal those of an earlier deployed one reuses its
output (no install, no build, nothing uploaded); any input that differs, or `force`, builds
again (docs/DECISIONS.md#memoized-builds). Each build stamps its page with a random value, so a
reused output is told from a rebuilt one by the bytes the site serves."""
from __future__ import annotations

import json

from tests.conftest import commit_all, make_repo
from tests.test_e2e_builds import live_log

BUILD = ("mkdir -p dist && printf '%s %s' \"$GREETING\" "
         "\"$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n')\" > dist/index.html")
REUSED = "its output is reused"


def deploy(http, body: dict) -> tuple[str, str, list[str]]:
    """(id, the page it serves, its build log) of a deployment that must end deployed."""
    deployment_id = http.deploy(body)
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "deployed", record.get("error")
    return deployment_id, http.site(deployment_id, "/")[2].decode(), live_log(http, deployment_id)


def test_the_same_inputs_reuse_the_output_and_any_change_or_force_builds_again(http, tmp_path):
    url = make_repo(tmp_path / "repo", {"README.md": "a site"})
    body = {"repo_url": url, "build_command": BUILD, "output_dir": "dist",
            "env": {"GREETING": "hello"}}
    first, page, log = deploy(http, body)
    assert not any(REUSED in line for line in log)

    again, same_page, log = deploy(http, body)
    assert again != first and same_page == page
    assert any(REUSED in line and first in line for line in log), log
    assert not any(line.startswith("percel: build:") for line in log)

    _, forced, log = deploy(http, {**body, "force": True})
    assert forced != page and not any(REUSED in line for line in log)

    _, other_env, _ = deploy(http, {**body, "env": {"GREETING": "bonjour"}})
    assert other_env.startswith("bonjour ")

    (tmp_path / "repo" / "README.md").write_text("a new commit")
    commit_all(tmp_path / "repo")
    _, new_commit, log = deploy(http, body)
    assert new_commit != page and not any(REUSED in line for line in log)


def test_the_cli_force_flag_builds_again(http, stack, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import TEST_ADMIN_TOKEN
    url = make_repo(tmp_path / "repo", {"README.md": "cli"})
    percel = Path(sys.executable).parent / "percel"
    env = {**os.environ, "PERCEL_API": stack.api_url, "PERCEL_TOKEN": TEST_ADMIN_TOKEN,
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    pages = []
    for extra in ([], [], ["--force"]):
        done = subprocess.run([str(percel), "deploy", "--repo", url, "--build-command", BUILD,
                               "--output-dir", "dist", "--json", *extra], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        pages.append(http.site(json.loads(done.stdout)["id"], "/")[2])
    assert pages[0] == pages[1] != pages[2]
