"""The build's environment (build_runner/environment.py): what the platforms set, and who wins."""
from build_runner.environment import Deployment, branch_of, build_env

DEPLOYMENT = Deployment("abc123def456", "https://abc123def456.sites.example/",
                        "https://git.example/acme/site.git", "f" * 40, "main")


def test_the_build_sees_the_deployment_like_on_the_hosted_platforms():
    env = build_env({}, DEPLOYMENT)
    assert env["CI"] == "1"
    assert env["PERCEL_URL"] == "https://abc123def456.sites.example"
    assert env["VERCEL_URL"] == "abc123def456.sites.example"  # no scheme, as Vercel's
    assert env["PERCEL_GIT_COMMIT_SHA"] == env["VERCEL_GIT_COMMIT_SHA"] == "f" * 40
    assert env["PERCEL_GIT_COMMIT_REF"] == env["VERCEL_GIT_COMMIT_REF"] == "main"
    assert env["PERCEL_GIT_REPO_URL"] == "https://git.example/acme/site.git"
    assert env["VERCEL_ENV"] == "production"
    assert "VERCEL" not in env


def test_the_user_may_change_ci_but_not_what_describes_the_deployment():
    env = build_env({"CI": "", "VERCEL_GIT_COMMIT_SHA": "0" * 40, "PERCEL_URL": "https://evil.example",
                     "API_KEY": "k"}, DEPLOYMENT)
    assert env["CI"] == "" and env["API_KEY"] == "k"
    assert env["VERCEL_GIT_COMMIT_SHA"] == "f" * 40
    assert env["PERCEL_URL"] == "https://abc123def456.sites.example"


def test_frameworks_get_the_prefixed_copies_their_bundlers_expose():
    env = build_env({}, DEPLOYMENT, "nextjs")
    assert env["NEXT_PUBLIC_VERCEL_URL"] == "abc123def456.sites.example"
    assert env["NEXT_PUBLIC_VERCEL_GIT_COMMIT_SHA"] == "f" * 40
    assert build_env({}, DEPLOYMENT, "vite")["VITE_VERCEL_ENV"] == "production"
    assert not any(name.startswith("NEXT_PUBLIC_") for name in build_env({}, DEPLOYMENT, "static"))


def test_the_branch_comes_from_head_unless_it_is_detached():
    assert branch_of("ref: refs/heads/feature/x\n") == "feature/x"
    assert branch_of("f" * 40 + "\n") is None


def test_a_preview_deployment_builds_as_preview():
    preview = Deployment(**{**DEPLOYMENT.__dict__, "target": "preview"})
    env = build_env({}, preview, "vite")
    assert env["VERCEL_ENV"] == env["VERCEL_TARGET_ENV"] == env["VITE_VERCEL_ENV"] == "preview"
