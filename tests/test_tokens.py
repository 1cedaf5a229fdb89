"""Tokens against a real Redis: what the API stores, accepts and forgets."""
import time

import pytest
import redis

from chalicelib import keys
from chalicelib.state.tokens import Role, Tokens, same_secret, split


@pytest.fixture
def tokens(redis_url) -> Tokens:
    return Tokens(redis.Redis.from_url(redis_url))


def test_a_new_token_is_accepted_and_shows_its_role_and_scope(tokens):
    made, secret = tokens.create("ci", Role.DEPLOY, ["shop"])
    found = tokens.verify(secret)
    assert found == made
    assert (found.name, found.role, found.projects) == ("ci", Role.DEPLOY, ("shop",))
    assert secret.startswith(f"pcl_{made.id}_")


def test_only_a_hash_of_the_secret_is_stored(tokens, redis_url):
    made, secret = tokens.create("ci", Role.READ)
    stored = redis.Redis.from_url(redis_url).hgetall(keys.token(made.id))
    _, raw_secret = split(secret)
    assert all(raw_secret.encode() not in value for value in stored.values())
    assert "token" not in made.view() and raw_secret not in str(made.view())


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),   # one character of the secret
    lambda t: t.rsplit("_", 1)[0] + "_",                 # no secret
    lambda t: "pcl_aaaaaaaaaaaaaaaa_" + t.split("_", 2)[2],  # another id
    lambda t: t.replace("pcl_", ""),                     # not our shape
    lambda t: "",
])
def test_anything_but_the_exact_token_is_refused(tokens, tamper):
    _, secret = tokens.create("ci", Role.ADMIN)
    assert tokens.verify(tamper(secret)) is None


def test_a_revoked_token_is_refused_at_once_and_leaves_the_listing(tokens):
    kept, _ = tokens.create("kept", Role.READ)
    gone, secret = tokens.create("gone", Role.READ)
    assert [t.name for t in tokens.live()] == ["kept", "gone"]
    assert tokens.revoke(gone.id)
    assert tokens.verify(secret) is None
    assert [t.id for t in tokens.live()] == [kept.id]
    assert not tokens.revoke(gone.id) and not tokens.revoke("not-an-id")


def test_an_expired_token_is_refused_and_redis_forgets_it(tokens, redis_url):
    made, secret = tokens.create("short", Role.READ, expires_in_days=1)
    assert tokens.verify(secret) is not None
    assert tokens.verify(secret, at=time.time() + 86400 + 1) is None
    ttl = redis.Redis.from_url(redis_url).ttl(keys.token(made.id))
    assert 86000 < ttl <= 86402
    assert made.view()["expires_at"] is not None


def test_roles_include_the_ones_below():
    assert Role.ADMIN.allows(Role.DEPLOY) and Role.DEPLOY.allows(Role.READ)
    assert not Role.READ.allows(Role.DEPLOY) and not Role.DEPLOY.allows(Role.ADMIN)


def test_secrets_compare_equal_only_when_equal():
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abd") and not same_secret("abc", "abcd")
