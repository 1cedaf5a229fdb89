"""Fixed-window counters in Redis, shared by every API process (docs/DECISIONS.md#tokens).

A window starts at a key's first hit and ends when the key expires, so `Retry-After` is the
key's TTL. A fixed window lets a client make up to twice the limit across a window's edge;
for "deployments per minute" and "failed logins per minute" that is close enough, and it
costs one round trip.
"""
from __future__ import annotations

from typing import cast

import redis

# KEYS[1] = counter; ARGV[1] = window (seconds). Returns {count, seconds left}.
_HIT_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('TTL', KEYS[1])}
"""


class Limits:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._hit = client.register_script(_HIT_LUA)

    def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one event; returns (events in this window, seconds until it ends)."""
        count, ttl = cast("list[int]", self._hit(keys=[key], args=[window]))
        return int(count), max(1, int(ttl))

    def count(self, key: str) -> tuple[int, int]:
        """(events in the current window, seconds until it ends) without counting one."""
        pipe = self.redis.pipeline(transaction=False)   # two reads: no MULTI/EXEC needed
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = pipe.execute()
        return int(raw or 0), max(1, int(ttl))
