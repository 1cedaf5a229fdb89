"""`chalice local` with the Nagle fix.

chalice local stalls ~40 ms per keep-alive request because small writes wait
for an ACK (Nagle's algorithm): 22 req/s at one connection, ~2,000 req/s with
TCP_NODELAY (measured here, DESIGN.md). BaseHTTPRequestHandler sets TCP_NODELAY
when `disable_nagle_algorithm` is true.
"""
from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

local.ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.argv = ["chalice", "local", "--no-autoreload", *sys.argv[1:]]
    sys.exit(main())
