"""The bucket: the only module that talks to S3.

Content-addressed: a blob's key is its sha256, so it is written once and never
changes; manifests are small JSON documents that name blobs.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from chalicelib import keys
from chalicelib.settings import Settings


def make_s3_client(settings: Settings, session: boto3.session.Session | None = None):
    """Build the boto3 S3 client once, at the edge.

    boto3 >= 1.36 adds CRC checksums by default, which R2 rejects on uploads:
    only compute them when an operation requires one (docs/DECISIONS.md#r2-compatibility).
    Presigned URLs are SigV4: without `signature_version` botocore presigns with SigV2 for
    us-east-1 (measured: `AWSAccessKeyId=...&Signature=...`), which signs no `x-amz-checksum-*`
    header, and R2 accepts only SigV4 (docs/DECISIONS.md#uploads).
    """
    config = Config(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=max(10, settings.upload_workers),
        s3={"addressing_style": "path"},
    )
    return (session or boto3).client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.aws_region,
        config=config,
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


class Store:
    def __init__(self, s3_client, bucket: str, workers: int = 16, refresh_after: float = 3600):
        self.s3 = s3_client
        self.bucket = bucket
        self.workers = workers
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
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        headers = {"Content-Type": "application/octet-stream", "x-amz-checksum-sha256": checksum}
        params = {"Bucket": self.bucket, "Key": key, "ChecksumSHA256": checksum,
                  "ContentType": headers["Content-Type"]}
        url = self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)
        return url, headers

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
        outcomes = self._map(self._put_blob, list(files.items()))
        restamped = [sha256 for sha256, outcome in zip(files, outcomes, strict=True) if outcome == _RESTAMPED]
        return outcomes.count(_WRITTEN), restamped

    def _put_blob(self, item: tuple[str, Path | bytes]) -> str:
        sha256, content = item
        kept = self._keep_blob(sha256)
        if kept is not None:
            return kept
        # Missing, or swept by the garbage collector between our HEAD and the copy: write it.
        self.put_bytes(keys.blob(sha256),
                       content if isinstance(content, bytes) else Path(content).read_bytes())
        return _WRITTEN

    def keep_blobs(self, sha256s: Iterable[str]) -> tuple[list[str], list[str]]:
        """For blobs a new manifest will name without uploading them: (missing, re-stamped).
        Re-stamps those older than `refresh_after`, as `put_blobs` does, so the sweep's grace
        period protects them until the manifest is written (then check them with
        `missing_blobs`)."""
        unique = sorted(set(sha256s))
        outcomes = self._map(self._keep_blob, unique)
        missing = [h for h, outcome in zip(unique, outcomes, strict=True) if outcome is None]
        restamped = [h for h, outcome in zip(unique, outcomes, strict=True) if outcome == _RESTAMPED]
        return missing, restamped

    def _keep_blob(self, sha256: str) -> str | None:
        key = keys.blob(sha256)
        stamp = self._last_modified(key)
        if stamp is None:
            return None
        if time.time() - stamp <= self.refresh_after:
            return _KEPT
        return _RESTAMPED if self._refresh(key) else None

    def missing_blobs(self, sha256s: Iterable[str]) -> list[str]:
        """The hashes among these whose blob is not in the bucket."""
        unique = sorted(set(sha256s))
        present = self._map(lambda h: self.exists(keys.blob(h)), unique)
        return [h for h, ok in zip(unique, present, strict=True) if not ok]

    def ensure_blobs(self, sha256s: Iterable[str], contents: dict[str, Path | bytes]) -> list[str]:
        """Check these blobs are stored; write again those that vanished (a sweep can race a
        publisher that reused an old blob). Returns the hashes still missing."""
        missing = self.missing_blobs(sha256s)
        if missing and set(missing) <= set(contents):
            self.upload_blobs({h: contents[h] for h in missing})
            missing = self.missing_blobs(missing)
        return missing

    def download_blobs(self, targets: dict[Path, str]) -> None:
        """Write each destination path with the blob of the given sha256."""
        def fetch(item: tuple[Path, str]) -> None:
            path, sha256 = item
            data = self.get_blob(sha256)
            if data is None:
                raise FileNotFoundError(f"blob {sha256} for {path} is missing from the bucket")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        self._map(fetch, list(targets.items()))

    def _map(self, function: Callable[[_Item], _Result], items: Sequence[_Item]) -> list[_Result]:
        """`function` over `items` on `workers` threads, results in order. The first failure
        cancels the calls not yet started: when the bucket is down, each call spends boto3's
        whole retry budget, and a tree's thousand files would spend it a thousand times."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(function, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
