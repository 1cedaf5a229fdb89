"""The build runner's own file handling (build_runner/runner.py); whole builds are in tests/test_e2e_*.py."""
from __future__ import annotations

from pathlib import Path

from build_runner.runner import _restore_links


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
