"""Deployment records and their one state machine.

A record is a Redis hash. `transition` is the only function that changes a
record's status; it runs as one Lua script so a check and its write cannot be
split by another process, and it refuses every move the table does not allow.
"""
from __future__ import annotations

import calendar
import json
import time
from enum import Enum
from typing import Any, cast

import redis

from chalicelib import keys
from chalicelib.state.projects import MOVE_ALIASES_LUA
from chalicelib.state.queue import PUSH_JOB_LUA


class State(str, Enum):
    UPLOADING = "uploading"
    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYED = "deployed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DELETED = "deleted"


# Allowed moves. UPLOADING is a git deployment's first state: its clone and source upload run
# outside the request (pipeline/sources.py). BUILDING -> QUEUED is the reaper handing an
# abandoned job back.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.UPLOADING: frozenset({State.QUEUED, State.FAILED, State.CANCELLED, State.DELETED}),
    State.QUEUED: frozenset({State.BUILDING, State.FAILED, State.CANCELLED, State.DELETED}),
    State.BUILDING: frozenset({State.DEPLOYED, State.FAILED, State.CANCELLED, State.QUEUED,
                               State.DELETED}),
    State.DEPLOYED: frozenset({State.DELETED}),
    State.FAILED: frozenset({State.DELETED}),
    State.CANCELLED: frozenset({State.DELETED}),
    State.DELETED: frozenset(),
}

TERMINAL = frozenset({State.DEPLOYED, State.FAILED, State.CANCELLED, State.DELETED})
# Still moving on its own: a log may grow, a cancel applies.
ACTIVE = frozenset(State) - TERMINAL

FIELDS = ("id", "status", "url", "repo_url", "ref", "commit", "framework", "node_version", "root_dir",
          "created_at", "updated_at", "error", "attempt", "warnings", "project", "branch", "target",
          "source")
# `source`: "git" (repo_url) or "upload" (POST /api/uploads); None for records older than it.
# An upload's deployment also holds `uploader`, the token id that made the upload.
# A project's deployments also hold `project_uid` (which incarnation of the name) and `seq`
# (creation order within the project), which move its aliases (state/projects.py).
# `warnings`: the site config's rules the deploy skipped (pipeline.siteconfig), a JSON list
# written with `deployed`. At most MAX_WARNINGS of WARNING_CHARS each, as `error` holds only the
# log's tail: the record is read on every GET, and the build log keeps them all.
MAX_WARNINGS = 50
WARNING_CHARS = 500


class IllegalTransition(Exception):
    def __init__(self, deployment_id: str, current: str | None, target: State):
        super().__init__(f"deployment {deployment_id}: cannot go from {current} to {target.value}")
        self.current = current


# KEYS[1] = record, KEYS[2] (optional) = a queue the record's id is pushed to with the move (its
# job); ARGV[1] = target status; ARGV[2] = space-separated allowed current
# statuses; ARGV[3] = the attempt the caller holds ("" for any); ARGV[4..] = field/value
# pairs to write with the new status. Moving to `building` starts a new attempt: the
# attempt number fences a runner whose job was handed to another runner meanwhile.
_TRANSITION_LUA = MOVE_ALIASES_LUA + PUSH_JOB_LUA + """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, false, 0} end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= attempt then return {0, current, attempt} end
for allowed in string.gmatch(ARGV[2], '%S+') do
  if allowed == current then
    if ARGV[1] == 'building' then
      attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
    end
    redis.call('HSET', KEYS[1], 'status', ARGV[1], unpack(ARGV, 4))
    if ARGV[1] == 'deployed' then move_aliases(KEYS[1]) end
    if KEYS[2] then push_job(KEYS[2], redis.call('HGET', KEYS[1], 'id')) end
    return {1, current, attempt}
  end
end
return {0, current, attempt}
"""


STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now(at: float | None = None) -> str:
    """A record timestamp (UTC, second resolution) for `at`, default the present."""
    return time.strftime(STAMP_FORMAT, time.gmtime(at))


def seconds_since(stamp: str | None, at: float) -> float:
    """How long before `at` a record timestamp lies; 0 when there is none."""
    return at - calendar.timegm(time.strptime(stamp, STAMP_FORMAT)) if stamp else 0.0


def sources_of(target: State) -> list[State]:
    return [state for state, targets in TRANSITIONS.items() if target in targets]


