"""Deploying a folder without git: the client lists its files, PUTs the blobs the bucket lacks
straight to the bucket, then deploys the upload (docs/DECISIONS.md#uploads).

No file byte of a large file passes through the API. Blobs are shared by every deployment, so
a body that lies about its hash must never be one: where the bucket itself refuses such a PUT,
the URLs name `blobs/<sha256>`; elsewhere a client's bytes land under `uploads/<id>/<sha256>` and
become `blobs/<sha256>` only once the bucket has hashed them. Small files go up in packs, one PUT
for many (docs/DECISIONS.md#packs): the API reads each pack once, checks every file's bytes in it,
and only then stores it as a blob.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeGuard

from chalicelib import ids, keys, paths
from chalicelib.context import Context
from chalicelib.errors import BadRequest, NotFound, TooLarge, Unprocessable
from chalicelib.schema import MANIFEST_VERSION
from chalicelib.state.records import now as record_stamp
from chalicelib.storage import manifest
from chalicelib.storage import packs as packing
from chalicelib.storage.store import WrongSize

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PATH_CHARS = 1024
# The one bit of a file's mode a source keeps, as git does (100644 or 100755).
EXECUTABLE, REGULAR = 0o755, 0o644

# What checking one staged blob found.
_PROMOTED, _ABSENT, _MISMATCH = "promoted", "absent", "mismatch"


def parse_files(body: Any, max_files: int, max_bytes: int) -> dict[str, dict[str, int | str]]:
    """The body's `files` as a source manifest's: normalised path -> {sha256, size, mode}; a
    400 naming the field, or a 413 beyond the repository limits."""
    if not isinstance(body, dict) or "files" not in body or set(body) - {"files", "packs", "deploy"}:
        raise BadRequest('the body must be {"files": [...]} (with "packs": true when the client '
                         'sends packs, and "deploy": {...} to deploy it at once)', field="files")
    if not isinstance(body.get("packs", False), bool):
        raise BadRequest("packs must be true or false", field="packs")
    listed = body["files"]
    if not isinstance(listed, list) or not listed:
        raise BadRequest("files must be a non-empty list", field="files")
    if len(listed) > max_files:
        raise TooLarge(f"the upload has more than {max_files} files")
    files: dict[str, dict[str, int | str]] = {}
    sizes: dict[str, int] = {}
    for index, item in enumerate(listed):
        path, entry = _file(item, f"files[{index}]")
        if path in files:
            raise BadRequest(f"files[{index}].path {path!r} is listed twice", field="files")
        if sizes.setdefault(str(entry["sha256"]), int(entry["size"])) != entry["size"]:
            raise BadRequest(f"files[{index}].size differs from another file with its sha256",
                             field="files")
        files[path] = entry
    if sum(int(entry["size"]) for entry in files.values()) > max_bytes:
        raise TooLarge(f"the upload is larger than {max_bytes} bytes")
    _check_tree(files)
    return files


def _file(item: Any, where: str) -> tuple[str, dict[str, int | str]]:
    if not isinstance(item, dict) or set(item) - {"path", "sha256", "size", "mode"}:
        raise BadRequest(f"{where} must be an object with path, sha256, size and mode",
                         field="files")
    raw, digest, size, mode = (item.get(name) for name in ("path", "sha256", "size", "mode"))
    path = paths.safe_relative(raw) if isinstance(raw, str) and len(raw) <= MAX_PATH_CHARS \
        and raw.isprintable() else None
    if not path:
        raise BadRequest(f"{where}.path must be a relative path inside the folder", field="files")
    if any(part.lower() == ".git" for part in path.split("/")):
        raise BadRequest(f"{where}.path {path!r} is inside .git/, which an upload never holds",
                         field="files")
    if not isinstance(digest, str) or not _SHA256_RE.match(digest):
        raise BadRequest(f"{where}.sha256 must be 64 lowercase hex digits", field="files")
    if not _whole(size):
        raise BadRequest(f"{where}.size must be a non-negative integer", field="files")
    if mode is not None and not _whole(mode):
        raise BadRequest(f"{where}.mode must be a non-negative integer", field="files")
    executable = _whole(mode) and bool(mode & 0o111)
    return path, {"sha256": digest, "size": size, "mode": EXECUTABLE if executable else REGULAR}


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tree(files: dict[str, Any]) -> None:
    """No path may be a file and a directory at once (`a` and `a/b`): no tree holds both."""
    directories = {path.rsplit("/", depth)[0] for path in files
                   for depth in range(1, path.count("/") + 1)}
    clash = sorted(directories & set(files))
    if clash:
        raise BadRequest(f"files: {clash[0]!r} is listed as a file and as a directory",
                         field="files")


def create_upload(ctx: Context, body: Any, token_id: str, upload_id: str | None = None
                  ) -> dict[str, Any]:
    """POST /api/uploads: keep the file list; presign a PUT for each blob the bucket lacks, or,
    for a client that sends packs, one PUT for each pack of the small ones. `body` may hold a
    `deploy` object: deploy.upload (its caller) reads it."""
    s = ctx.settings
    files = parse_files(body, s.max_repo_files, s.max_repo_bytes)
    sizes = {str(entry["sha256"]): int(entry["size"]) for entry in files.values()}
    upload_id = upload_id or ids.new_id()
    expires_at = time.time() + s.upload_seconds
    # Never a URL for a blob already stored, nor for a file a stored pack holds.
    _, lacking, _ = ctx.store.keep_files(sizes, keep=False)
    lacks = set(lacking)
    absent = [h for h in sizes if h in lacks]  # in the listed order, which a pack keeps
    layout = packing.plan({h: sizes[h] for h in absent}) if body.get("packs") is True else []
    ctx.uploads.save(upload_id, token_id, files, s.upload_seconds, layout)
    packed = {h for pack in layout for h in pack}
    # Straight to blobs/ only where the bucket itself refuses bytes that lie about their hash.
    direct = ctx.store.checks_signed_checksums()
    alone = [h for h in absent if h not in packed]
    signed = ctx.store.presign_puts(
        [(keys.blob(h) if direct else keys.staged_blob(upload_id, h), h) for h in alone],
        s.upload_seconds)
    missing = [{"sha256": sha256, "size": sizes[sha256], "url": url, "headers": headers}
               for sha256, (url, headers) in zip(alone, signed, strict=True)]
    pack_puts = [_pack_put(ctx, upload_id, number, pack, sizes) for number, pack in enumerate(layout)]
    return {"id": upload_id, "files": len(files),
            "bytes": sum(int(entry["size"]) for entry in files.values()),
            "missing": missing, "packs": pack_puts,
            "missing_bytes": sum(item["size"] for item in [*missing, *pack_puts]),
            "expires_at": record_stamp(expires_at)}


def _pack_put(ctx: Context, upload_id: str, number: int, pack: list[str],
              sizes: dict[str, int]) -> dict[str, Any]:
    url, headers = ctx.store.presign_pack_put(keys.staged_pack(upload_id, number),
                                              ctx.settings.upload_seconds)
    return {"files": pack, "size": sum(sizes[h] for h in pack), "url": url, "headers": headers}


def source_of(ctx: Context, upload_id: str, token_id: str) -> tuple[dict[str, Any], list[str]]:
    """The source manifest of an upload whose files are all in the bucket, and the stored blobs
    it re-stamped (check them once the manifest is written: Store.keep_blobs). Its packs, once
    every file in them is checked, and its staged blobs whose bytes hash to their name become
    blobs first. 404 for an unknown, expired or other token's upload; 422 while files are
    missing or a pack or staged blob lied about a hash."""
    found = ctx.uploads.get(upload_id, token_id)
    if found is None:
        raise NotFound(f"no upload {upload_id!r} (unknown, expired, or made with another token)")
    files, layout = found
    sizes = {str(entry["sha256"]): int(entry["size"]) for entry in files.values()}
    lying = _store_packs(ctx, upload_id, layout, sizes)
    packed, absent, restamped = ctx.store.keep_files(sizes)
    with ThreadPoolExecutor(max_workers=ctx.store.workers) as pool:
        promoted = list(pool.map(lambda sha256: _promote(ctx, upload_id, sha256), absent))
    # The staged and checked copies go in batches of 1,000 keys (DeleteObjects), not one request
    # per blob: each request to the bucket counts (bench/cli_upload.py, "where the time goes").
    ctx.store.delete([key for _, done in promoted for key in done])
    outcomes = Counter(outcome for outcome, _ in promoted)
    if lying:
        raise Unprocessable(f"{lying} file(s) in the upload's packs do not hash to the sha256 "
                            "they were sent for; the packs were discarded: PUT each pack with "
                            "its files' own bytes, in the order given, again", field="upload_id")
    if outcomes[_MISMATCH]:
        raise Unprocessable(f"{outcomes[_MISMATCH]} uploaded blob(s) do not hash to the sha256 "
                            "they were sent for and were discarded; PUT each file's own bytes "
                            "again", field="upload_id")
    if outcomes[_ABSENT]:
        raise Unprocessable(f"{outcomes[_ABSENT]} of the upload's {len(sizes)} blobs are still "
                            "missing from the bucket; PUT them (and its packs) to the URLs POST "
                            "/api/uploads returned", field="upload_id")
    return {"version": MANIFEST_VERSION, "files": manifest.with_packs(files, packed)}, restamped


def _store_packs(ctx: Context, upload_id: str, layout: list[list[str]],
                 sizes: dict[str, int]) -> int:
    """Store each pack the client sent whose every file hashes to its sha256 as a blob, and
    record where its files are; discard every pack sent. How many files lied."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(layout), ctx.store.workers))) as pool:
        lying = sum(pool.map(lambda number, pack: _store_pack(ctx, upload_id, number, pack, sizes),
                             range(len(layout)), layout))
    ctx.store.delete([keys.staged_pack(upload_id, number) for number in range(len(layout))])
    return lying


