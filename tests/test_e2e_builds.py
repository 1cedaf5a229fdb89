"""End to end through the running stack: real scaffolded apps, the user's build env,
escape attempts and the dependency cache, all seen the way a user sees them (HTTP).

Scaffolds come from the official scaffolders (their templates ship inside the npm
packages). Measured here (2 vCPU, npm through the install proxy): create-vite vue
~5 s install + ~1 s build -> dist/; `sv create` SvelteKit + adapter-static ~4 s
install + ~4 s build -> build/ (tests/test_frameworks.py's docstring).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import boto3
import pytest

from chalicelib import keys
from devstack import services
from tests.conftest import commit_all, copy_tree, local_build, make_repo, pinned_app


def live_log(http, deployment_id) -> list[str]:
    """Every line through the logs API, following the cursor until it runs dry."""
    lines, cursor = [], ""
    for _ in range(1000):  # bounded: 1,000 pages of up to 1,000 lines
        status, page = http.json("GET", f"/api/deployments/{deployment_id}/logs?cursor={cursor}")
        assert status == 200, page
        lines += page["lines"]
        if not page["lines"]:
            return lines
        cursor = page["cursor"]
    raise AssertionError("the log never ran dry")


def archived_log(stack, deployment_id) -> str:
    s3 = boto3.client("s3", endpoint_url=stack.env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1")
    bucket = stack.env.get("PERCEL_BUCKET", "percel")
    return s3.get_object(Bucket=bucket, Key=keys.archived_log(deployment_id))["Body"].read().decode()


# --- scaffolds (once per session) -----------------------------------------------

@pytest.fixture(scope="session")
def vite_vue_source(tmp_path_factory) -> Path:
    """The official Vite Vue template (create-vite 9.3.0), pinned with its lockfile."""
    return pinned_app(tmp_path_factory.mktemp("scaffold"), "vite-vue")


@pytest.fixture(scope="session")
def sveltekit_source(tmp_path_factory) -> Path:
    """`sv create` SvelteKit (sv 0.17.1) with adapter-static, pinned with its lockfile."""
    app = pinned_app(tmp_path_factory.mktemp("kit-scaffold"), "sveltekit")
    # adapter-static needs every page prerendered (svelte.dev/docs/kit/adapter-static).
    (app / "src" / "routes" / "+layout.ts").write_text("export const prerender = true;\n")
    return app


# --- real apps ---------------------------------------------------------------------

def test_vite_vue_app_is_built_and_served_byte_for_byte(http, stack, vite_vue_source, tmp_path):
    repo = copy_tree(vite_vue_source, tmp_path / "vite-vue")
    deployment_id, _ = http.deploy_repo(repo, "vite")

    status, headers, index = http.site(deployment_id, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<div id="app"></div>' in index
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.decode())
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    local_build(repo)
    assert index == (repo / "dist" / "index.html").read_bytes()
    for asset in assets + ["/favicon.svg"]:
        status, _, body = http.site(deployment_id, asset)
        assert status == 200, asset
        assert body == (repo / "dist" / asset.lstrip("/")).read_bytes(), asset


def test_sveltekit_static_app_is_served_from_build(http, stack, sveltekit_source, tmp_path):
    repo = copy_tree(sveltekit_source, tmp_path / "kit")
    deployment_id, _ = http.deploy_repo(repo, "sveltekit")

    status, headers, index = http.site(deployment_id, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"<h1>Welcome to SvelteKit</h1>" in index  # prerendered, not an empty shell
    # The build/ folder's files: SvelteKit's own /_app/ chunks are served too.
    scripts = re.findall(r'(?:import\(|href=)"(\.?/_app/[^"]+\.js)"', index.decode())
    assert scripts, index[:2000]
    for script in scripts:
        status, headers, body = http.site(deployment_id, "/" + script.lstrip("./"))
        assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8", script
        assert body


# --- the user's build env ------------------------------------------------------------

SECRET = "s3cr3t-value-123"
GREETING = "hello-from-env"


def test_build_env_reaches_the_build_and_never_the_logs(http, stack, vite_vue_source, tmp_path):
    repo = copy_tree(vite_vue_source, tmp_path / "vite-env")
    main = repo / "src" / "main.js"
    main.write_text(main.read_text() + "\ndocument.title = import.meta.env.VITE_GREETING\n")
    package = json.loads((repo / "package.json").read_text())
    package["scripts"]["build"] = ('echo "token is $SECRET_TOKEN" && '
                                   'node -e "console.log(\'from node:\', process.env.SECRET_TOKEN)" && '
                                   'vite build')
    (repo / "package.json").write_text(json.dumps(package, indent=2))
    commit_all(repo)
    deployment_id = http.deploy({"repo_url": f"file://{repo}",
                                  "env": {"VITE_GREETING": GREETING, "SECRET_TOKEN": SECRET}})
    record = http.wait_for(deployment_id)
    assert record["status"] == "deployed", record.get("error")

    _, _, index = http.site(deployment_id, "/")
    script = re.search(r'src="(/assets/[^"]+\.js)"', index.decode()).group(1)
    _, _, bundle = http.site(deployment_id, script)
    assert GREETING.encode() in bundle  # Vite inlined import.meta.env.VITE_GREETING

    lines = live_log(http, deployment_id)
    assert "token is ***" in lines and "from node: ***" in lines
    assert not any(SECRET in line for line in lines)
    archive = archived_log(stack, deployment_id)
    assert "token is ***" in archive and SECRET not in archive


# --- escape attempts -----------------------------------------------------------------

# Each attempt prints one line: "escape <what>: blocked (<why>)" or "escape <what>: ESCAPED ...".
ESCAPE_BUILD = r"""#!/bin/bash
report() { if [ "$2" = 0 ]; then echo "escape $1: ESCAPED $3"; else echo "escape $1: blocked ($3)"; fi; }

