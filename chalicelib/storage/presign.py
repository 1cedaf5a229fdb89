"""Presigned PUT URLs in bulk: SigV4 query-string signing written out, for uploads that need a
URL per blob (docs/DECISIONS.md#uploads).

botocore's generate_presigned_url takes 0.2 to 1 ms a URL (its event hooks, endpoint rules and
header handling; measured: 1,000 URLs in 0.18 s on a quiet machine, 1.1 s under a profiler), a
large part of answering POST /api/uploads for a 1,000-file folder. The signature itself is a
few HMACs (the algorithm: docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
`QuerySigner.following` learns the URL's shape from one URL botocore made and is used only if
it makes that very URL again, byte for byte: any difference (another endpoint style, another
botocore) sends every URL back to botocore.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def _uri_encode(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


@dataclass(frozen=True)
class QuerySigner:
    origin: str          # scheme://host[:port]
    prefix: str          # the path before the key, e.g. "/bucket/"
    host: str
    query: tuple[tuple[str, str], ...]   # the unsigned X-Amz-* parameters, in order
    scope: str           # date/region/s3/aws4_request
    amz_date: str
    key: bytes           # the derived signing key

    @classmethod
    def following(cls, url: str, object_key: str, headers: dict[str, str],
                  secret_key: str) -> QuerySigner | None:
        """A signer for URLs like `url` (a presigned PUT of `object_key` with `headers`), or
        None when signing here does not give exactly `url`."""
        parts = urlsplit(url)
        encoded_key = _uri_encode(object_key, safe="-_.~/")
        if not parts.path.endswith(encoded_key):
            return None
        query = tuple((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                      if k != "X-Amz-Signature")
        fields = dict(query)
        if fields.get("X-Amz-Algorithm") != ALGORITHM or "X-Amz-Credential" not in fields:
            return None
        scope = fields["X-Amz-Credential"].split("/", 1)[1]
        date, region, service, _ = scope.split("/")
        signing = hmac.new(f"AWS4{secret_key}".encode(), date.encode(), hashlib.sha256).digest()
        for part in (region, service, "aws4_request"):
            signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
        signer = cls(f"{parts.scheme}://{parts.netloc}", parts.path[:-len(encoded_key)],
                     parts.netloc, query, scope, fields["X-Amz-Date"], signing)
        return signer if signer.sign(object_key, headers) == url else None

    def sign(self, object_key: str, headers: dict[str, str]) -> str:
        path = self.prefix + _uri_encode(object_key, safe="-_.~/")
        signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
        signed["host"] = self.host
        names = sorted(signed)
        query = [(k, v) for k, v in self.query if k != "X-Amz-SignedHeaders"]
        query.append(("X-Amz-SignedHeaders", ";".join(names)))
        canonical_query = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query))
        canonical = "\n".join(["PUT", path, canonical_query,
                               "".join(f"{name}:{signed[name]}\n" for name in names),
                               ";".join(names), "UNSIGNED-PAYLOAD"])
        to_sign = "\n".join([ALGORITHM, self.amz_date, self.scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self.key, to_sign.encode(), hashlib.sha256).hexdigest()
        in_order = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in
                            [*(q for q in self.query if q[0] != "X-Amz-SignedHeaders"),
                             ("X-Amz-SignedHeaders", ";".join(names)),
                             ("X-Amz-Signature", signature)])
        return f"{self.origin}{path}?{in_order}"
