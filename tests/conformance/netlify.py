"""Netlify's `_redirects`, `_headers` and netlify.toml, case for case.

Each group below names the upstream file its facts are re-expressed from.
"""
from __future__ import annotations

from tests.conformance.harness import Case, Expect

# https://docs.netlify.com/routing/redirects/ (docs/routing/redirects.md in netlify/docs):
# a rule without a status is a 301; `200` rewrites.
DOCS = "netlify/docs: docs/routing/redirects.md"

CASES: list[Case] = [
    Case("netlify-docs-default-301", "netlify", DOCS, {"_redirects": "/old /new\n"},
         Expect(status=301, location="/new"), path="/old"),
    Case("netlify-docs-200-rewrite", "netlify", DOCS, {"_redirects": "/app/* /index.html 200\n"},
         Expect(status=200, file="index.html"), path="/app/settings"),
]
