"""Package managers: which one a project uses and its install, run and exec commands.

Pure like detection: reads the project's lockfiles and package.json, runs nothing.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from build_runner.errors import ProjectError
from build_runner.project import Project, string_option

# `npm ci` deletes node_modules first; depcache swaps it for an install that reuses it.
NPM_CI = "npm ci --no-audit --no-fund"
NPM_INSTALL = "npm install --no-audit --no-fund"

# Lockfile -> package manager, in the order we prefer when several are present.
LOCKFILES: tuple[tuple[str, str], ...] = (
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("bun.lock", "bun"),
    ("bun.lockb", "bun"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
)


def package_manager(project: Project) -> str:
    """From the lockfile; the packageManager field breaks ties or stands in for a lockfile."""
    field = str((project.package or {}).get("packageManager", "")).split("@")[0]
    found = [pm for name, pm in LOCKFILES if project.has(name)]
    if field in found or (not found and field in ("npm", "pnpm", "yarn", "bun")):
        return field
    return found[0] if found else "npm"


def _npm_lock_in_sync(project: Project) -> bool:
    """Cheap version of npm ci's check: the lockfile's root entry lists package.json's deps.

    npm ci refuses a lockfile whose root dependencies differ from package.json
    (docs.npmjs.com/cli/commands/npm-ci); then `npm install` is the only way through.
    """
    text = project.read("npm-shrinkwrap.json") or project.read("package-lock.json")
    try:
        lock = json.loads(text or "")
    except ValueError:
        return False
    if not isinstance(lock, dict):
        return False
    package = project.package or {}
    fields = ("dependencies", "devDependencies", "optionalDependencies")
    entries = lock.get("packages")
    if isinstance(entries, dict) and isinstance(entries.get(""), dict):  # lockfileVersion 2 and 3
        root = entries[""]
        return all((root.get(f) or {}) == (package.get(f) or {}) for f in fields) and _lock_resolves(entries)
    locked = lock.get("dependencies") or {}  # lockfileVersion 1: names only
    return all(name in locked for f in fields for name in (package.get(f) or {}))


def _lock_resolves(entries: dict) -> bool:
    """Every locked package's (optional) dependencies resolve to another locked entry.

    Measured: a create-docusaurus lockfile written by npm 11 lacks the other
    platforms' optional @swc/html-* packages and `npm ci` refuses it ("Missing:
    @swc/html-darwin-arm64@ from lock file", npm/cli#4828). Node resolution:
    look in <entry>/node_modules, then each parent's, then the root's.
    """
    for path, entry in entries.items():
        if not path or not isinstance(entry, dict) or entry.get("link"):
            continue
        for field in ("dependencies", "optionalDependencies"):
            for name in entry.get(field) or {}:
                if not _resolves(entries, path, name):
                    return False
    return True


def _resolves(entries: dict, path: str, name: str) -> bool:
    base = path
    while True:
        if f"{base}/node_modules/{name}" in entries:
            return True
        cut = base.rfind("/node_modules/")
        if cut < 0:
            return f"node_modules/{name}" in entries
        base = base[:cut]


def _yarn_berry(project: Project) -> bool:
    return version_request(project, "yarn").version.split(".")[0] != "1"


def install_command(project: Project, pm: str) -> str:
    locked = {name for name, owner in LOCKFILES if owner == pm and project.has(name)}
    if pm == "npm":
        return NPM_CI if locked and _npm_lock_in_sync(project) else NPM_INSTALL
    if pm == "pnpm":
        return "pnpm install" + (" --frozen-lockfile" if locked else "")
    if pm == "yarn":
        frozen = " --immutable" if _yarn_berry(project) else " --frozen-lockfile"
        return "yarn install" + (frozen if locked else "")
    return "bun install" + (" --frozen-lockfile" if locked else "")


def run_script(project: Project, pm: str, script: str) -> str:
    return {"npm": f"npm run {script}", "pnpm": f"pnpm run {script}",
            "yarn": f"yarn run {script}", "bun": f"bun run {script}"}[pm]


def exec_command(project: Project, pm: str, command: str) -> str:
    """Run a binary from node_modules/.bin, never downloading one (`npm exec --no`)."""
    return {"npm": f"npm exec --no -- {command}", "pnpm": f"pnpm exec {command}",
            "yarn": f"yarn run {command}", "bun": f"bun x --no-install {command}"}[pm]


# --- which version of the package manager ----------------------------------------------

# The newest pnpm major that writes each pnpm-lock.yaml lockfileVersion
# (pnpm.io/installation#compatibility): pnpm 10 writes 9.0 like pnpm 9, and a lockfile
# from pnpm 10 often goes with pnpm-10-only settings (onlyBuiltDependencies, ...).
# pnpm 11 writes 9.0 too but needs Node 22, so it is used only when packageManager says so.
PNPM_FOR_LOCKFILE = {"5.3": "6", "5.4": "7", "6.0": "8", "6.1": "8", "7.0": "9", "9.0": "10"}
PNPM_DEFAULT = "10"
# yarn.lock `__metadata.version` -> the yarn major that writes it (yarn berry's
# LOCKFILE_VERSION: 4 in yarn 2, 5 and 6 in yarn 3, 8 in yarn 4). `--immutable` refuses a
# lockfile that a newer yarn would rewrite, so the major must match.
YARN_FOR_METADATA = {"4": "2", "5": "3", "6": "3", "7": "4", "8": "4"}
YARN_BERRY_DEFAULT = "4"
# corepack's packageManager format: name@x.y.z, optionally +<algorithm>.<hex digest of the tarball>
# (github.com/nodejs/corepack#when-authoring-packages).
_PACKAGE_MANAGER = re.compile(r"^(npm|pnpm|yarn|bun)@([0-9A-Za-z.^~<>=*x|\s-]+?)"
                              r"(?:\+(sha1|sha224|sha256|sha384|sha512)\.([0-9a-fA-F]+))?$")


class InvalidPackageManager(ProjectError):
    """package.json's packageManager field cannot be read."""


