"""Dependency cache against a real S3 endpoint over HTTP (the moto server from conftest).

Measured for the archive format (create-vite react app, 63 MB node_modules, 486
entries, moto server on loopback): plain tar 65 MB, pack+put+get+unpack 0.97 s;
gzip level 1 25 MB, 1.8 s; gzip level 6 22 MB, 3.4 s. Restore alone: 0.2-0.3 s
plain, 0.77 s gzip-1. Plain tar wins until the bucket is slower than ~60 MB/s.
"""
from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from build_runner import depcache
from build_runner.frameworks import BuildPlan
from build_runner.package_managers import NPM_CI, NPM_INSTALL
from chalicelib import keys
from chalicelib.settings import Settings
from chalicelib.storage.store import Store, make_s3_client

PLAN = BuildPlan("vite", "npm", NPM_CI, "npm run build", ("dist",), False)
KEY = "0" * 64


@pytest.fixture(params=["tar in a sandbox", "python"])
def way(request, monkeypatch) -> str:
    """Both ways a restore unpacks: GNU tar in bubblewrap (where it runs, as here), and the
    Python extractor a runner without bubblewrap uses."""
    if request.param == "tar in a sandbox":
        assert depcache.contained_tar_available()   # the Makefile installs bubblewrap
    else:
        monkeypatch.setattr(depcache, "contained_tar_available", lambda: False)
    return request.param


@pytest.fixture
def store(s3_url, request) -> Store:
    bucket = f"depcache-{os.getpid()}-{abs(hash(request.node.name)) % 10**8}"
    store = Store(make_s3_client(Settings(s3_endpoint_url=s3_url)), bucket)
    store.ensure_bucket()
    return store


def installed_project(root: Path) -> Path:
    """A project whose node_modules looks like npm left it: a .bin link, an executable, a hidden lockfile."""
    modules = root / "node_modules"
    (modules / "vite" / "bin").mkdir(parents=True)
    (modules / "vite" / "bin" / "vite.js").write_text("#!/usr/bin/env node\n")
    (modules / "vite" / "bin" / "vite.js").chmod(0o755)
    (modules / "vite" / "package.json").write_text('{"name": "vite"}')
    (modules / ".bin").mkdir()
    (modules / ".bin" / "vite").symlink_to("../vite/bin/vite.js")
    (modules / ".package-lock.json").write_text("{}")
    (root / "package-lock.json").write_text('{"lockfileVersion": 3}')
    return root


def test_cache_key_follows_lockfile_runtime_and_scope(tmp_path):
    project = installed_project(tmp_path)
    key = depcache.cache_key(project, PLAN, "v20.20.2", "linux-x86_64-glibc2.36")
    assert key == depcache.cache_key(project, PLAN, "v20.20.2", "linux-x86_64-glibc2.36")
    others = {
        depcache.cache_key(project, PLAN, "v22.0.0", "linux-x86_64-glibc2.36"),
        depcache.cache_key(project, PLAN, "v20.20.2", "linux-aarch64-glibc2.36"),
        depcache.cache_key(project, PLAN, "v20.20.2", "linux-x86_64-glibc2.36", scope="https://x/y.git"),
    }
    (project / "package-lock.json").write_text('{"lockfileVersion": 3, "changed": true}')
    others.add(depcache.cache_key(project, PLAN, "v20.20.2", "linux-x86_64-glibc2.36"))
    assert key not in others and len(others) == 4


def test_no_lockfile_no_cache_key(tmp_path):
    (tmp_path / "package.json").write_text("{}")
    assert depcache.cache_key(tmp_path, PLAN, "v20", depcache.current_platform()) is None


def test_node_modules_round_trip_through_the_bucket(store, tmp_path, way):
    first = installed_project(tmp_path / "first")
    assert depcache.save(store, KEY, first) is True
    assert store.exists(keys.build_cache(KEY))
    assert depcache.save(store, KEY, first) is False  # already cached: uploaded once

    second = tmp_path / "second"
    second.mkdir()
    assert depcache.restore(store, KEY, second) is True
    modules = second / "node_modules"
    assert os.readlink(modules / ".bin" / "vite") == "../vite/bin/vite.js"
    assert (modules / ".bin" / "vite").read_text() == "#!/usr/bin/env node\n"
    assert os.stat(modules / "vite" / "bin" / "vite.js").st_mode & stat.S_IXUSR
    # npm trusts node_modules/.package-lock.json only if it is newer than the folders: keep mtimes.
    original = (first / "node_modules" / ".package-lock.json").stat().st_mtime
    assert (modules / ".package-lock.json").stat().st_mtime == pytest.approx(original, abs=1)
    assert not list(second.glob(".percel-restore-*"))


