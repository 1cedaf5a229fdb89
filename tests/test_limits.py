"""Fixed-window counters against a real Redis, as every API process shares them."""
import redis

from chalicelib.state.limits import Limits


def test_a_window_counts_hits_and_says_when_it_ends(redis_url):
    limits = Limits(redis.Redis.from_url(redis_url))
    assert limits.count("k") == (0, 1)
    assert [limits.hit("k", 60)[0] for _ in range(3)] == [1, 2, 3]
    count, retry_after = limits.count("k")
    assert count == 3 and 58 <= retry_after <= 60


def test_two_processes_share_one_count(redis_url):
    first, second = Limits(redis.Redis.from_url(redis_url)), Limits(redis.Redis.from_url(redis_url))
    first.hit("k", 60)
    assert second.hit("k", 60)[0] == 2


def test_the_window_ends(redis_url):
    client = redis.Redis.from_url(redis_url)
    limits = Limits(client)
    limits.hit("k", 60)
    client.expire("k", 0)   # the window's end, without waiting a minute
    assert limits.hit("k", 60)[0] == 1
