"""The queue against a real Redis: claims are leased, expired leases come back.

Lease times are passed in (`now=`), never waited for.
"""
import redis

from chalicelib.state.queue import JobQueue

T0 = 1_900_000_000.0  # any instant: leases are judged only against the times passed in


def test_fifo_and_claim_moves_to_processing(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url), lease_seconds=30)
    for job in ("a", "b", "c"):
        queue.enqueue(job)
    assert queue.claim("r1") == "a"
    assert queue.depth() == (2, 1)
    assert queue.ack("a", "someone-else") is False
    assert queue.ack("a", "r1") is True
    assert queue.depth() == (2, 0)


def test_an_expired_lease_is_requeued_once(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url), lease_seconds=1)
    queue.enqueue("a")
    assert queue.claim("r1", now=T0) == "a"
    assert queue.expired(now=T0 + 0.9) == []
    assert queue.expired(now=T0 + 1.2) == ["a"]
    assert queue.requeue("a") is True
    assert queue.requeue("a") is False  # a second reaper does not queue it twice
    assert queue.depth() == (1, 0)
    assert queue.claim("r2") == "a"
    assert queue.ack("a", "r1") is False  # the runner presumed dead cannot drop r2's claim
    assert queue.depth() == (0, 1)


def test_heartbeat_extends_only_the_owners_lease(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url), lease_seconds=1)
    queue.enqueue("a")
    queue.claim("r1", now=T0)
    assert queue.heartbeat("a", "r2", now=T0 + 0.6) is False
    assert queue.heartbeat("a", "r1", now=T0 + 0.6) is True
    assert queue.expired(now=T0 + 1.2) == []  # renewed, so not expired after 1.2 s in total
    assert queue.expired(now=T0 + 1.7) == ["a"]


def test_wait_and_claim_returns_none_on_an_empty_queue(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url))
    assert queue.wait_and_claim("r1", timeout=0.3) is None


def test_a_duplicate_of_a_claimed_job_is_dropped_not_claimed(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url))
    queue.enqueue("a")
    queue.enqueue("a")
    queue.enqueue("b")
    assert queue.claim("r1") == "a"
    assert queue.claim("r2") == "b"  # the second "a" is skipped while "a" is in flight
    assert queue.claim("r3") is None


def test_a_deferred_job_waits_out_its_delay_and_only_its_owner_may_defer_it(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url), lease_seconds=60)
    queue.enqueue("a")
    queue.claim("r1", now=T0)
    assert queue.defer("a", "r2", until=T0 + 5) is False
    assert queue.defer("a", "r1", until=T0 + 5) is True
    assert queue.heartbeat("a", "r1") is False     # the lease is given up...
    assert queue.expired(now=T0 + 4) == []          # ...but nobody gets the job before `until`
    assert queue.expired(now=T0 + 6) == ["a"]
    assert queue.requeue("a") is True and queue.claim("r2") == "a"
