"""Package managers: which one a project uses and its install, run and exec commands.

Pure like detection: reads the project's lockfiles and package.json, runs nothing.
"""
from __future__ import annotations

import json

from build_runner.project import Project, string_option

# Environment every build step needs when it runs corepack (pnpm, yarn), measured here:
# - no interactive "download pnpm?" prompt (a build has no TTY to answer it);
# - the npm registry reachable here serves package metadata without signatures, so
#   corepack's signature check fails ("No compatible signature found"); the tarball
#   is still checked against the registry's sha512 over TLS;
# - yarn >= 2 is fetched from the npm registry (@yarnpkg/cli-dist) instead of
#   repo.yarnpkg.com, so the install proxy allows one registry only.
COREPACK_ENV = {
    "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
    "COREPACK_INTEGRITY_KEYS": "0",
    "COREPACK_NPM_REGISTRY": "https://registry.npmjs.org",
}

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


def _pnpm(project: Project) -> str:
    """`corepack pnpm`, pinned to the major that wrote the lockfile unless packageManager says.

    Vercel picks pnpm by lockfileVersion the same way (vercel.com/docs/package-managers).
    """
    if str((project.package or {}).get("packageManager", "")).startswith("pnpm@"):
        return "corepack pnpm"
    version = string_option(project.read("pnpm-lock.yaml"), r"lockfileVersion:\s*'?([0-9.]+)")
    major = {"5.3": "6", "5.4": "7", "6.0": "8", "6.1": "8", "7.0": "9", "9.0": "9"}.get(version or "")
    return f"corepack pnpm@{major}" if major else "corepack pnpm"


def _yarn_berry(project: Project) -> bool:
    field = str((project.package or {}).get("packageManager", ""))
    if field.startswith("yarn@"):
        return not field.startswith("yarn@1.")
    return project.has(".yarnrc.yml") or "__metadata:" in (project.read("yarn.lock") or "")[:2000]


def install_command(project: Project, pm: str) -> str:
    locked = {name for name, owner in LOCKFILES if owner == pm and project.has(name)}
    if pm == "npm":
        return NPM_CI if locked and _npm_lock_in_sync(project) else NPM_INSTALL
    if pm == "pnpm":
        return f"{_pnpm(project)} install" + (" --frozen-lockfile" if locked else "")
    if pm == "yarn":
        frozen = " --immutable" if _yarn_berry(project) else " --frozen-lockfile"
        return "corepack yarn install" + (frozen if locked else "")
    return "bun install" + (" --frozen-lockfile" if locked else "")


def run_script(project: Project, pm: str, script: str) -> str:
    return {"npm": f"npm run {script}", "pnpm": f"{_pnpm(project)} run {script}",
            "yarn": f"corepack yarn run {script}", "bun": f"bun run {script}"}[pm]


def exec_command(project: Project, pm: str, command: str) -> str:
    """Run a binary from node_modules/.bin, never downloading one (`npm exec --no`)."""
    return {"npm": f"npm exec --no -- {command}", "pnpm": f"{_pnpm(project)} exec {command}",
            "yarn": f"corepack yarn run {command}", "bun": f"bun x --no-install {command}"}[pm]