def test_restore_misses_cleanly(store, tmp_path):
    assert depcache.restore(store, "f" * 64, tmp_path) is False
    assert not (tmp_path / "node_modules").exists()


def test_restore_never_writes_through_a_node_modules_the_repo_ships(store, tmp_path):
    depcache.save(store, KEY, installed_project(tmp_path / "first"))
    outside = tmp_path / "outside"
    outside.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / "node_modules").symlink_to(outside)
    assert depcache.restore(store, KEY, project) is False
    assert list(outside.iterdir()) == []


def test_too_big_is_not_saved(store, tmp_path):
    project = installed_project(tmp_path)
    assert depcache.save(store, KEY, project, max_bytes=10) is False
    assert not store.exists(keys.build_cache(KEY))


def test_links_out_of_node_modules_are_left_out_of_the_archive(tmp_path):
    project = installed_project(tmp_path / "p")
    (project / "node_modules" / "leak").symlink_to("/etc/passwd")
    names = tarfile.open(fileobj=io.BytesIO(depcache.pack_node_modules(project))).getnames()
    assert "node_modules/leak" not in names and "node_modules/.bin/vite" in names


def archive(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        good = tarfile.TarInfo("node_modules/ok.js")
        good.size = len(data)
        tar.addfile(good, io.BytesIO(data))
        for member in members:
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("evil, reason", [
    ([member("/tmp/percel-evil")], "outside node_modules"),
    ([member("node_modules/../../percel-evil")], "outside node_modules"),
    ([member("package.json")], "outside node_modules"),
    ([member("node_modules/esc", tarfile.SYMTYPE, "/etc"), member("node_modules/esc/x")], "points outside"),
    ([member("node_modules/up", tarfile.SYMTYPE, "../../../..")], "points outside"),
    ([member("node_modules/hard", tarfile.LNKTYPE, "/etc/passwd")], "hard link"),
    ([member("node_modules/hard", tarfile.LNKTYPE, "node_modules/../../x")], "hard link"),
    ([member("node_modules/dev", tarfile.CHRTYPE)], "device or fifo"),
])
def test_malicious_archives_are_refused_and_write_nothing_outside(store, tmp_path, way, evil, reason):
    """The Python extractor refuses each member before it is written; tar refuses `..` names,
    links it cannot make and devices itself, and what it did write (only inside its scratch
    folder) is refused whole when a name or link reaches out of node_modules."""
    project = tmp_path / "deep" / "project"
    project.mkdir(parents=True)
    data = archive(*evil)
    with pytest.raises((depcache.UnsafeArchive, tarfile.TarError),
                       match=reason if way == "python" else None):
        depcache.unpack_node_modules(data, project)
    store.put_bytes(keys.build_cache(KEY), data)
    assert depcache.restore(store, KEY, project) is False
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "project"]


