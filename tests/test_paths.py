"""The one confinement rule (chalicelib/paths.py): table tests, and symlinks on a real disk."""
import pytest

from chalicelib import paths


@pytest.mark.parametrize("given, expected", [
    ("web", "web"), ("./web/", "web"), ("a//b/./c", "a/b/c"), (".", ""), ("", ""),
    ("../up", None), ("a/../../b", None), ("a/..", None), ("/etc", None), ("C:x", None),
    ("a\\b", None), ("a\0b", None),
])
def test_safe_relative_normalises_or_refuses(given, expected):
    assert paths.safe_relative(given) == expected


@pytest.mark.parametrize("given, expected", [
    ("a//b", "a//b"), ("/evil.example/", "/evil.example/"), ("a/./b", None), ("a/../b", None),
    ("", ""), ("a/", "a/"),
])
def test_url_paths_keep_their_shape_and_refuse_dot_segments(given, expected):
    assert paths.safe_relative(given, url=True) == expected


@pytest.mark.parametrize("path, ok", [
    ("node_modules", True), ("node_modules/x/y", True), ("./node_modules/x", True),
    ("node_modulesx", False), ("x/node_modules", False), ("node_modules/../etc", False),
    ("/node_modules", False),
])
def test_within(path, ok):
    assert paths.within(path, "node_modules") is ok


@pytest.mark.parametrize("link, target, ok", [
    ("node_modules/.bin/x", "../x/cli.js", True), ("node_modules/a", "../../etc/passwd", False),
    ("node_modules/a", "/etc/passwd", False), ("node_modules/a/b", "..", True),
])
def test_link_stays_inside(link, target, ok):
    assert paths.link_stays_inside(link, target, "node_modules") is ok


def test_safe_join_follows_symlinks_and_refuses_what_leads_out(tmp_path):
    root = tmp_path / "repo"
    (root / "web").mkdir(parents=True)
    (root / "out").symlink_to(tmp_path)
    (root / "loop").symlink_to(root / "loop")
    assert paths.safe_join(root, "web") == (root / "web").resolve()
    assert paths.safe_join(root, ".") == root.resolve()
    assert paths.safe_join(root, "out") is None
    assert paths.safe_join(root, "loop") is None
    assert paths.safe_join(root, "../repo/web") is None
