"""What the resolver answers: a Decision (status, headers, and which blob to send)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chalicelib.serving.caching import REVALIDATE

Headers = list[tuple[str, str]]
TEXT_PLAIN = "text/plain; charset=utf-8"

_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            416: "Range Not Satisfiable"}


@dataclass(frozen=True)
class BlobRef:
    """What body to send: the blob `blobs/<sha256>` (or a pack's `size` bytes at `offset`:
    docs/DECISIONS.md#packs), whole or an inclusive byte range of it."""
    sha256: str
    size: int                              # the whole blob's size
    range: tuple[int, int] | None = None   # (first, last), inclusive, as in Content-Range
    pack: str | None = None                # the pack holding the file's bytes, if any
    offset: int = 0                        # where in that pack they start

    @property
    def length(self) -> int:
        return self.size if self.range is None else self.range[1] - self.range[0] + 1


@dataclass
class Decision:
    """The response to send. `headers` include Content-Length (also on HEAD, RFC 9110 §9.3.2)."""
    status: int
    headers: Headers = field(default_factory=list)
    body: BlobRef | None = None        # fetch and send this; None on HEAD, 304, 416, redirects
    inline: bytes = b""                # a small generated body (plain 404, 400, 405, redirects)
    location: str | None = None        # set on redirects (also in headers)
    file: str | None = None            # the manifest key served, for logs and tests

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((value for key, value in self.headers if key.lower() == lower), None)


def plain(status: int, method: str, extra: Sequence[tuple[str, str]] = ()) -> Decision:
    """A generated text body ("404 Not Found"), with the rule headers that matched."""
    body = f"{status} {_REASONS.get(status, '')}\n".encode()
    headers = [("Content-Type", TEXT_PLAIN), ("Cache-Control", REVALIDATE)]
    headers = override(headers, extra)
    headers.append(("Content-Length", str(len(body))))
    return Decision(status, headers, inline=b"" if method == "HEAD" else body)


def override(headers: Headers, extra: Sequence[tuple[str, str]]) -> Headers:
    """Rule headers replace defaults of the same name (e.g. Cache-Control) and add the rest."""
    if not extra:
        return headers
    names = {name.lower() for name, _ in extra}
    return [h for h in headers if h[0].lower() not in names] + list(extra)


def redirect_note(location: str) -> bytes:
    """A redirect's body: a short note naming the new URI, which RFC 9110 §15.4 says a redirect
    ought to carry for clients that do not follow it (`location` is percent-encoded: ASCII).
    Without it, Chalice labelled the empty body `application/json`."""
    return f"Redirecting to {location}\n".encode()