@pytest.mark.parametrize("links", [
    # Each link alone stays inside (lexically); `a` leads out only once `b` exists, and the
    # archive lists `a` first: a check made while writing `a` cannot see it.
    [member("node_modules/a", tarfile.SYMTYPE, "b/../outside"), member("node_modules/b", tarfile.SYMTYPE, ".")],
    # `c` is made through the link `b`, so it lands somewhere its check never looked.
    [member("node_modules/sub", tarfile.DIRTYPE), member("node_modules/b", tarfile.SYMTYPE, "sub"),
     member("node_modules/b/c", tarfile.SYMTYPE, "../x")],
])
def test_links_that_lead_out_only_together_are_refused(store, tmp_path, way, links):
    project = tmp_path / "project"
    project.mkdir()
    store.put_bytes(keys.build_cache(KEY), archive(*links))
    if depcache.restore(store, KEY, project):
        # tar made `c` inside `sub` (through `b`), where it leads to node_modules/x: a tree
        # whose every link stays inside is as safe as it looks.
        assert way == "tar in a sandbox"
        modules = (project / "node_modules").resolve()
        for link in (path for path in modules.rglob("*") if path.is_symlink()):
            assert link.resolve().is_relative_to(modules), link
    else:
        assert list(project.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


@pytest.mark.parametrize("make, reason", [
    (lambda top, outside: os.link(outside, top / "shared"), "hard link"),
    (lambda top, outside: os.mkfifo(top / "pipe"), "device or fifo"),
    (lambda top, outside: os.chmod(top / "pkg" / "index.js", 0o4755), "set-id"),
    (lambda top, outside: (top / "up").symlink_to(outside), "points outside"),
])
def test_the_tree_tar_wrote_is_checked_whole(tmp_path, make, reason):
    """What the sandbox could still let tar write inside its folder, refused before use."""
    from chalicelib.storage import archives
    top = tmp_path / "node_modules"
    (top / "pkg").mkdir(parents=True)
    (top / "pkg" / "index.js").write_text("x")
    os.link(top / "pkg" / "index.js", top / "pkg" / "alias.js")   # shared inside: fine
    archives.check_tree(top)
    outside = tmp_path / "secret"
    outside.write_text("s")
    make(top, outside)
    with pytest.raises(archives.UnsafeTree, match=reason):
        archives.check_tree(top)


def test_restore_keeps_folder_times_for_npm(store, tmp_path, way):
    """npm reads node_modules/.package-lock.json instead of every package only when it is
    newer than the package folders: a restore that stamps folders `now` costs a full scan."""
    first = installed_project(tmp_path / "first")
    os.utime(first / "node_modules" / "vite", (1_000_000, 1_000_000))
    depcache.save(store, KEY, first)
    second = tmp_path / "second"
    second.mkdir()
    assert depcache.restore(store, KEY, second) is True
    assert (second / "node_modules" / "vite").stat().st_mtime == 1_000_000
    assert os.stat(second / "node_modules" / ".bin" / "vite", follow_symlinks=False).st_size > 0


def test_truncated_archive_leaves_no_partial_node_modules(store, tmp_path, way):
    data = depcache.pack_node_modules(installed_project(tmp_path / "p"))
    store.put_bytes(keys.build_cache(KEY), data[: len(data) // 2])
    project = tmp_path / "q"
    project.mkdir()
    assert depcache.restore(store, KEY, project) is False
    assert list(project.iterdir()) == []


def test_npm_reuses_a_restored_node_modules_instead_of_npm_ci():
    assert depcache.install_command_for(PLAN, cache_restored=True) == depcache.NPM_REUSE
    assert depcache.install_command_for(PLAN, cache_restored=False) == NPM_CI
    yarn = BuildPlan("vite", "yarn", "yarn install --frozen-lockfile", None, ("dist",), False)
    assert depcache.install_command_for(yarn, cache_restored=True) == yarn.install_command
    custom = BuildPlan("vite", "npm", NPM_INSTALL, None, ("dist",), False)
    assert depcache.install_command_for(custom, cache_restored=True) == NPM_INSTALL


def test_local_tier_moves_node_modules_between_builds_and_keeps_the_newest(store, tmp_path):
    local = tmp_path / "local"
    first = installed_project(tmp_path / "first")
    (first / "node_modules" / ".cache").mkdir()  # what a build leaves, reusable by the next one
    assert depcache.stash(KEY, first, local) is True
    assert not (first / "node_modules").exists()

    second = tmp_path / "second"
    second.mkdir()
    assert depcache.restore(store, KEY, second, local_dir=local) is True  # bucket is empty: came from disk
    assert (second / "node_modules" / ".cache").is_dir()
    assert os.readlink(second / "node_modules" / ".bin" / "vite") == "../vite/bin/vite.js"
    assert not (local / KEY).exists()  # taken, so two runners never share one tree

    for n in range(4):
        project = installed_project(tmp_path / f"p{n}")
        depcache.stash(f"{n}" * 64, project, local, keep=2)
    assert sorted(p.name[0] for p in local.iterdir() if not p.name.startswith(".")) == ["2", "3"]


def test_local_miss_falls_back_to_the_bucket(store, tmp_path):
    depcache.save(store, KEY, installed_project(tmp_path / "first"))
    project = tmp_path / "second"
    project.mkdir()
    assert depcache.restore(store, KEY, project, local_dir=tmp_path / "empty-local") is True
    assert (project / "node_modules" / "vite" / "package.json").is_file()
