"""What build time hands to request time: the output manifest's shape and shared constants.

The producers (the output scan and the config compiler, at build time) and the consumer (the
resolver, at request time) both import this module, so neither imports the other.
"""
from __future__ import annotations

# Version of the source and output manifests' layout.
MANIFEST_VERSION = 1
# Version of the compiled site config inside an output manifest.
CONFIG_VERSION = 1
# Config files in the output that are never served (Netlify, Cloudflare Pages).
CONFIG_FILES = ("_redirects", "_headers")
# The statuses a redirect rule may use. Vercel: `permanent` true -> 308, false -> 307; default 308.
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
