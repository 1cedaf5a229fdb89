"""Serving one file of a site: content coding, ETag, 304, Range, and its headers."""
from __future__ import annotations

from chalicelib.schema import FileEntry, Variant
from chalicelib.serving.caching import REVALIDATE, cache_control
from chalicelib.serving.decision import BlobRef, Decision, Headers, override
from chalicelib.serving.http_rules import not_modified, parse_range, pick_encoding
from chalicelib.serving.request import Request
from chalicelib.storage import mediatypes

# RFC 9110 §15.4.5: a 304 carries only these (Date is the server's business), plus the
# Content-Type a 200 would have sent. §15.4.5 lets a 304 omit it, but API Gateway (and chalice
# local) then add `application/json` (aws/aws-sam-cli#1218), and a cache updates its stored
# headers from a 304 (RFC 9111 §4.3.4): the page would turn JSON.
NOT_MODIFIED_FIELDS = frozenset({"etag", "cache-control", "vary", "date", "content-location",
                                 "expires", "content-type"})

ByteRange = tuple[int, int] | str | None   # (first, last), "unsatisfiable", or the whole file


def serve_file(req: Request, key: str, entry: FileEntry, status: int, extra: Headers) -> Decision:
    """Answer with a file: 200 (or the rule's status), 206, 304 or 416."""
    byte_range = _requested_range(req, entry) if status == 200 else None
    encoding = None if byte_range is not None else pick_encoding(req.headers.get("accept-encoding"), entry)
    variant: Variant | FileEntry = entry["encodings"][encoding] if encoding else entry
    etag = _etag(variant["sha256"])   # one ETag per variant: each variant is its own blob
    headers = override(file_headers(req.path, key, entry, status, encoding, etag), extra)
    if status == 200 and not_modified(req.headers.get("if-none-match"), etag):
        return Decision(304, [h for h in headers if h[0].lower() in NOT_MODIFIED_FIELDS], file=key)
    if byte_range == "unsatisfiable":
        headers += [("Content-Range", f"bytes */{entry['size']}"), ("Content-Length", "0")]
        return Decision(416, headers, file=key)
    return _with_body(req, key, entry, variant, status, headers, byte_range)


def _with_body(req: Request, key: str, entry: FileEntry, variant: Variant | FileEntry,
               status: int, headers: Headers, byte_range: ByteRange) -> Decision:
    first_last = byte_range if isinstance(byte_range, tuple) else None
    pack = entry.get("pack") if variant is entry else None  # a precompressed variant never is
    body = BlobRef(variant["sha256"], variant["size"], first_last,
                   *((pack["sha256"], pack["offset"]) if pack else ()))
    if first_last is not None:
        status = 206
        headers.append(("Content-Range", f"bytes {first_last[0]}-{first_last[1]}/{entry['size']}"))
    headers.append(("Content-Length", str(body.length)))
    return Decision(status, headers, body=None if req.method == "HEAD" else body, file=key)


def _etag(sha256: str) -> str:
    return f'"{sha256[:32]}"'


def file_headers(request_path: str, key: str, entry: FileEntry, status: int,
                 encoding: str | None, etag: str) -> Headers:
    """The headers a file is sent with before rule headers override them."""
    media = entry.get("type", mediatypes.DEFAULT)
    policy = cache_control(request_path, key) if status == 200 else REVALIDATE
    headers = [("Content-Type", media), ("ETag", etag), ("Cache-Control", policy)]
    if status == 200:
        headers.append(("Accept-Ranges", "bytes"))
    if encoding:
        headers.append(("Content-Encoding", encoding))
    if entry.get("encodings") or mediatypes.is_compressible(media):
        headers.append(("Vary", "Accept-Encoding"))   # RFC 9110 §12.5.5
    return headers


def _requested_range(req: Request, entry: FileEntry) -> ByteRange:
    """Ranges are of the identity encoding; If-Range needs a strong match (RFC 9110 §13.1.5)."""
    header = req.headers.get("range")
    if not header:
        return None
    if_range = req.headers.get("if-range")
    if if_range is not None and if_range.strip() != _etag(entry["sha256"]):
        return None   # a stale validator, or a date: we have no Last-Modified to compare with
    return parse_range(header, entry["size"])