@dataclass(frozen=True)
class VersionRequest:
    """The version of a package manager a project asks for: exact ("10.12.1") or a range
    ("10": the newest 10.x), where it came from, and the tarball digest it pins, if any."""
    tool: str
    version: str
    source: str
    digest: tuple[str, str] | None = None  # (hashlib algorithm, hex digest)


def version_request(project: Project, pm: str) -> VersionRequest:
    """packageManager when it names this package manager, else what its lockfile implies."""
    field = (project.package or {}).get("packageManager")
    if isinstance(field, str) and field.split("@")[0] == pm:
        match = _PACKAGE_MANAGER.match(field.strip())
        if not match:
            raise InvalidPackageManager(
                f"package.json packageManager {field!r} is not <name>@<version>[+<algorithm>.<hex>]")
        digest = (match[3], match[4].lower()) if match[3] else None
        return VersionRequest(pm, match[2].strip(), "package.json packageManager", digest)
    if pm == "pnpm":
        locked = string_option(project.read("pnpm-lock.yaml"), r"lockfileVersion:\s*['\"]?([0-9.]+)")
        major = PNPM_FOR_LOCKFILE.get(locked or "", PNPM_DEFAULT)
        return VersionRequest(pm, major, f"pnpm-lock.yaml lockfileVersion {locked}" if locked
                              else "the default")
    if pm == "yarn":
        return _yarn_request(project)
    if pm == "bun":
        return VersionRequest(pm, "1", "the default")
    return VersionRequest(pm, "", "bundled with Node.js")


def _yarn_request(project: Project) -> VersionRequest:
    lock = (project.read("yarn.lock") or "")[:4000]
    metadata = re.search(r"^__metadata:\s*\n\s+version:\s*(\d+)", lock, re.MULTILINE)
    if metadata:
        return VersionRequest("yarn", YARN_FOR_METADATA.get(metadata[1], YARN_BERRY_DEFAULT),
                              f"yarn.lock __metadata version {metadata[1]}")
    if "# yarn lockfile v1" in lock:
        return VersionRequest("yarn", "1", "yarn.lock v1")
    if project.has(".yarnrc.yml"):
        return VersionRequest("yarn", YARN_BERRY_DEFAULT, ".yarnrc.yml")
    return VersionRequest("yarn", "1", "the default")