class Records:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._transition = client.register_script(_TRANSITION_LUA)

    def create(self, record: dict[str, Any], pipe: redis.client.Pipeline | None = None,
               status: State = State.QUEUED) -> None:
        """Write a new record in `status` (in `pipe` when given, so the job is enqueued atomically)."""
        stamp = now()
        values = {**record, "status": status.value, "created_at": stamp, "updated_at": stamp}
        target = pipe if pipe is not None else self.redis
        target.hset(keys.record(record["id"]), mapping={k: str(v) for k, v in values.items()
                                                         if v is not None})
        target.zadd(keys.DEPLOYMENTS_INDEX, {record["id"]: time.time()})

    def get(self, deployment_id: str) -> dict[str, str] | None:
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.record(deployment_id)))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    def status(self, deployment_id: str) -> State | None:
        value = cast("bytes | None", self.redis.hget(keys.record(deployment_id), "status"))
        return State(value.decode()) if value else None

    def list_ids(self, limit: int | None = 50, offset: int = 0) -> list[str]:
        """Ids newest first; all of them when limit is None."""
        end = -1 if limit is None else offset + limit - 1
        ids = cast("list[bytes]", self.redis.zrevrange(keys.DEPLOYMENTS_INDEX, offset, end))
        return [i.decode() for i in ids]

    def newest(self, limit: int | None = 50) -> list[dict[str, str]]:
        """The records themselves, newest first; an id whose record was purged meanwhile
        is skipped."""
        return [record for record in map(self.get, self.list_ids(limit)) if record]

    def set_fields(self, deployment_id: str, **fields: str) -> None:
        """Write informational fields (commit, framework); never the status."""
        assert "status" not in fields
        values: dict[Any, Any] = {**fields, "updated_at": now()}
        self.redis.hset(keys.record(deployment_id), mapping=values)

    def count(self, deployment_id: str, name: str) -> int:
        """Add one to the counter field `name` (never the status); returns its new value."""
        assert name != "status"
        return int(self.redis.hincrby(keys.record(deployment_id), name, 1))

    def transition(self, deployment_id: str, target: State, *, only_from: set[State] | None = None,
                   attempt: int | None = None, push_to: str | None = None,
                   **fields: str) -> tuple[State, int]:
        """Move a record to `target`, atomically; returns (the state it left, the attempt).
        With `push_to` (a queue's key), the record's id is pushed to that queue in the same step.

        Raises IllegalTransition when the current state does not allow it, is not in
        `only_from`, or the record has moved on to another attempt than `attempt`:
        that is how a job delivered twice, or a runner presumed dead, is refused.
        """
        allowed = [s for s in sources_of(target) if only_from is None or s in only_from]
        pairs: list[str] = []
        for name, value in {**fields, "updated_at": now()}.items():
            pairs += [name, str(value)]
        moved, current, held = self._transition(
            keys=[keys.record(deployment_id), *([push_to] if push_to else [])],
            args=[target.value, " ".join(s.value for s in allowed),
                  "" if attempt is None else str(attempt), *pairs])
        current = current.decode() if current else None
        if not moved:
            raise IllegalTransition(deployment_id, current, target)
        return State(current), int(held)

    def purge(self, deployment_id: str) -> None:
        """Forget a record entirely (cleanup, after its files are gone)."""
        pipe = self.redis.pipeline()
        pipe.delete(keys.record(deployment_id))
        pipe.zrem(keys.DEPLOYMENTS_INDEX, deployment_id)
        pipe.execute()


def warnings_field(warnings: list[str]) -> str:
    """The record's `warnings` value: the first MAX_WARNINGS, each cut to WARNING_CHARS, and
    a last item saying how many more the build log has."""
    kept = [warning[:WARNING_CHARS] for warning in warnings[:MAX_WARNINGS]]
    if len(warnings) > MAX_WARNINGS:
        kept.append(f"... and {len(warnings) - MAX_WARNINGS} more in the build log")
    return json.dumps(kept)


# A record as the API shows it (public_view).
PublicRecord = dict[str, "str | int | list[str] | None"]


def public_view(record: dict[str, str]) -> PublicRecord:
    """The record as the API shows it: every design field, None when unset; `warnings` a
    list (empty for a record written before it existed, or not deployed)."""
    view: PublicRecord = {name: record.get(name) or None for name in FIELDS if name != "root_dir"}
    view["attempt"] = int(record.get("attempt") or 0)
    view["warnings"] = json.loads(record.get("warnings") or "[]")
    return view
