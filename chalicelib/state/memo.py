"""Which deployment a build's inputs produced (docs/DECISIONS.md#memoized-builds).

A key is the digest of everything a build reads (build_runner/memo.py); its value is the id of
a deployment built from exactly those inputs. Written when that deployment is deployed, read by
the next job before it builds; it expires after MEMO_SECONDS.
"""
from __future__ import annotations

from typing import cast

import redis

from chalicelib import keys


class BuildMemo:
    def __init__(self, client: redis.Redis, seconds: int):
        self.redis = client
        self.seconds = seconds

    def get(self, inputs: str) -> str | None:
        found = cast("bytes | None", self.redis.get(keys.build_memo(inputs)))
        return found.decode() if found else None

    def put(self, inputs: str, deployment_id: str) -> None:
        if self.seconds > 0:
            self.redis.set(keys.build_memo(inputs), deployment_id, ex=self.seconds)
