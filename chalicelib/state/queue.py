"""The build queue: the only module that runs queue commands.

A job is a deployment id. Claiming moves it, in one Lua script, from the QUEUE
list into the PROCESSING sorted set scored by its lease expiry, so a runner
that dies leaves the job recoverable (rq's StartedJobRegistry, arq's in-progress
key). Heartbeats push the expiry forward; `reap` hands expired jobs back.
"""
from __future__ import annotations

import time
from typing import cast

import redis

from chalicelib import keys

# KEYS: queue, processing. ARGV: now, lease seconds, runner id, lease key prefix. A queued
# copy of a job that is already claimed (a duplicate delivery) is dropped, not claimed twice.
_CLAIM_LUA = """
local job = redis.call('RPOP', KEYS[1])
while job and redis.call('ZSCORE', KEYS[2], job) do
  job = redis.call('RPOP', KEYS[1])
end
if not job then return false end
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), job)
redis.call('SET', ARGV[4] .. job, ARGV[3])
return job
"""

# KEYS: processing, lease. ARGV: job, runner id, new expiry. Only the lease's owner may
# extend it.
_HEARTBEAT_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
return redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[3], ARGV[1]) + 1
"""

# KEYS: processing, queue, lease. ARGV: job. Hands a job back, atomically; never queued twice.
_REQUEUE_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
if redis.call('LPOS', KEYS[2], ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
"""

# KEYS: processing, lease. ARGV: job, runner id. Only the lease's owner may finish a job:
# a runner presumed dead must not remove the claim of the runner that took over.
_ACK_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""


# KEYS: processing, lease. ARGV: job, runner id, when it may be handed out again. The owner
# gives up its lease but leaves the job claimed until then; the reaper re-queues it after.
_DEFER_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""


def lease_expiry(now: float, lease_seconds: int) -> float:
    """When a lease taken or renewed at `now` runs out."""
    return now + lease_seconds


class JobQueue:
    def __init__(self, client: redis.Redis, lease_seconds: int = 60):
        self.redis = client
        self.lease_seconds = lease_seconds
        self._claim = client.register_script(_CLAIM_LUA)
        self._heartbeat = client.register_script(_HEARTBEAT_LUA)
        self._requeue = client.register_script(_REQUEUE_LUA)
        self._ack = client.register_script(_ACK_LUA)
        self._defer = client.register_script(_DEFER_LUA)

    def enqueue(self, deployment_id: str, pipe: redis.client.Pipeline | None = None) -> None:
        """Add a job; LPUSH + RPOP makes the list first-in, first-out."""
        (pipe if pipe is not None else self.redis).lpush(keys.QUEUE, deployment_id)

    def claim(self, runner_id: str, now: float | None = None) -> str | None:
        """Take the oldest job, leased to `runner_id` from `now` (default: the present)."""
        now = time.time() if now is None else now
        job = self._claim(keys=[keys.QUEUE, keys.PROCESSING],
                          args=[now, self.lease_seconds, runner_id, keys.LEASE_PREFIX])
        return job.decode() if job else None

    def wait_and_claim(self, runner_id: str, timeout: float, poll: float = 0.2) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            job = self.claim(runner_id)
            if job or time.monotonic() >= deadline:
                return job
            time.sleep(poll)

    def heartbeat(self, deployment_id: str, runner_id: str, now: float | None = None) -> bool:
        """Extend the lease from `now`; False when this runner no longer holds the job."""
        expiry = lease_expiry(time.time() if now is None else now, self.lease_seconds)
        return bool(self._heartbeat(keys=[keys.PROCESSING, keys.lease_owner(deployment_id)],
                                    args=[deployment_id, runner_id, expiry]))

    def ack(self, deployment_id: str, runner_id: str) -> bool:
        """The job is finished (whatever its outcome): forget it, if this runner holds it."""
        return bool(self._ack(keys=[keys.PROCESSING, keys.lease_owner(deployment_id)],
                              args=[deployment_id, runner_id]))

    def defer(self, deployment_id: str, runner_id: str, until: float) -> bool:
        """Give up this runner's lease but keep the job out of the queue until `until` (unix
        time), when the reaper hands it out again; False when this runner no longer holds it."""
        return bool(self._defer(keys=[keys.PROCESSING, keys.lease_owner(deployment_id)],
                                args=[deployment_id, runner_id, until]))

    def expired(self, now: float | None = None) -> list[str]:
        """Claimed jobs whose lease ran out before `now` (default: the present)."""
        now = time.time() if now is None else now
        jobs = cast("list[bytes]", self.redis.zrangebyscore(keys.PROCESSING, "-inf", now))
        return [j.decode() for j in jobs]

    def requeue(self, deployment_id: str) -> bool:
        """Hand a claimed job back to the queue; False when it was queued already."""
        return bool(self._requeue(keys=[keys.PROCESSING, keys.QUEUE,
                                        keys.lease_owner(deployment_id)], args=[deployment_id]))

    def remove(self, deployment_id: str) -> None:
        """Take a job out of the queue and processing set (cancel, delete)."""
        pipe = self.redis.pipeline()
        pipe.lrem(keys.QUEUE, 0, deployment_id)
        pipe.zrem(keys.PROCESSING, deployment_id)
        pipe.delete(keys.lease_owner(deployment_id))
        pipe.execute()

    def request_cancel(self, deployment_id: str) -> None:
        """Tell whichever runner builds this job to stop (it polls with its heartbeat)."""
        self.redis.set(keys.cancel_flag(deployment_id), 1, ex=24 * 3600)

    def cancel_requested(self, deployment_id: str) -> bool:
        """Whether a user asked to stop this job."""
        return bool(self.redis.exists(keys.cancel_flag(deployment_id)))

    def depth(self) -> tuple[int, int]:
        """(jobs waiting, jobs claimed)."""
        return self.redis.llen(keys.QUEUE), self.redis.zcard(keys.PROCESSING)
