"""The caps every config source is held to, with the reason for each.

A cap reached in `_redirects`, `_headers` or netlify.toml skips the rules past it with a
warning, as Cloudflare Pages does; only MAX_FILE_BYTES fails the build.
"""
from __future__ import annotations

# Vercel caps redirects, rewrites and headers at 2,048 each (vercel.json schema); we apply the
# same cap to each list, and to `_redirects`/`_headers`/netlify.toml in the Netlify dialect
# (Netlify documents no cap; netlify/build packages/redirect-parser/tests/merge.bench.ts reads
# a 45,000-rule file).
MAX_RULES = 2048
# Cloudflare Pages skips `_redirects` and `_headers` lines longer than 2,000 characters
# (cloudflare/workers-sdk packages/workers-shared/utils/configuration/constants.ts,
# MAX_LINE_LENGTH); percel skips them in both dialects: no real rule is that long.
MAX_LINE = 2000
# Cloudflare Pages' `_redirects` caps (same constants.ts): 2,000 static rules, counted until the
# first dynamic one (a `*` or `:placeholder`), and 100 dynamic rules, every later rule counting
# as dynamic; and 100 `_headers` blocks.
CLOUDFLARE_STATIC_REDIRECTS = 2000
CLOUDFLARE_DYNAMIC_REDIRECTS = 100
CLOUDFLARE_HEADER_RULES = 100
# The runner reads these files into memory outside the sandbox; 2,048 rules of 2,000
# characters fit in 4 MiB, so a bigger config file is a build trying to exhaust the runner.
MAX_FILE_BYTES = 4 * 1024 * 1024
