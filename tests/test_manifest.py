"""Manifests: what gets uploaded from a tree, and how."""
import gzip
import os

import brotli

from chalicelib.storage.manifest import (
    SYMLINK_MODE,
    blob_hashes,
    document_blobs,
    restore_source,
    scan_output,
    scan_source,
)


def test_source_scan_skips_git_and_keeps_modes_and_links(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("secret")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    os.symlink("sub/a.txt", tmp_path / "link")
    tree = scan_source(tmp_path)
    assert set(tree.files) == {"run.sh", "sub/a.txt", "link"}
    assert tree.files["run.sh"]["mode"] == 0o755
    assert tree.files["link"]["mode"] == SYMLINK_MODE


def test_output_scan_precompresses_text_when_it_pays(tmp_path):
    text = ("<p>hello world</p>\n" * 200).encode()
    (tmp_path / "index.html").write_bytes(text)
    (tmp_path / "noise.js").write_bytes(os.urandom(4000))
    tree = scan_output(tmp_path)
    entry = tree.files["index.html"]
    assert entry["type"] == "text/html; charset=utf-8"
    br, gz = entry["encodings"]["br"], entry["encodings"]["gzip"]
    assert brotli.decompress(tree.blobs[br["sha256"]]) == text
    assert gzip.decompress(tree.blobs[gz["sha256"]]) == text
    assert "encodings" not in tree.files["noise.js"]  # random bytes do not shrink by 5%
    assert blob_hashes(tree.files) == {entry["sha256"], br["sha256"], gz["sha256"],
                                       tree.files["noise.js"]["sha256"]}


def test_output_scan_ignores_links_leaving_the_output(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", tmp_path / "out" / "leak")
    assert scan_output(tmp_path / "out").files == {}


def test_restore_never_writes_outside_the_root(tmp_path):
    plan = restore_source({"../evil": {"sha256": "x"}, "ok.txt": {"sha256": "y"}}, tmp_path)
    assert [entry["sha256"] for entry in plan.values()] == ["y"]


def test_unchanged_content_is_not_compressed_again(tmp_path, monkeypatch):
    from chalicelib.storage import compress
    (tmp_path / "app.js").write_text("console.log('same bundle');\n" * 500)
    first = scan_output(tmp_path)
    calls = []
    monkeypatch.setattr(compress, "_compress", lambda data: calls.append(data) or {})
    again = scan_output(tmp_path)
    assert calls == [] and again.files == first.files


def test_a_sites_output_never_holds_the_checkouts_git_directory(tmp_path):
    """A static repository is served from its checkout, which the runner makes a git work tree."""
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "config").write_text("[core]")
    (tmp_path / "docs" / ".git").mkdir(parents=True)
    (tmp_path / "docs" / ".git" / "HEAD").write_text("x")
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / ".gitignore").write_text("node_modules")   # .git* files too (Vercel's defaults)
    assert set(scan_output(tmp_path).files) == {"index.html"}


def test_a_source_manifests_blobs_include_its_git_archive():
    files = {"index.html": {"sha256": "a" * 64, "size": 1, "mode": 0o644}}
    assert document_blobs({"files": files}) == {"a" * 64}
    assert document_blobs({"files": files, "git": {"sha256": "b" * 64, "size": 9}}) == {"a" * 64, "b" * 64}
