"""The few git commands a clone needs, done by dulwich (a pure-Python git client), where no `git`
binary exists: Lambda's Python runtime (docs/DECISIONS.md#gitless).

clone.py runs this module as a child process (`python -c` with clone.py's sys.path, then this
module as `__main__`), the way it runs git: in a session of its own, SIGKILLed with its group at
CLONE_TIMEOUT, its files bounded by RLIMIT_FSIZE and its memory by RLIMIT_AS (set here, first
thing, so nothing is written before they hold) and its directory watched. Its output follows
git's where clone.py reads it (`ls-remote`'s and `ls-tree -r -l -z`'s lines, "not found in
upstream", "File too large"), so one reader serves both clients.

With a pin (`--pin host port address scheme`), the child resolves the pinned host to the checked
address and no other name at all, as curl's `--resolve` does for git; TLS is still verified for
the host name; only the pin's scheme is accepted; a redirect is an error, never followed.
"""
from __future__ import annotations

import os
import resource
import socket
import sys
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_PINNED_SCHEMES = ("https", "http")


def _pin_resolver(host: str, port: int, address: str) -> None:
    """Every name lookup in this process answers the checked address for the pinned host, and
    fails for any other name: a connection can go nowhere else."""
    lookup = socket.getaddrinfo

    def pinned(name: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        if str(name).rstrip(".").lower() != host.lower():
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not the pinned host")
        return lookup(address, port, *args, **kwargs)
    socket.getaddrinfo = pinned  # type: ignore[assignment]


def _client(url: str, pin: tuple[str, int, str, str] | None) -> tuple[Any, str]:
    from dulwich.client import Urllib3HttpGitClient, get_transport_and_path
    parts = urlsplit(url)
    if pin is not None:
        host, port, address, scheme = pin
        if parts.scheme != scheme or scheme not in _PINNED_SCHEMES or parts.hostname != host:
            raise SystemExit(f"fatal: only {scheme} to {host} is allowed")
        _pin_resolver(host, port, address)
    elif parts.scheme not in ("", "file", "http", "https", "git"):
        raise SystemExit(f"fatal: the {parts.scheme!r} protocol is not allowed")
    if parts.scheme in _PINNED_SCHEMES:
        return Urllib3HttpGitClient(url, pool_manager=_no_redirects()), ""
    client, path = get_transport_and_path(url)
    return client, path


def _no_redirects() -> Any:
    import urllib3

    class NoRedirects(urllib3.PoolManager):
        """A 3xx answer comes back as it is (dulwich then refuses it as "unexpected http resp"):
        a redirect could lead to a host validation never checked."""

        def urlopen(self, method: str, url: str, *args: Any, **kw: Any) -> Any:
            kw["redirect"] = False
            return super().urlopen(method, url, *args, **kw)
    return NoRedirects(cert_reqs="CERT_REQUIRED", headers={"User-Agent": "git/percel-dulwich"})


def _listing(client: Any, path: str) -> tuple[dict[str, str], str | None]:
    """The remote's refs as ls-remote names them (HEAD, refs/..., peeled tags as `<tag>^{}`),
    and the ref its HEAD names."""
    result = client.get_refs(path.encode() if path else b"")
    refs = {name.decode(): sha.decode() for name, sha in result.refs.items() if sha}
    _peel_local_tags(client, path, refs)
    default = result.symrefs.get(b"HEAD")
    return refs, default.decode() if default else None


def _peel_local_tags(client: Any, path: str, refs: dict[str, str]) -> None:
    """dulwich's HTTP listing carries the peeled `<tag>^{}` lines a server sends; its local one
    does not, so they are read from the repository itself."""
    from dulwich.client import LocalGitClient
    from dulwich.repo import Repo
    if not isinstance(client, LocalGitClient):
        return
    with Repo(path) as local:
        repo: Any = local  # dulwich types ref names as its own NewType of bytes
        for name in [n for n in refs if n.startswith("refs/tags/") and not n.endswith("^{}")]:
            peeled = repo.get_peeled(name.encode()).decode()
            if peeled != refs[name]:
                refs[f"{name}^{{}}"] = peeled


def ls_remote(url: str, pin: Any) -> None:
    for name, sha in _listing(*_client(url, pin))[0].items():
        sys.stdout.write(f"{sha}\t{name}\n")


def _wanted(refs: dict[str, str], default: str | None, ref: str | None) -> tuple[str, str | None]:
    """The commit `git clone --branch` would check out, and the branch it would be on (None: a
    tag, detached, as git leaves it); `default` is the branch the remote's HEAD names."""
    if ref is None:
        head = refs.get("HEAD")
        if head is None:
            raise SystemExit("fatal: the repository has no commits")
        if default and default.startswith("refs/heads/") and refs.get(default) == head:
            return head, default[len("refs/heads/"):]
        return head, None
    if f"refs/heads/{ref}" in refs:
        return refs[f"refs/heads/{ref}"], ref
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if name in refs:
            return refs[name], None
    raise SystemExit(f"fatal: Remote branch {ref} not found in upstream origin")


def clone(url: str, destination: Path, ref: str | None, pin: Any) -> None:
    """`git clone --depth 1 --single-branch --no-tags --no-checkout [--branch ref]`."""
    from dulwich.repo import Repo
    client, path = _client(url, pin)
    commit, branch = _wanted(*_listing(client, path), ref)
    destination.mkdir()
    repo = Repo.init(str(destination))
    client.fetch(path.encode() if path else b"", repo, determine_wants=lambda *_args, **_kw: [commit.encode()], depth=1)
    config = repo.get_config()
    config.set((b"remote", b"origin"), b"url", url.encode())
    if branch:
        config.set((b"remote", b"origin"), b"fetch",
                   f"+refs/heads/{branch}:refs/remotes/origin/{branch}".encode())
        config.write_to_path()
        names: Any = repo.refs  # dulwich types ref names as its own NewType of bytes
        names[f"refs/heads/{branch}".encode()] = commit.encode()
        names[f"refs/remotes/origin/{branch}".encode()] = commit.encode()
        names.set_symbolic_ref(b"HEAD", f"refs/heads/{branch}".encode())
    else:
        config.write_to_path()
        # Detached, as git leaves a tag (assigning HEAD would move the branch it names).
        (Path(repo.controldir()) / "HEAD").write_text(f"{commit}\n")
    repo.close()


def ls_tree(repo_path: Path) -> None:
    """`git ls-tree -r -l -z HEAD`: "<mode> <type> <sha> <size>\\t<path>\\0" for each file, each
    size read from the object's header as git reads it, never by inflating the object (a pack
    under the byte limit can hold a blob a thousand times larger: zlib's ratio)."""
    from dulwich.repo import Repo
    with Repo(str(repo_path)) as repo:
        size = _sizer(Path(repo.controldir()), repo.object_format)
        out = sys.stdout.buffer
        for entry in repo.object_store.iter_tree_contents(repo[b"HEAD"].tree):  # type: ignore[attr-defined]
            mode = entry.mode or 0
            if mode == 0o160000:  # a submodule: never fetched nor checked out
                out.write(b"%06o commit %s -\t%s\0" % (mode, entry.sha, entry.path))
            else:
                out.write(b"%06o blob %s %d\t%s\0" % (mode, entry.sha, size(entry.sha), entry.path))


def _sizer(git_dir: Path, object_format: Any) -> Any:
    """A function from a blob's hex sha to its size: from its pack entry's header (git's pack
    format, Documentation/gitformat-pack.txt), else from its loose object's header."""
    from dulwich.pack import load_pack_index
    packs = [(load_pack_index(str(idx), object_format), idx.with_suffix(".pack"))
             for idx in sorted((git_dir / "objects" / "pack").glob("*.idx"))]

    def size(sha: Any) -> int:
        for index, pack in packs:
            try:
                offset = index.object_offset(sha)
            except KeyError:
                continue
            return _packed_size(pack, offset, len(sha) // 2)
        return _loose_size(git_dir / "objects" / sha[:2].decode() / sha[2:].decode())
    return size


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A little-endian base-128 number (a delta's sizes) and where it ends."""
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        shift, at = shift + 7, at + 1
        if not byte & 0x80:
            return value, at


def _packed_size(pack: Path, offset: int, sha_bytes: int) -> int:
    """A pack entry's size: in its header for a whole object; for a delta (types 6 and 7), the
    result size that opens the delta data, two varints into its compressed stream."""
    with open(pack, "rb") as data:
        data.seek(offset)
        head = data.read(64)
        byte = head[0]
        kind, size, shift, at = (byte >> 4) & 7, byte & 0x0F, 4, 1
        while byte & 0x80:
            byte = head[at]
            size |= (byte & 0x7F) << shift
            shift, at = shift + 7, at + 1
        if kind not in (6, 7):
            return size
        if kind == 6:  # OFS_DELTA: a base offset, one varint of its own kind
            while head[at] & 0x80:
                at += 1
            at += 1
        else:  # REF_DELTA: the base object's id
            at += sha_bytes
        data.seek(offset + at)
        delta = zlib.decompressobj().decompress(data.read(4096), 32)
    _base, end = _varint(delta, 0)
    return _varint(delta, end)[0]


def _loose_size(path: Path) -> int:
    with open(path, "rb") as loose:
        header = zlib.decompressobj().decompress(loose.read(4096), 64)  # b"blob <size>\0"
    return int(header.split(b"\0", 1)[0].split(b" ")[1])


def checkout(repo_path: Path) -> None:
    """`git checkout --force` of HEAD into the work tree (files, links and the index)."""
    from dulwich.index import build_index_from_tree
    from dulwich.repo import Repo
    with Repo(str(repo_path)) as repo:
        build_index_from_tree(repo.path, repo.index_path(), repo.object_store,
                              repo[b"HEAD"].tree)  # type: ignore[attr-defined]


def forget_file_times(repo_path: Path) -> None:
    """`git read-tree HEAD`: the index holds HEAD's entries with no stat data at all. Git then
    compares contents the first time it meets such an entry (a zero size means "look"), so the
    work tree reads as clean to the build's git."""
    from dulwich.index import Index, IndexEntry
    from dulwich.repo import Repo
    with Repo(str(repo_path)) as repo:
        index = Index(repo.index_path(), read=False)
        for entry in repo.object_store.iter_tree_contents(repo[b"HEAD"].tree):  # type: ignore[attr-defined]
            index[entry.path] = IndexEntry(ctime=0, mtime=0, dev=0, ino=0, mode=entry.mode, uid=0,
                                           gid=0, size=0, sha=entry.sha)
        index.write()


def head(repo_path: Path) -> str:
    from dulwich.repo import Repo
    with Repo(str(repo_path)) as repo:
        return repo.head().decode()


def main(argv: list[str]) -> None:
    if argv[:1] == ["--fsize"]:
        limit = int(argv[1])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # SIGXFSZ is ignored: EFBIG
        argv = argv[2:]
    if argv[:1] == ["--memory"]:
        # dulwich holds each object whole while it makes or reads a pack: a pack under the byte
        # limit may hold a blob a thousand times larger (zlib's ratio), so the child's memory is
        # bounded too, and an object that does not fit is refused as too large.
        memory = int(argv[1])
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        argv = argv[2:]
    pin = None
    if argv[:1] == ["--pin"]:
        pin = (argv[1], int(argv[2]), argv[3], argv[4])
        argv = argv[5:]
    command, *args = argv
    try:
        if command == "ls-remote":
            ls_remote(args[0], pin)
        elif command == "clone":
            clone(args[0], Path(args[1]), args[2] or None, pin)
        elif command == "ls-tree":
            ls_tree(Path.cwd())
        elif command == "checkout":
            checkout(Path.cwd())
        else:
            raise SystemExit(f"fatal: unknown command {command}")
    except MemoryError:
        raise SystemExit("fatal: File too large: an object does not fit in memory") from None
    except OSError as error:
        raise SystemExit(f"fatal: {error.strerror or error}") from None  # "File too large" on EFBIG
    except Exception as error:  # noqa: BLE001 - dulwich's errors have no common base; git exits 128
        raise SystemExit(f"fatal: {type(error).__name__}: {error}") from None


if __name__ == "__main__":
    os.umask(0o022)
    main(sys.argv[1:])
