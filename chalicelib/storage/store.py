"""The bucket: the only module that talks to S3.

Content-addressed: a blob's key is its sha256, so it is written once and never
changes; manifests are small JSON documents that name blobs.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import CancelledError, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Protocol, Sequence, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from chalicelib import keys
from chalicelib.settings import Settings
from chalicelib.storage.presign import QuerySigner


def make_s3_client(settings: Settings, session: boto3.session.Session | None = None):
    """Build the boto3 S3 client once, at the edge.

    boto3 >= 1.36 adds CRC checksums by default, which R2 rejects on uploads:
    only compute them when an operation requires one (docs/DECISIONS.md#r2-compatibility).
    Presigned URLs are SigV4: without `signature_version` botocore presigns with SigV2 for
    us-east-1 (measured: `AWSAccessKeyId=...&Signature=...`), which signs no `x-amz-checksum-*`
    header, and R2 accepts only SigV4 (docs/DECISIONS.md#uploads).
    The bucket's region and keys are percel's own settings when set (PERCEL_S3_REGION, e.g.
    R2's "auto", and PERCEL_S3_ACCESS_KEY_ID / PERCEL_S3_SECRET_ACCESS_KEY): in Lambda the
    AWS_* names hold the function's region and its role's keys (docs/DECISIONS.md#r2-compatibility).
    """
    config = Config(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=max(10, settings.upload_workers),
        s3={"addressing_style": "path"},
    )
    credentials = {}
    if settings.s3_access_key_id:
        credentials = {"aws_access_key_id": settings.s3_access_key_id,
                       "aws_secret_access_key": settings.s3_secret_access_key}
    return (session or boto3).client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or settings.aws_region,
        config=config,
        **credentials,
    )


def _json_body(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

# What _put_blob did with one blob.
_WRITTEN, _KEPT, _RESTAMPED = "written", "kept", "restamped"


class MissingBlob(Exception):
    """A blob a manifest names is not in the bucket (its GET answered NoSuchKey / 404)."""

    def __init__(self, sha256: str):
        super().__init__(f"blob {sha256} is missing from the bucket")
        self.sha256 = sha256


class WrongSize(Exception):
    """An object is not as long as it must be (Store.get_sized)."""


# A LIST page is worth asking for while it settles at least this many of the blobs looked up:
# S3 and R2 price a LIST as 12.5 HEADs (a class A against a class B request: $5.00 against
# $0.40 per million on S3, $4.50 against $0.36 on R2), and it takes about one HEAD's round trip.
LIST_BREAK_EVEN = 13


class StampCache(Protocol):
    """Blobs' LastModified times known from earlier requests (state/blobstamps.py keeps them in
    Redis). An entry is trusted only while younger than the Store's `refresh_after`: the sweep
    deletes a blob only when it is older than the GC grace period (twice that), so a blob
    seen that recently is still there (docs/DECISIONS.md#blob-stamps)."""

    def known(self, sha256s: list[str]) -> dict[str, float]: ...

    def remember(self, stamps: dict[str, float]) -> None: ...

    def forget(self, sha256s: list[str]) -> None: ...


class PackLocator(Protocol):
    """Which checked pack holds a file's bytes (state/packindex.py; docs/DECISIONS.md#packs)."""

    def locate(self, sha256s: list[str]) -> dict[str, tuple[str, int]]: ...

    def record(self, pack: str, segments: dict[str, int]) -> None: ...


def _put_headers(sha256: str) -> dict[str, str]:
    """What a presigned PUT of the blob `sha256` signs and its client sends."""
    return {"Content-Type": "application/octet-stream",
            "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha256)).decode()}


def _refused(url: str, body: bytes, headers: dict[str, str]) -> bool:
    """PUT `body` to a presigned URL: True when the endpoint answers with a 4xx."""
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
        return False
    except urllib.error.HTTPError as error:
        return 400 <= error.code < 500


def _is_missing(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound")


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the bucket did not answer (once boto3's retries are spent): the
    connection was refused, dropped or timed out, or the endpoint answered with a 5xx. Such a
    failure is ours, not the caller's: worth another try later."""
    if isinstance(error, (EndpointUnreachable, ConnectionClosedError, ReadTimeoutError)):
        return True
    if isinstance(error, ClientError):
        return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return False


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class Store:
    def __init__(self, s3_client, bucket: str, workers: int = 16, refresh_after: float = 3600,
                 stamps: StampCache | None = None, packed: PackLocator | None = None):
        self.s3 = s3_client
        self.bucket = bucket
        self.workers = workers
        self.stamps = stamps
        self.packed = packed
        self._probe_lock = threading.Lock()
        self._checks_checksums: bool | None = None
        # A reused blob older than this is re-stamped, so the garbage collector's grace
        # period protects it until the manifest that now names it is written.
        self.refresh_after = refresh_after

    # --- plain objects ------------------------------------------------------
    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=self.bucket)

    def ping(self) -> None:
        self.s3.head_bucket(Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if _is_missing(error):
                return None
            raise

    @contextlib.contextmanager
    def open_stream(self, key: str) -> Iterator[BinaryIO | None]:
        """The object's body to read as it downloads (a big archive, unpacked while it
        arrives); None when the key is missing. Closed when the block ends."""
        body = None
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if not _is_missing(error):
                raise
        try:
            yield body
        finally:
            if body is not None:
                body.close()

    def get_sized(self, key: str, size: int) -> bytes | None:
        """The object's bytes, None when it is missing; WrongSize, with nothing read, when it is
        not `size` bytes long (a 5 GB PUT to a pack's URL is never read into memory)."""
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        if int(answer.get("ContentLength", -1)) != size:
            answer["Body"].close()
            raise WrongSize(key)
        data: bytes = answer["Body"].read()
        return data

    def exists(self, key: str) -> bool:
        return self._last_modified(key) is not None

    def _last_modified(self, key: str) -> float | None:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)["LastModified"].timestamp()
        except ClientError as error:
            if _is_missing(error):
                return None
            raise

    def age_seconds(self, key: str, now: float | None = None) -> float:
        """How long ago `key` was last written; 0 when it is missing."""
        stamp = self._last_modified(key)
        return 0.0 if stamp is None else (time.time() if now is None else now) - stamp

    def _refresh(self, key: str) -> bool:
        """Re-stamp LastModified (a copy onto itself); False when the key is gone."""
        try:
            self.s3.copy_object(Bucket=self.bucket, Key=key, MetadataDirective="REPLACE",
                                CopySource={"Bucket": self.bucket, "Key": key})
            return True
        except ClientError as error:
            if _is_missing(error):
                return False
            raise

    def delete(self, keys_: Iterable[str]) -> None:
        batch = [{"Key": k} for k in keys_]
        if self.stamps:  # a blob deleted is no longer known to be there
            self.stamps.forget([k[len(keys.BLOBS_PREFIX):] for k in (item["Key"] for item in batch)
                                if k.startswith(keys.BLOBS_PREFIX)])
        for start in range(0, len(batch), 1000):  # DeleteObjects takes at most 1,000 keys
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch[start:start + 1000]})

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Yield (key, last-modified unix time) under a prefix."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"].timestamp()

    def presign(self, key: str, expires: int = 300, **response_headers: str) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        params.update(response_headers)
        return self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def presign_put(self, key: str, sha256: str, expires: int) -> tuple[str, dict[str, str]]:
        """A URL that PUTs `key`, and the headers the client must send with it: the content's
        SHA-256 (base64, as S3's `x-amz-checksum-sha256` takes it) is signed into the URL, so
        an endpoint that checks it refuses other bytes (docs/DECISIONS.md#uploads)."""
        headers = _put_headers(sha256)
        params = {"Bucket": self.bucket, "Key": key, "ChecksumSHA256": headers["x-amz-checksum-sha256"],
                  "ContentType": headers["Content-Type"]}
        url = self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)
        return url, headers

    def presign_pack_put(self, key: str, expires: int) -> tuple[str, dict[str, str]]:
        """A URL that PUTs a pack to `key`, and the headers to send: no checksum, since no one
        knows the pack's hash before it is built; the API checks its bytes afterwards."""
        headers = {"Content-Type": "application/octet-stream"}
        params = {"Bucket": self.bucket, "Key": key, "ContentType": headers["Content-Type"]}
        return self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires), headers

    def presign_puts(self, items: list[tuple[str, str]], expires: int) -> list[tuple[str, dict[str, str]]]:
        """presign_put for each (key, sha256): botocore signs the first, and the rest are signed
        like it by presign.QuerySigner when that signer makes botocore's URL again exactly."""
        if not items:
            return []
        first = self.presign_put(*items[0], expires)
        credentials = getattr(getattr(self.s3, "_request_signer", None), "_credentials", None)
        secret = credentials.get_frozen_credentials().secret_key if credentials else None
        signer = QuerySigner.following(first[0], items[0][0], first[1], secret) if secret else None
        if signer is None:
            return [first, *(self.presign_put(key, sha256, expires) for key, sha256 in items[1:])]
        signed = [first]
        for key, sha256 in items[1:]:
            headers = _put_headers(sha256)
            signed.append((signer.sign(key, headers), headers))
        return signed

    def checks_signed_checksums(self) -> bool:
        """Whether the endpoint refuses bytes other than those a presigned PUT was signed for:
        sent with the signed `x-amz-checksum-sha256` header, and sent without it. S3 and R2 do
        both; moto's server neither, LocalStack only when it checks signatures (measured:
        docs/DECISIONS.md#uploads). Asked of the endpoint once per Store, with two PUTs that
        should fail; whatever they wrote is deleted."""
        with self._probe_lock:
            if self._checks_checksums is None:
                key = f"{keys.UPLOADS_PREFIX}checksum-probe-{uuid.uuid4().hex}"
                url, headers = self.presign_put(key, hashlib.sha256(b"signed").hexdigest(), 60)
                try:
                    self._checks_checksums = all(
                        _refused(url, b"other bytes", sent) for sent in
                        (headers, {k: v for k, v in headers.items() if not k.startswith("x-amz-")}))
                finally:
                    self.delete([key])
            return self._checks_checksums

    def copy_hashed(self, source: str, target: str) -> str | None:
        """Copy `source` to `target` inside the bucket and return the SHA-256 (hex) of the
        bytes `target` now holds, as the bucket computed it during the copy; read back and
        hashed here when the endpoint reports none. None when `source` is missing."""
        try:
            answer = self.s3.copy_object(Bucket=self.bucket, Key=target, ChecksumAlgorithm="SHA256",
                                         CopySource={"Bucket": self.bucket, "Key": source})
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        reported = answer.get("CopyObjectResult", {}).get("ChecksumSHA256")
        if reported and "-" not in reported:  # "-N": a multipart object's checksum of checksums
            return base64.b64decode(reported).hex()
        return self.sha256_of(target)

    def sha256_of(self, key: str) -> str | None:
        """The SHA-256 (hex) of an object's bytes, read in chunks; None when it is missing."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def copy(self, source: str, target: str) -> None:
        self.s3.copy_object(Bucket=self.bucket, Key=target,
                            CopySource={"Bucket": self.bucket, "Key": source})

    def copy_to_blob(self, source: str, sha256: str) -> None:
        """Copy an object whose bytes hash to `sha256` to that blob's key."""
        copied_at = time.time()
        self.copy(source, keys.blob(sha256))
        self._remember({sha256: copied_at})

    def put_json(self, key: str, document: Any) -> None:
        self.put_bytes(key, _json_body(document), "application/json")

    def put_json_once(self, key: str, document: Any) -> bool:
        """Create `key` only if absent (If-None-Match: *); False when it already existed."""
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=_json_body(document),
                               ContentType="application/json", IfNoneMatch="*")
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise

    def get_json(self, key: str) -> Any | None:
        body = self.get_bytes(key)
        return None if body is None else json.loads(body)

    # --- content-addressed blobs -------------------------------------------
    def get_blob(self, sha256: str) -> bytes | None:
        return self.get_bytes(keys.blob(sha256))

    def read_blob(self, sha256: str) -> bytes:
        """A blob that must exist (a deployed manifest names it); MissingBlob when it does not."""
        data = self.get_blob(sha256)
        if data is None:
            raise MissingBlob(sha256)
        return data

    def read_slice(self, sha256: str, offset: int, size: int) -> bytes:
        """`size` bytes at `offset` of a blob that must exist (a packed file, one ranged GET);
        MissingBlob when it does not."""
        if size == 0:
            if not self.exists(keys.blob(sha256)):
                raise MissingBlob(sha256)
            return b""
        try:
            data: bytes = self.s3.get_object(Bucket=self.bucket, Key=keys.blob(sha256),
                                             Range=f"bytes={offset}-{offset + size - 1}")["Body"].read()
        except ClientError as error:
            if _is_missing(error):
                raise MissingBlob(sha256) from None
            raise
        if len(data) != size:  # a pack shorter than its manifest says: never expected
            raise MissingBlob(sha256)
        return data

    def upload_blobs(self, files: dict[str, Path | bytes]) -> int:
        """Store every sha256 -> content (a file path or bytes) not yet in the bucket.

        Returns how many blobs were written; blobs already stored are skipped, so a
        redeploy of unchanged files writes nothing.
        """
        return self.put_blobs(files)[0]

    def put_blobs(self, files: dict[str, Path | bytes]) -> tuple[int, list[str]]:
        """upload_blobs, also naming the stored blobs it re-stamped: those were old enough
        for a concurrent sweep to race (see ensure_blobs); every other blob is either new
        or younger than `refresh_after`, which the sweep's grace period protects."""
        if not files:
            return 0, []
        stamps = self.blob_stamps(files)
        outcomes = self._each(list(files.items()), lambda item: self._put_blob(item, stamps.get(item[0])),
                              lambda item: not self._fresh(stamps.get(item[0])))
        restamped = [sha256 for sha256, outcome in zip(files, outcomes, strict=True) if outcome == _RESTAMPED]
        return outcomes.count(_WRITTEN), restamped

    def _put_blob(self, item: tuple[str, Path | bytes], stamp: float | None) -> str:
        sha256, content = item
        kept = self._keep_blob(sha256, stamp)
        if kept is not None:
            return kept
        # Missing, or swept by the garbage collector between our look and the copy: write it.
        written_at = time.time()
        self.put_bytes(keys.blob(sha256),
                       content if isinstance(content, bytes) else Path(content).read_bytes())
        self._remember({sha256: written_at})
        return _WRITTEN

    def put_pack(self, data: bytes, segments: dict[str, int]) -> str:
        """Store a pack whose every segment (file sha256 -> offset) the caller checked, as the
        blob of its own sha256, and record where its files are; returns that sha256."""
        sha256 = hashlib.sha256(data).hexdigest()
        written_at = time.time()
        self.put_bytes(keys.blob(sha256), data)
        self._remember({sha256: written_at})
        if self.packed:
            self.packed.record(sha256, segments)
        return sha256

    def keep_blobs(self, sha256s: Iterable[str]) -> tuple[list[str], list[str]]:
        """For blobs a new manifest will name without uploading them: (missing, re-stamped).
        Re-stamps those older than `refresh_after`, as `put_blobs` does, so the sweep's grace
        period protects them until the manifest is written (then check them with
        `missing_blobs(..., cached=False)`)."""
        unique = sorted(set(sha256s))
        stamps = self.blob_stamps(unique)
        outcomes = self._each(unique, lambda h: self._keep_blob(h, stamps.get(h)),
                              lambda h: h in stamps and not self._fresh(stamps[h]))
        missing = [h for h, outcome in zip(unique, outcomes, strict=True) if outcome is None]
        restamped = [h for h, outcome in zip(unique, outcomes, strict=True) if outcome == _RESTAMPED]
        return missing, restamped

    def keep_files(self, sha256s: Iterable[str], keep: bool = True
                   ) -> tuple[dict[str, tuple[str, int]], list[str], list[str]]:
        """Where these files' bytes are stored: (packed, missing, re-stamped). `packed` maps a
        file a stored pack holds to (pack, offset) (docs/DECISIONS.md#packs); any other file is
        its own blob, or `missing`. With `keep`, the blobs and packs found are kept as
        `keep_blobs` keeps them (re-stamped when old: check those once the manifest is
        written); without, only looked up."""
        unique = sorted(set(sha256s))
        located = self.packed.locate(unique) if self.packed else {}
        absent, restamped = self._find({p for p, _ in located.values()} | (set(unique) - set(located)), keep)
        lost = [h for h, (pack, _) in located.items() if pack in absent]  # swept: maybe a blob
        if lost:
            also_absent, also_restamped = self._find(set(lost), keep)
            absent, restamped = absent | also_absent, restamped + also_restamped
        packed = {h: where for h, where in located.items() if where[0] not in absent}
        return packed, [h for h in unique if h not in packed and h in absent], restamped

    def keep_packed(self, sha256s: Iterable[str]) -> dict[str, tuple[str, int]]:
        """Of these files, those a stored pack holds (sha256 -> (pack, offset)); their packs are
        kept as `keep_blobs` keeps blobs (check them once the manifest is written). Asks the
        bucket nothing about a file no pack is known to hold."""
        located = self.packed.locate(sorted(set(sha256s))) if self.packed else {}
        if not located:
            return {}
        missing, _ = self.keep_blobs(pack for pack, _ in located.values())
        return {h: where for h, where in located.items() if where[0] not in missing}

    def _find(self, sha256s: set[str], keep: bool) -> tuple[set[str], list[str]]:
        if keep:
            missing, restamped = self.keep_blobs(sha256s)
            return set(missing), restamped
        return set(self.missing_blobs(sha256s)), []

    def _keep_blob(self, sha256: str, stamp: float | None) -> str | None:
        """Given a blob's LastModified (None: not in the bucket), keep it: KEPT while younger
        than `refresh_after`, else RESTAMPED; None when it is not there to keep."""
        if stamp is None:
            return None
        if self._fresh(stamp):
            return _KEPT
        refreshed_at = time.time()
        if not self._refresh(keys.blob(sha256)):
            return None
        self._remember({sha256: refreshed_at})
        return _RESTAMPED

    def _fresh(self, stamp: float | None) -> bool:
        """A blob stamped then is safe from the sweep without a re-stamp (#gc-grace)."""
        return stamp is not None and time.time() - stamp <= self.refresh_after

    def _each(self, items: list[Any], work: Callable[[Any], Any], slow: Callable[[Any], bool]) -> list[Any]:
        """`work` of each item, in order; those `slow` says send a request run in parallel (a
        pool for a thousand items that need none costs more than the work)."""
        waiting = [i for i, item in enumerate(items) if slow(item)]
        done = dict(zip(waiting, self._map(lambda i: work(items[i]), waiting), strict=True))
        return [done[i] if i in done else work(item) for i, item in enumerate(items)]

    def put_manifest_of_stored(self, key: str, body: bytes, sha256s: Iterable[str]) -> bool:
        """Write the manifest `body` at `key` when every blob it names (`sha256s`) is stored
        already, none uploaded: old ones are re-stamped first and, once the manifest protects
        them, checked with the bucket itself, since a sweep may have taken one in between
        (#gc-grace). False, with nothing left at `key`, when a blob is missing."""
        missing, restamped = self.keep_blobs(sha256s)
        if missing:
            return False
        self.put_bytes(key, body, "application/json")
        if self.missing_blobs(restamped, cached=False):
            self.delete([key])
            return False
        return True

    def missing_blobs(self, sha256s: Iterable[str], cached: bool = True) -> list[str]:
        """The hashes among these whose blob is not in the bucket. `cached=False` asks the
        bucket itself: for a check that must see a sweep's delete (ensure_blobs)."""
        unique = sorted(set(sha256s))
        present = self.blob_stamps(unique, cached=cached)
        return [h for h in unique if h not in present]

    def ensure_blobs(self, sha256s: Iterable[str], contents: dict[str, Path | bytes]) -> list[str]:
        """Check these blobs are stored, asking the bucket; write again those that vanished (a
        sweep can race a publisher that reused an old blob). Returns the hashes still missing."""
        missing = self.missing_blobs(sha256s, cached=False)
        if missing and set(missing) <= set(contents):
            self.upload_blobs({h: contents[h] for h in missing})
            missing = self.missing_blobs(missing, cached=False)
        return missing

    def blob_stamps(self, sha256s: Iterable[str], cached: bool = True) -> dict[str, float]:
        """The LastModified time of each of these blobs the bucket holds; absent ones are left
        out. Stamps the cache knows and `refresh_after` has not outlived cost no request; the
        rest are looked up (`_look_up`) and remembered."""
        unique = sorted(set(sha256s))
        found: dict[str, float] = {}
        if cached and self.stamps and unique:
            found = {h: stamp for h, stamp in self.stamps.known(unique).items() if self._fresh(stamp)}
        asked = [h for h in unique if h not in found]
        looked = self._look_up(asked)
        self._remember(looked)
        if self.stamps and len(looked) < len(asked):  # a stamp kept before a sweep's delete
            self.stamps.forget([h for h in asked if h not in looked])
        return {**found, **looked}

    def _remember(self, stamps: dict[str, float]) -> None:
        if self.stamps and stamps:
            self.stamps.remember(stamps)

    def _look_up(self, unique: list[str]) -> dict[str, float]:
        """Ask the bucket for these blobs' stamps: a HEAD each for a few, else LIST pages in
        parallel, one walk per first hex digit (`_walk`)."""
        if len(unique) < LIST_BREAK_EVEN:
            return self._heads(unique)
        groups: dict[str, list[str]] = {}
        for sha256 in unique:
            groups.setdefault(sha256[0], []).append(sha256)
        return {h: stamp for part in self._map(self._walk, list(groups.values()))
                for h, stamp in part.items()}

    def _heads(self, unique: list[str], parallel: bool = True) -> dict[str, float]:
        def stamp(sha256: str) -> float | None:
            return self._last_modified(keys.blob(sha256))
        stamps = self._map(stamp, unique) if parallel else [stamp(h) for h in unique]
        return {h: stamp for h, stamp in zip(unique, stamps, strict=True) if stamp is not None}

    def _walk(self, sorted_hashes: list[str]) -> dict[str, float]:
        """Stamps of these blobs (sorted, one first hex digit) from LIST pages, each starting
        just before the first blob still unsettled; a page settles every blob up to its last
        key. Once a page settles fewer than LIST_BREAK_EVEN of them (a bucket far larger than
        the look-up), the rest get a HEAD each."""
        found: dict[str, float] = {}
        i = 0
        while i < len(sorted_hashes):
            if len(sorted_hashes) - i < LIST_BREAK_EVEN:
                return {**found, **self._heads(sorted_hashes[i:], parallel=False)}
            first = keys.blob(sorted_hashes[i])
            # StartAfter is exclusive; no key sorts between a blob's key less its last digit
            # and that blob's key except its siblings differing only there.
            page = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=first[:len(keys.BLOBS_PREFIX) + 1],
                                           StartAfter=first[:-1])
            listed = {item["Key"][len(keys.BLOBS_PREFIX):]: item["LastModified"].timestamp()
                      for item in page.get("Contents", [])}
            last = max(listed) if page.get("IsTruncated") and listed else None
            settled = i
            while i < len(sorted_hashes) and (last is None or sorted_hashes[i] <= last):
                if sorted_hashes[i] in listed:
                    found[sorted_hashes[i]] = listed[sorted_hashes[i]]
                i += 1
            if i - settled < LIST_BREAK_EVEN and i < len(sorted_hashes):
                return {**found, **self._heads(sorted_hashes[i:], parallel=False)}
        return found

    def download_files(self, targets: dict[Path, dict[str, Any]]) -> None:
        """Write each destination path with its manifest entry's bytes: a blob GET each, and
        each pack read once, whole, for all the files it holds (docs/DECISIONS.md#packs)."""
        packed: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
        single: list[tuple[Path, str]] = []
        for path, entry in targets.items():
            pack = entry.get("pack")
            if isinstance(pack, dict):
                packed.setdefault(pack["sha256"], []).append((path, entry))
            else:
                single.append((path, entry["sha256"]))

        def fetch(item: tuple[Path, str]) -> None:
            path, sha256 = item
            data = self.get_blob(sha256)
            if data is None:
                raise FileNotFoundError(f"blob {sha256} for {path} is missing from the bucket")
            _write(path, data)

        def unpack(item: tuple[str, list[tuple[Path, dict[str, Any]]]]) -> None:
            sha256, files = item
            data = self.get_blob(sha256)
            if data is None:
                raise FileNotFoundError(f"pack {sha256} for {files[0][0]} is missing from the bucket")
            for path, entry in files:
                start, size = int(entry["pack"]["offset"]), int(entry["size"])
                if start + size > len(data):
                    raise FileNotFoundError(f"pack {sha256} is shorter than {path} needs")
                _write(path, data[start:start + size])

        self._map(fetch, single)
        self._map(unpack, list(packed.items()))

    def _map(self, function: Callable[[_Item], _Result], items: Sequence[_Item]) -> list[_Result]:
        """`function` over `items` on `workers` threads, results in order. The first failure
        cancels the calls not yet started: when the bucket is down, each call spends boto3's
        whole retry budget, and a tree's thousand files would spend it a thousand times. A call
        that a worker takes up after a failure does not run either (cancelling the futures
        alone raced the workers: on a loaded machine one worker ran 98 of 100 failing calls
        before the caller woke up to cancel them). The failure raised is the first in order:
        calls start in order, so every call skipped comes after it."""
        failed = threading.Event()

        def guarded(item: _Item) -> _Result:
            if failed.is_set():
                raise CancelledError("an earlier call of the batch failed")
            try:
                return function(item)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(guarded, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