out=$(cat /root/.bashrc 2>&1); report read-root $? "$out"
out=$(ls -a /root 2>&1); report list-root $? "$out"

if [ -n "$AWS_SECRET_ACCESS_KEY" ]; then report env-secret 0 "$AWS_SECRET_ACCESS_KEY"
else report env-secret 1 "AWS_SECRET_ACCESS_KEY is not set"; fi
found=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep -c '^AWS_SECRET_ACCESS_KEY=')
if [ "$found" != 0 ]; then report proc-environ 0 "$found"; else report proc-environ 1 "no process has it"; fi

out=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/__REDIS_PORT__ && printf "PING\r\n" >&3 &&
  read -t 3 r <&3 && echo "$r"' 2>&1)
report redis-bash $? "$out"
out=$(timeout 10 node -e '
const s = require("net").connect(__REDIS_PORT__, "127.0.0.1");
s.setTimeout(3000, () => { console.log("timeout"); process.exit(1); });
s.on("connect", () => s.write("PING\r\n"));
s.on("data", (d) => { console.log(String(d).trim()); process.exit(0); });
s.on("error", (e) => { console.log(e.code); process.exit(1); });' 2>&1)
report redis-node $? "$out"
out=$(timeout 10 node -e 'fetch("http://169.254.169.254/latest/meta-data/").then(
  (r) => { console.log(r.status); process.exit(0); },
  (e) => { console.log(e.cause ? e.cause.code : e.message); process.exit(1); })' 2>&1)
report metadata $? "$out"

for target in /etc/percel-escape /usr/percel-escape /percel-escape __PROJECT__/build_runner/percel-escape; do
  out=$( { echo pwned > "$target"; } 2>&1 ); report "write $target" $? "$out"
done

mkdir -p dist && echo '<h1>escape attempts done</h1>' > dist/index.html
"""

# With BUILD_NETWORK=registries the install step's only way out is the allow-list proxy: ask it
# for our Redis. (With public there is no proxy, and 127.0.0.1 is the sandbox's own loopback.)
ESCAPE_INSTALL = r"""#!/bin/bash
out=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128 || exit 1
printf "CONNECT 127.0.0.1:__REDIS_PORT__ HTTP/1.1\r\nHost: 127.0.0.1:__REDIS_PORT__\r\n\r\n" >&3
read -t 5 status <&3; echo "$status"; case "$status" in *" 200 "*) exit 0;; *) exit 1;; esac' 2>&1)
if [ $? = 0 ]; then echo "escape proxy-redis: ESCAPED $out"; else echo "escape proxy-redis: blocked ($out)"; fi
out=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/__REDIS_PORT__' 2>&1)
if [ $? = 0 ]; then echo "escape install-redis: ESCAPED"; else echo "escape install-redis: blocked ($out)"; fi
"""


def test_escape_attempts_fail_visibly_and_the_runner_carries_on(http, stack, tmp_path):
    redis_port = stack.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    # The runner's own code. (Not the stack's state dir: in tests it lives under /tmp, and
    # /tmp inside the sandbox is a private tmpfs, so a write there "works" but stays private.)
    project = str(services.PROJECT)

    def fill(text: str) -> str:
        return text.replace("__REDIS_PORT__", redis_port).replace("__PROJECT__", project)

    url = make_repo(tmp_path / "escape", {
        "package.json": json.dumps({"name": "escape", "version": "1.0.0", "scripts": {
            "preinstall": "bash escape-install.sh", "build": "bash escape.sh"}}),
        "escape.sh": fill(ESCAPE_BUILD), "escape-install.sh": fill(ESCAPE_INSTALL)})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=300)
    assert record["status"] == "deployed", record.get("error")

    lines = live_log(http, deployment_id)
    attempts = {m.group(1): m.group(2) for m in
                (re.match(r"escape (.+?): (blocked|ESCAPED)", line) for line in lines) if m}
    expected = {"read-root", "list-root", "env-secret", "proc-environ", "redis-bash", "redis-node",
                "metadata", "proxy-redis", "install-redis"}
    targets = ("/etc/percel-escape", "/usr/percel-escape", "/percel-escape",
               f"{project}/build_runner/percel-escape")
    expected |= {f"write {t}" for t in targets}
    assert set(attempts) == expected, lines
    assert set(attempts.values()) == {"blocked"}, [line for line in lines if "ESCAPED" in line]
    # The sandbox says why it refused, in the same log: the install proxy (BUILD_NETWORK=registries)
    # or the public network's filter, which never lets the metadata address through.
    refusals = [line for line in lines if line.startswith("percel sandbox: network access refused: ")]
    assert any(line.startswith(("percel sandbox: network access refused: 127.0.0.1:",
                                "percel sandbox: network access refused: 169.254.169.254:80 is"))
               for line in refusals), lines
    # (env-secret and proc-environ above look for the runner's secret itself; its value is
    # LocalStack's plain "test", so the log is searched for the key id that sits beside it.)
    assert not any(services.LOCAL_AWS["AWS_ACCESS_KEY_ID"] in line for line in lines)
    assert not any(os.path.exists(path) for path in targets)
    assert http.site(deployment_id, "/")[2] == b"<h1>escape attempts done</h1>\n"

    # The runner is unharmed: the next deployment builds and serves.
    after = http.deploy({"repo_url": make_repo(tmp_path / "after", {
        "package.json": '{"name": "after", "scripts": {"build": "mkdir -p out && echo ok > out/index.html"}}'})})
    record = http.wait_for(after, timeout=300)
    assert record["status"] == "deployed", record.get("error")
    assert http.site(after, "/")[2] == b"ok\n"


# --- dependency cache ------------------------------------------------------------------

def test_repeat_deploy_with_a_lockfile_hits_the_dependency_cache(http, stack, vite_vue_source, tmp_path):
    repo = copy_tree(vite_vue_source, tmp_path / "vite-locked")  # with its pinned package-lock.json
    commit_all(repo)
    first = http.deploy({"repo_url": f"file://{repo}"})
    assert http.wait_for(first)["status"] == "deployed"
    assert any("dependency cache miss" in line for line in live_log(http, first))

    # `force`: the same commit would otherwise reuse the first output without installing.
    second = http.deploy({"repo_url": f"file://{repo}", "force": True})
    record = http.wait_for(second)
    assert record["status"] == "deployed", record.get("error")
    assert any("dependency cache hit" in line for line in live_log(http, second))
    assert http.site(second, "/")[2] == http.site(first, "/")[2]


# --- slower frameworks (pytest -m slow) -----------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(1800)  # waits up to 1,200 s for a cold Docusaurus install + build
def test_docusaurus_site_is_served_from_build(http, stack, tmp_path):
    """Docusaurus classic: ~40 s install, ~7 s build here; output in build/, one page per doc."""
    repo = pinned_app(tmp_path, "docusaurus")
    commit_all(repo)
    deployment_id = http.deploy({"repo_url": f"file://{repo}"})
    record = http.wait_for(deployment_id, timeout=1200)
    assert record["status"] == "deployed", record.get("error")
    assert record["framework"] == "docusaurus"
    status, headers, page = http.site(deployment_id, "/docs/intro/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"Tutorial Intro" in page
    assert http.site(deployment_id, "/")[0] == 200
