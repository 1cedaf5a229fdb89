"""The request handler's I/O adapter: Host -> deployment -> compiled site -> decision -> bytes.

Which file answers, and with which status and headers, is decided by the pure resolver
(chalicelib/serving/resolve.py); this module only loads sites and blobs (through bounded
in-memory caches: both are immutable) and builds the Response.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from functools import lru_cache
from threading import Lock

from chalice.app import Response

from chalicelib import ids, keys
from chalicelib.context import Context
from chalicelib.errors import BACKEND_ERRORS
from chalicelib.lru import LRU
from chalicelib.schema import OutputManifest
from chalicelib.serving.compiled import CompiledSite
from chalicelib.serving.decision import TEXT_PLAIN, BlobRef, Decision, redirect_note
from chalicelib.serving.request import host_name
from chalicelib.serving.resolve import resolve
from chalicelib.state.records import State
from chalicelib.storage.store import MissingBlob

log = logging.getLogger("percel.site")

# How stale a cached "not deleted" may be: a delete is visible everywhere within this.
RECHECK_SECONDS = 5.0
MAX_CHECKED = 100_000
# Compiled sites kept in memory, by their estimated size (CompiledSite.size_estimate). One
# site may take half: a site at MAX_OUTPUT_FILES (25,000) with br+gzip variants and 1,000-
# character paths is about 60 MB, so even the largest site a build may publish stays cached.
SITES_CACHE_BYTES = 128 * 1024 * 1024
SITE_SHARE = 1 / 2
# Local stage only: every site response says how many bucket GETs this process has made, so
# the end-to-end tests and bench/serve_bench.py can check through the real server that cache
# hits, 304s, redirects and 404s cost no bucket call, without a stats route.
BUCKET_READS_HEADER = "X-Percel-Bucket-Reads"
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class NotCached(Exception):
    """A request asked to be answered from memory alone (`cached_only`) needs Redis or the
    bucket: it is answered again on the full path (devstack/asgi.py)."""


def site_label(host: str | None, root_domain: str) -> str | None:
    """The site label of a Host header `<label>.<root_domain>[:port]`, or None (an API request)."""
    if not host:
        return None
    return _site_label(host, root_domain)


@lru_cache(maxsize=4096)   # asked on every request; a few hosts repeat endlessly
def _site_label(host: str, root_domain: str) -> str | None:
    name = host_name(host)
    suffix = "." + root_domain.lower()
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if _LABEL.fullmatch(label) else None


def plain_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """A short text answer that no cache keeps."""
    return Response(body=message.encode(), status_code=status,
                    headers={"Content-Type": "text/plain; charset=utf-8",
                             "Cache-Control": "no-store", **(headers or {})})


def _gone() -> Response:
    return plain_response(410, "Gone: this deployment was deleted\n")


def _no_such_site() -> Response:
    return plain_response(404, "Not Found: no such site\n")


def _files_lost(deployment_id: str) -> Response:
    """Recorded as deployed, yet the bucket has no manifest: the bucket was emptied or replaced
    (chalicelib/pipeline/integrity.py). A 404 would tell visitors the site does not exist."""
    log.error("deployment %s is recorded as deployed but its files are not in the bucket",
              deployment_id)
    return plain_response(503, "Service Unavailable: this site's files are missing from the "
                               "bucket\n")


class SiteServer:
    def __init__(self, ctx: Context, cache_bytes: int = 64 * 1024 * 1024,
                 sites_bytes: int = SITES_CACHE_BYTES):
        self.ctx = ctx
        self.sites = LRU(sites_bytes, max_item_share=SITE_SHARE)
        self.blobs = LRU(cache_bytes)
        self.checked: dict[str, float] = {}
        # label or domain -> (until when, what Projects.resolve answered then: id, "" or None)
        self.aliases: dict[str, tuple[float, str | None]] = {}
        # Bucket GETs made so far (manifest and blob cache misses); read by tests and the bench.
        self.bucket_reads = 0
        self._reads_lock = Lock()
        self._debug_header = ctx.settings.is_local

    def _count_read(self) -> None:
        with self._reads_lock:
            self.bucket_reads += 1

    def site(self, deployment_id: str, cached_only: bool = False) -> CompiledSite | None:
        """The deployment compiled once; None when it has no output manifest."""
        cached: CompiledSite | None = self.sites.get(deployment_id)
        if cached is None:
            if cached_only:
                raise NotCached(deployment_id)
            self._count_read()
            body = self.ctx.store.get_bytes(keys.deployment_manifest(deployment_id))
            if body is None:
                return None
            manifest: OutputManifest = json.loads(body)
            cached = CompiledSite(manifest)
            self.sites.put(deployment_id, cached, cached.size_estimate)
        return cached

    def blob(self, sha256: str, pack: str | None = None, offset: int = 0, size: int = 0,
             cached_only: bool = False) -> bytes:
        """A file's bytes by its sha256, from its own blob or (one ranged GET) its pack."""
        data: bytes | None = self.blobs.get(sha256)
        if data is None:
            if cached_only:
                raise NotCached(sha256)
            self._count_read()
            data = self.ctx.store.read_slice(pack, offset, size) if pack \
                else self.ctx.store.read_blob(sha256)
            self.blobs.put(sha256, data, len(data))
        return data

    def handle(self, label: str, method: str, raw_path: str, query: str,
               headers: Mapping[str, str], cached_only: bool = False) -> Response:
        """The site's answer. With `cached_only`, NotCached instead of any call to Redis or the
        bucket: the same answer or none, so a server may give it without leaving its event loop."""
        try:
            response = self._handle(label, method, raw_path, query, headers, cached_only)
        except MissingBlob:
            # A manifest naming a blob the bucket lacks: never expected (blobs are checked
            # before `deployed`), so say so plainly rather than with a traceback.
            log.exception("site %s: a blob of its manifest is missing", label)
            response = plain_response(500, "Internal Server Error: a file of this site is missing\n")
        if self._debug_header:
            response.headers[BUCKET_READS_HEADER] = str(self.bucket_reads)
        return response

    def deployment_for(self, label: str, cached_only: bool = False) -> str | None:
        """The deployment a site label or custom domain serves: a deployment id is itself; a
        project's address (`<name>`, `<name>-git-<slug>`, a domain) is looked up in Redis at most
        every ALIAS_CACHE_SECONDS per handler, so a moved address is seen within that time.
        One lookup per request: a request never mixes two deployments' files. "" for an
        address that serves nothing yet, None for no address at all."""
        if ids.is_valid_id(label):
            return label
        now = time.monotonic()
        cached = self.aliases.get(label)
        if cached is not None and cached[0] > now:
            return cached[1]
        if cached_only:
            raise NotCached(label)
        found = self.ctx.projects.resolve(label)
        if len(self.aliases) > MAX_CHECKED:
            self.aliases.clear()
        self.aliases[label] = (now + self.ctx.settings.alias_cache_seconds, found)
        return found

    def is_custom_domain(self, host: str, cached_only: bool = False) -> bool:
        """Whether a Host outside ROOT_DOMAIN is a project's custom domain (cached like aliases).
        A backend outage counts as no: the API answers, and its health says what is down."""
        try:
            return self.deployment_for(host, cached_only) is not None
        except BACKEND_ERRORS:
            return False

    def _handle(self, label: str, method: str, raw_path: str, query: str,
                headers: Mapping[str, str], cached_only: bool) -> Response:
        deployment_id = self.deployment_for(label, cached_only)
        if not deployment_id:
            return _no_such_site()
        site = self.site(deployment_id, cached_only)
        if site is None:
            status = self.ctx.records.status(deployment_id)
            if status is State.DELETED:
                return _gone()
            if status is State.DEPLOYED:
                return _files_lost(deployment_id)
            return _no_such_site()
        if self._deleted_since_cached(deployment_id, cached_only):
            return _gone()
        return self._respond(method, resolve(method, raw_path, headers, site, query), cached_only)

    def _deleted_since_cached(self, deployment_id: str, cached_only: bool) -> bool:
        """A manifest never changes, but a deployment can be deleted: re-check its record
        at most every RECHECK_SECONDS, so a delete takes effect within that time everywhere."""
        now = time.monotonic()
        if now - self.checked.get(deployment_id, 0.0) < RECHECK_SECONDS:
            return False
        if cached_only:
            raise NotCached(deployment_id)
        if self.ctx.records.status(deployment_id) is State.DELETED:
            self.sites.drop(deployment_id)
            return True
        if len(self.checked) > MAX_CHECKED:  # bounded like the caches; forgetting only re-checks
            self.checked.clear()
        self.checked[deployment_id] = now
        return False

    def _respond(self, method: str, decision: Decision, cached_only: bool) -> Response:
        headers: dict[str, str | list[str]] = dict(decision.headers)
        body = decision.inline if method != "HEAD" else b""
        ref = decision.body
        if ref is not None and method != "HEAD":
            # The whole blob's size decides, not the range's: serving a small range of a big
            # file inline meant fetching all of it (no ranged GET here) on every seek of a
            # video. The bucket answers Range on the presigned URL itself.
            # A packed file (at most PACK_FILE_BYTES) is always sent inline: a presigned URL
            # cannot send a slice of its pack.
            if ref.size > self.ctx.settings.max_inline_bytes and ref.pack is None:
                if cached_only:   # presigning may fetch credentials
                    raise NotCached(ref.sha256)
                return self._presigned(decision, ref)
            data = self.blob(ref.sha256, ref.pack, ref.offset, ref.size, cached_only)
            body = data if ref.range is None else data[ref.range[0]:ref.range[1] + 1]
        return Response(body=body, status_code=decision.status, headers=headers)

    def _presigned(self, decision: Decision, ref: BlobRef) -> Response:
        """Lambda answers at most 6 MB of base64: larger bodies come straight from the bucket."""
        extra = {"ResponseContentType": decision.header("Content-Type") or ""}
        encoding = decision.header("Content-Encoding")
        if encoding:
            extra["ResponseContentEncoding"] = encoding
        url = self.ctx.store.presign(keys.blob(ref.sha256), expires=300, **extra)
        body = redirect_note(url)   # never on HEAD: _respond sends a HEAD the file's headers
        headers: dict[str, str | list[str]] = {
            "Location": url, "Cache-Control": "no-store", "Content-Type": TEXT_PLAIN,
            "Content-Length": str(len(body))}
        return Response(body=body, status_code=302, headers=headers)
