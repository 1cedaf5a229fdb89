"""End to end through the running stack: the Node.js and package manager a project asks for
are the ones its build runs with, as the user sees it (build log, record, site).

The stack's runner shares the session's toolchain cache (`toolchain_dir`), so each Node.js
and pnpm version is downloaded once per run.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from build_runner.toolchain import Toolchains
from chalicelib.settings import Settings
from tests.conftest import make_repo
from tests.test_e2e_builds import live_log

# Writes the page from inside the build: the Node.js that ran it and who ran the script.
BUILD_JS = """
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html",
  `<p>node ${process.version}</p><p>${process.env.npm_config_user_agent || ""}</p>` +
  (process.env.WITH_PAD ? `<p>${require("left-pad")("x", 3, ".")}</p>` : ""));
"""


def test_nvmrc_22_builds_with_node_22(http, tmp_path):
    url = make_repo(tmp_path / "repo", {
        ".nvmrc": "22\n",
        "package.json": json.dumps({"name": "on-22", "private": True,
                                    "scripts": {"build": "node --version && node build.js"}}),
        "build.js": BUILD_JS,
    })
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id)
    assert record["status"] == "deployed", record.get("error")
    assert record["node_version"].startswith("22.")
    log = live_log(http, deployment_id)
    assert any(line.startswith("v22.") for line in log), log
    assert any(line.startswith("percel: toolchain: node 22.") and "(from .nvmrc)" in line for line in log)
    status, _, page = http.site(deployment_id, "/")
    assert status == 200 and f"node v{record['node_version']}".encode() in page


def test_a_pnpm_9_lockfile_builds_with_pnpm_10(http, tmp_path, toolchain_dir):
    repo = tmp_path / "repo"
    make_repo(repo, {
        "package.json": json.dumps({"name": "pnpm-app", "private": True, "dependencies": {"left-pad": "1.3.0"},
                                    "scripts": {"build": "WITH_PAD=1 node build.js"}}),
        "build.js": BUILD_JS,
    })
    write_pnpm_lockfile(repo, toolchain_dir)
    assert "lockfileVersion: '9.0'" in (repo / "pnpm-lock.yaml").read_text()
    deployment_id, record = http.deploy_repo(repo, "node")
    log = live_log(http, deployment_id)
    assert "percel: install: pnpm install --frozen-lockfile" in log
    assert any(line.startswith("percel: toolchain:") and
               "pnpm 10." in line and "(from pnpm-lock.yaml lockfileVersion 9.0)" in line for line in log), log
    status, _, page = http.site(deployment_id, "/")
    assert status == 200 and b"pnpm/10." in page and b"..x" in page  # left-pad ran


def write_pnpm_lockfile(repo: Path, toolchain_dir: Path) -> None:
    """The lockfile pnpm 10 writes for `repo`, written by pnpm 10 from the toolchain cache."""
    toolchain = Toolchains.from_settings(Settings(toolchain_dir=str(toolchain_dir))).prepare(repo, "pnpm", None)
    assert toolchain.tools[0].version.startswith("10.")
    path = ":".join([*(str(d / "bin") for d in toolchain.dirs), os.environ.get("PATH", "/usr/bin:/bin")])
    done = subprocess.run(["pnpm", "install", "--lockfile-only"], cwd=repo, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PATH": path, "CI": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
