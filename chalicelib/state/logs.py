"""Live build logs: one capped Redis stream per deployment, archived to the bucket at the end."""
from __future__ import annotations

import re
from typing import cast

import redis

from chalicelib import keys

# Cap per build: enough for a noisy npm install, small enough for Redis memory.
MAX_LINES = 10_000
# A finished build's stream is kept this long for live readers; the archive stays.
KEEP_SECONDS = 24 * 3600
# One line longer than this is cut (minified output can print megabyte lines).
MAX_LINE_CHARS = 4_000
# A cursor is a stream entry id, `<ms>-<seq>` or `<ms>`, each part a 64-bit unsigned number
# (https://redis.io/docs/latest/develop/data-types/streams/#entry-ids); Redis refuses any
# other with an error that must not read as "Redis is down".
_CURSOR = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


def valid_cursor(cursor: str) -> bool:
    """Whether `cursor` is a stream entry id Redis accepts."""
    found = _CURSOR.fullmatch(cursor)
    return found is not None and all(int(part) < 2 ** 64 for part in found.groups("0"))


class BuildLog:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def append(self, deployment_id: str, line: str) -> None:
        self.redis.xadd(keys.build_log(deployment_id), {"l": line[:MAX_LINE_CHARS]},
                        maxlen=MAX_LINES, approximate=True)

    def read(self, deployment_id: str, cursor: str | None = None,
             count: int = 1000) -> tuple[list[str], str | None]:
        """Lines after `cursor` (exclusive) and the cursor to pass next time."""
        start = f"({cursor}" if cursor else "-"
        entries = cast("list[tuple[bytes, dict[bytes, bytes]]]",
                       self.redis.xrange(keys.build_log(deployment_id), min=start, count=count))
        lines = [fields[b"l"].decode("utf-8", "replace") for _, fields in entries]
        next_cursor = entries[-1][0].decode() if entries else cursor
        return lines, next_cursor

    def all_lines(self, deployment_id: str) -> list[str]:
        lines, cursor = self.read(deployment_id)
        while True:
            more, cursor_next = self.read(deployment_id, cursor)
            if not more:
                return lines
            lines += more
            cursor = cursor_next

    def finish(self, deployment_id: str) -> None:
        self.redis.expire(keys.build_log(deployment_id), KEEP_SECONDS)
