"""One build's own file handling (build_runner/build.py); whole builds are in tests/test_e2e_*.py."""
from __future__ import annotations

from build_runner import depcache
from build_runner.build import _restore_links, cache_scope
from build_runner.frameworks import BuildPlan


def test_restored_links_cannot_chain_out_of_the_source(tmp_path):
    """`package.json -> d/d/../../etc/passwd` looks inside while `d` is missing; once
    `d -> .` exists it led to the host's /etc/passwd, which the runner read as itself."""
    source = tmp_path / "work" / "src"
    source.mkdir(parents=True)
    depth = len(source.resolve().parts)
    _restore_links(source, {
        "package.json": ("d/" * depth + "../" * depth + "etc/passwd").encode(),  # scan order: files first
        "d": b"."})
    assert not (source / "package.json").is_symlink()
    assert (source / "d").is_symlink()  # a link to the tree itself stays


def test_restored_links_inside_the_source_are_kept(tmp_path):
    source = tmp_path / "src"
    (source / "docs").mkdir(parents=True)
    (source / "docs" / "index.html").write_text("<h1>docs</h1>")
    _restore_links(source, {"public/index.html": b"../docs/index.html", "outside": b"../../x",
                            "absolute": b"/etc/passwd", "missing": None, "loop-a": b"loop-b",
                            "loop-b": b"loop-a"})
    assert (source / "public" / "index.html").read_text() == "<h1>docs</h1>"
    assert not any((source / name).is_symlink() for name in ("outside", "absolute", "missing"))
    # The loop is broken (pathlib raises on a loop, which would have crashed the build).
    assert not ((source / "loop-a").is_symlink() and (source / "loop-b").is_symlink())


def test_dependency_cache_is_not_shared_with_other_commands_or_env(tmp_path):
    """A request for someone else's repo with its own build command must not write the
    node_modules that the repo's own deployments restore and run."""
    (tmp_path / "package-lock.json").write_text('{"lockfileVersion": 3}')
    honest = BuildPlan("vite", "npm", "npm ci", "npm run build", ("dist",), True)
    repo = "https://github.com/someone/site"

    def key(plan: BuildPlan, env: dict[str, str], url: str = repo) -> str:
        return depcache.cache_key(tmp_path, plan, "v22", "linux", scope=cache_scope(url, plan, env))

    own = key(honest, {"A": "1"})
    assert own == key(honest, {"A": "1"})  # a redeploy still hits
    poisoned_build = "npm run build && echo x >> node_modules/vite/bin/vite.js"
    poisoners = {key(BuildPlan("vite", "npm", "npm ci", poisoned_build, ("dist",), True), {"A": "1"}),
                 key(BuildPlan("vite", "npm", "npm ci --x", "npm run build", ("dist",), True), {"A": "1"}),
                 key(honest, {"A": "1", "NODE_OPTIONS": "--require ./evil.js"}),
                 key(honest, {"A": "1"}, url="https://github.com/attacker/site")}
    assert own not in poisoners and len(poisoners) == 4