def _store_pack(ctx: Context, upload_id: str, number: int, pack: list[str],
                sizes: dict[str, int]) -> int:
    """The bytes checked are the bytes stored: read once, hashed here, written from memory,
    so a client re-PUTting its URL meanwhile changes nothing (docs/DECISIONS.md#packs)."""
    try:
        data = ctx.store.get_sized(keys.staged_pack(upload_id, number), sum(sizes[h] for h in pack))
    except WrongSize:
        return len(pack)
    if data is None:  # never sent, or stored meanwhile by a deployment of the same upload
        return 0
    lying = packing.lying(data, pack, sizes)
    if not lying:
        ctx.store.put_pack(data, dict(zip(pack, packing.offsets(pack, sizes), strict=True)))
    return len(lying)


def _promote(ctx: Context, upload_id: str, sha256: str) -> tuple[str, list[str]]:
    """Make `blobs/<sha256>` from the upload's staged copy, only if the bucket hashes its bytes
    to `sha256`. The hash is taken of a copy no client can write (keys.checked_blob), and that
    copy is what is promoted: a client re-PUTting its URL meanwhile changes nothing."""
    staged, checked = keys.staged_blob(upload_id, sha256), keys.checked_blob(upload_id, sha256)
    found = ctx.store.copy_hashed(staged, checked)
    if found is None:  # never sent, or promoted meanwhile by a deployment of the same upload
        return (_PROMOTED if ctx.store.exists(keys.blob(sha256)) else _ABSENT), []
    if found == sha256:
        ctx.store.copy_to_blob(checked, sha256)
    # (the outcome, and the staged and checked copies for the caller to delete)
    return (_PROMOTED if found == sha256 else _MISMATCH), [staged, checked]
