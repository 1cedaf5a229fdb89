"""The queue against a real Redis: claims are leased, expired leases come back."""
import time

import redis

from chalicelib.queue import JobQueue


def test_fifo_and_claim_moves_to_processing(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url), lease_seconds=30)
    for job in ("a", "b", "c"):
        queue.enqueue(job)
    assert queue.claim("r1") == "a"
    assert queue.depth() == (2, 1)
    queue.ack("a")
    assert queue.depth() == (2, 0)


def test_an_expired_lease_is_requeued_once(redis_url):
    queue = JobQueue(redis.Redis.from_url(redis_url), lease_seconds=1)
    queue.enqueue("a")
    assert queue.claim("r1") == "a"
    assert queue.expired() == []
    time.sleep(1.2)
    assert queue.expired() == ["a"]
    assert queue.requeue("a") is True
    assert queue.requeue("a") is False  # a second reaper finds nothing to move
    assert queue.claim("r2") == "a"


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
