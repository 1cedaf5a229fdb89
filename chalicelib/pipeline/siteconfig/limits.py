"""The caps every config source is held to, with the reason for each."""
from __future__ import annotations

# Vercel caps redirects, rewrites and headers at 2,048 each (vercel.json schema); we apply the
# same cap to each list, _redirects and _headers included.
MAX_RULES = 2048
# Cloudflare Pages refuses _redirects lines longer than 1,000 characters.
MAX_LINE = 1000
# The runner reads these files into memory outside the sandbox; 2,048 rules of 1,000
# characters fit in 2 MiB, so a bigger config file is a build trying to exhaust the runner.
MAX_FILE_BYTES = 4 * 1024 * 1024
