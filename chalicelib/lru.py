"""A size-bounded LRU cache shared by the request handler and the precompressor."""
from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any


class LRU:
    """A small thread-safe LRU bounded by the total size of what it holds.

    For values that never change once made (manifests, blobs, compressed variants).
    """

    def __init__(self, max_bytes: int, max_item_share: float = 1 / 8):
        self.max_bytes = max_bytes
        # One huge item must not flush the cache: larger ones are not kept.
        self.max_item = max_bytes * max_item_share
        self.used = 0
        self.items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.lock = Lock()

    def get(self, key: str) -> Any | None:
        # No lock on the hot path: OrderedDict's get and move_to_end are each atomic under
        # the GIL, and a lock that a preempted thread holds stalls every other thread
        # (chalice local runs one thread per connection). Only writers take the lock.
        hit = self.items.get(key)
        if hit is None:
            return None
        try:
            self.items.move_to_end(key)
        except KeyError:   # evicted by a writer meanwhile: still a valid value to serve
            pass
        return hit[0]

    def drop(self, key: str) -> None:
        with self.lock:
            hit = self.items.pop(key, None)
            if hit is not None:
                self.used -= hit[1]

    def put(self, key: str, value: Any, size: int) -> None:
        if size > self.max_item:
            return
        with self.lock:
            if key in self.items:
                return
            self.items[key] = (value, size)
            self.used += size
            while self.used > self.max_bytes:
                _, (_, dropped) = self.items.popitem(last=False)
                self.used -= dropped
