"""The queue against a real Redis: claims are leased, expired leases come back."""
import time

import redis

from chalicelib.state.queue import JobQueue


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
    assert queue.claim("r1") == "a"
    assert queue.expired() == []
    time.sleep(1.2)
    assert queue.expired() == ["a"]
    assert queue.requeue("a") is True
    assert queue.requeue("a") is False  # a second reaper does not queue it twice
    assert queue.depth() == (1, 0)
    assert queue.claim("r2") == "a"
    assert queue.ack("a", "r1") is False  # the runner presumed dead cannot drop r2's claim
    assert queue.depth() == (0, 1)


def test_heartbeat_extends_only_the_owners_lease(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url), lease_seconds=1)
    queue.enqueue("a")
    queue.claim("r1")
    assert queue.heartbeat("a", "r2") is False
    time.sleep(0.6)
    assert queue.heartbeat("a", "r1") is True
    time.sleep(0.6)
    assert queue.expired() == []  # renewed, so not expired after 1.2 s in total


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
