"""Which deployment a build's inputs produced, and which one holds a commit's source
(docs/DECISIONS.md#memoized-builds).

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


class SourceMemo:
    """Which deployment's source manifest holds the clone of a repository URL, ref and commit
    (docs/DECISIONS.md#memoized-builds): set once a source worker uploaded that clone, read by the
    next deployment of the same three before it clones. Expires after `seconds`."""

    def __init__(self, client: redis.Redis, seconds: int):
        self.redis = client
        self.seconds = seconds

    def get(self, repo_url: str, ref: str, commit: str) -> str | None:
        found = cast("bytes | None", self.redis.get(keys.source_memo(repo_url, ref, commit)))
        return found.decode() if found else None

    def put(self, repo_url: str, ref: str, commit: str, deployment_id: str) -> None:
        if self.seconds > 0:
            self.redis.set(keys.source_memo(repo_url, ref, commit), deployment_id, ex=self.seconds)
