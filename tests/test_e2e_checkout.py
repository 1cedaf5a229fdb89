"""End to end: builds run in a git checkout of the deployed commit, see the platform's
variables, and fail with a reason that says why. Through the stack's HTTP API and the real
sandbox (docs/DECISIONS.md#git-checkout, #build-env)."""
from tests.conftest import git, make_repo

PAGE = "<h1>from the repository</h1>"


def test_the_build_sees_a_clean_checkout_of_the_deployed_commit_and_its_variables(http, stack, tmp_path):
    url = make_repo(tmp_path / "repo", {"index.html": PAGE})
    commit = git("rev-parse", "HEAD", cwd=tmp_path / "repo")
    # The status first: dist/ would be an untracked directory in it.
    build = ("git status --porcelain > /tmp/status && git rev-parse HEAD > /tmp/commit && "
             "mkdir dist && cp /tmp/status /tmp/commit index.html dist/ && env > dist/env.txt")
    deployment_id = http.deploy({"repo_url": url, "build_command": build, "output_dir": "dist",
                                 "env": {"SITE_TITLE": "My site"}})
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "deployed", record.get("error")
    assert http.site(deployment_id, "/commit")[2].decode().strip() == commit == record["commit"]
    assert http.site(deployment_id, "/status")[2] == b""  # nothing modified, nothing untracked
    status, _, raw = http.site(deployment_id, "/env.txt")
    env = dict(line.split("=", 1) for line in raw.decode().splitlines() if "=" in line)
    host = f"{deployment_id}.localhost:{stack.port}"
    assert env["PERCEL_GIT_COMMIT_SHA"] == env["VERCEL_GIT_COMMIT_SHA"] == commit
    assert env["PERCEL_GIT_COMMIT_REF"] == env["VERCEL_GIT_COMMIT_REF"] == "main"
    assert env["PERCEL_GIT_REPO_URL"] == url
    assert env["PERCEL_URL"] == f"http://{host}" and env["VERCEL_URL"] == host
    assert env["VERCEL_ENV"] == "production" and env["CI"] == "1" and env["SITE_TITLE"] == "My site"
    # The build env is the user's and the platform's, never the runner's own.
    assert not any(name.startswith("AWS_") or name in ("REDIS_URL", "PERCEL_BUCKET") for name in env)
    status, _, _ = http.site(deployment_id, "/.git/config")
    assert status == 404


def test_an_install_that_writes_git_hooks_succeeds(http, stack, tmp_path):
    """What husky does on `npm install`: write .git/hooks and point core.hooksPath at them."""
    url = make_repo(tmp_path / "repo", {"index.html": PAGE})
    install = ("mkdir -p .git/hooks && printf '#!/bin/sh\\nexit 0\\n' > .git/hooks/pre-commit && "
               "chmod +x .git/hooks/pre-commit && git config core.hooksPath .git/hooks")
    build = ("test -x .git/hooks/pre-commit && mkdir dist && cp index.html dist/ && "
             "git config core.hooksPath > dist/hooks.txt")
    deployment_id = http.deploy({"repo_url": url, "install_command": install,
                                 "build_command": build, "output_dir": "dist"})
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "deployed", record.get("error")
    assert http.site(deployment_id, "/")[2] == PAGE.encode()
    assert http.site(deployment_id, "/hooks.txt")[2] == b".git/hooks\n"


def test_a_refused_registry_host_is_named_in_the_error_line(http, stack, tmp_path):
    """10.0.2.2 is the build network's gateway to the host: the filter refuses it inside the
    sandbox, before any packet leaves, and the error line names it."""
    url = make_repo(tmp_path / "repo", {"index.html": PAGE})
    install = "npm view left-pad version --registry=https://10.0.2.2/ --fetch-retries=0"
    deployment_id = http.deploy({"repo_url": url, "install_command": install, "build_command": "true",
                                 "output_dir": "."})
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "failed"
    first, *rest = record["error"].splitlines()
    assert first.startswith(f"install command `{install}` failed: exited with code ")
    assert first.endswith("; network access to 10.0.2.2:443 was refused "
                          "(a private or reserved address)")
    assert rest[0] == "--- last log lines ---"  # the log tail follows, as before


def test_a_missing_output_directory_names_what_the_build_made(http, stack, tmp_path):
    url = make_repo(tmp_path / "repo", {
        "package.json": '{"name": "x", "version": "1.0.0", "scripts": '
                        '{"build": "mkdir -p site && echo hi > site/index.html"}}',
        "src/main.js": "console.log(1)"})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "failed"
    first = record["error"].splitlines()[0]
    assert first.startswith('No Output Directory named "dist", "build", "out", "public" found')
    assert first.endswith('Found instead: index.html found in "site".')


def test_a_static_repository_is_served_without_its_git_directory(http, stack, tmp_path):
    url = make_repo(tmp_path / "repo", {"index.html": PAGE, ".gitignore": "node_modules\n"})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=120)
    assert record["status"] == "deployed" and record["framework"] == "static", record.get("error")
    assert http.site(deployment_id, "/")[2] == PAGE.encode()
    for path in ("/.git/HEAD", "/.git/config", "/.git/index"):
        assert http.site(deployment_id, path)[0] == 404, path
