"""Which response headers a rule may set, and how their names and values must look."""
from __future__ import annotations

import re

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.schema import HEADER_NAME, RESERVED_HEADERS

# RFC 9110 §5.5 field value: visible ASCII, SP and HTAB (obs-text is obsolete). CR/LF would
# inject headers; other controls and non-ASCII make the server drop the response (measured:
# `X-Note: 日本` closed every connection to the page without an answer).
_FIELD_VALUE = re.compile(r"^[\t\x20-\x7e]*$")


def header_pair(name: str, value: object, where: str) -> list[str]:
    """`[name, value]` for the config, or SiteConfigError naming `where`."""
    if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
        raise SiteConfigError(f"{where}: the value of {name!r} must be a single-line string "
                              "of printable ASCII characters")
    if not HEADER_NAME.fullmatch(name):
        raise SiteConfigError(f"{where}: {name!r} is not a valid header name")
    if name.lower() in RESERVED_HEADERS:
        raise SiteConfigError(f"{where}: header {name!r} is set by the server and cannot be overridden")
    return [name, value.strip()]
