"""Deploy hooks and what the webhook receiver remembers: the only Redis code for either.

A deploy hook is a secret URL that deploys one branch of a project (Vercel's deploy hooks:
https://vercel.com/docs/deploy-hooks). Like an API token (state/tokens.py) only the SHA-256 of
its secret is kept, and the secret is shown once. A hook is looked up by that digest: the secret
has 256 random bits, so learning anything about a digest through timing would not bring an
attacker closer to a secret that hashes to it.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from chalicelib import ids, keys
from chalicelib.state.records import now as stamp
from chalicelib.state.tokens import digest

# 32 random bytes, as for API tokens: a fast hash is enough at rest.
SECRET_BYTES = 32
# A delivery id is remembered this long: forges redeliver within hours (GitLab retries for up to
# a day), and a person clicks "Redeliver" soon after a failure.
DELIVERY_SECONDS = 86_400
# A branch head a webhook deployed is remembered this long, so the push and the pull request
# event that GitHub and Gitea send for one commit build it once.
HEAD_SECONDS = 3_600

# KEYS[1]: the branch's remembered head; ARGV: commit, seconds. 1 when the commit is new (and
# now remembered), 0 when it is the one remembered: one round trip, so two events racing for
# one commit cannot both see it new.
_CLAIM_HEAD_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
# KEYS[1]: a remembered head; ARGV[1]: the commit. Forgets it only while it is still that commit.
_RELEASE_HEAD_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Hook:
    """A deploy hook as stored and listed: never its secret."""
    id: str
    project: str
    # The project incarnation it was made for: a project deleted and made again under the same
    # name has a new uid, and its predecessor's hooks deploy nothing.
    project_uid: str
    branch: str
    created_at: float

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "project": self.project, "branch": self.branch,
                "created_at": stamp(self.created_at)}


class DeployHooks:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def create(self, project: str, project_uid: str, branch: str) -> tuple[Hook, str]:
        """A new hook and its secret (returned once, never stored)."""
        hook = Hook(ids.new_id(), project, project_uid, branch, time.time())
        secret = secrets.token_urlsafe(SECRET_BYTES)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.deploy_hook(hook.id), mapping={
            "project": project, "project_uid": project_uid, "branch": branch,
            "created_at": str(hook.created_at), "sha256": digest(secret)})
        pipe.set(keys.deploy_hook_secret(digest(secret)), hook.id)
        pipe.zadd(keys.project_hooks(project), {hook.id: hook.created_at})
        pipe.execute()
        return hook, secret

    def get(self, hook_id: str) -> Hook | None:
        if not ids.is_valid_id(hook_id):
            return None
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.deploy_hook(hook_id)))
        if not raw:
            return None
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        return Hook(hook_id, fields["project"], fields["project_uid"], fields["branch"],
                    float(fields["created_at"]))

    def find(self, secret: str) -> Hook | None:
        """The hook whose secret this is, or None."""
        found = cast("bytes | None", self.redis.get(keys.deploy_hook_secret(digest(secret))))
        return self.get(found.decode()) if found else None

    def of_project(self, project: str) -> list[Hook]:
        """The project's hooks, oldest first."""
        raw = cast("list[bytes]", self.redis.zrange(keys.project_hooks(project), 0, -1))
        return [hook for hook in map(self.get, (i.decode() for i in raw)) if hook]

    def delete(self, hook: Hook) -> None:
        """Revoke: the hook's URL deploys nothing from the next request on."""
        sha = cast("bytes | None", self.redis.hget(keys.deploy_hook(hook.id), "sha256"))
        pipe = self.redis.pipeline(transaction=True)
        if sha:
            pipe.delete(keys.deploy_hook_secret(sha.decode()))
        pipe.delete(keys.deploy_hook(hook.id))
        pipe.zrem(keys.project_hooks(hook.project), hook.id)
        pipe.execute()


class Deliveries:
    """What the webhook receiver remembers: deliveries already acted on, and each branch's head
    that a webhook deployed last."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._claim_head = client.register_script(_CLAIM_HEAD_LUA)
        self._release_head = client.register_script(_RELEASE_HEAD_LUA)

    def claim(self, forge: str, delivery_id: str) -> bool:
        """True the first time a delivery is seen (within DELIVERY_SECONDS), else False."""
        return bool(self.redis.set(keys.webhook_delivery(forge, delivery_id), 1, nx=True,
                                   ex=DELIVERY_SECONDS))

    def release(self, forge: str, delivery_id: str) -> None:
        """Forget a delivery whose work failed, so that its redelivery is acted on."""
        self.redis.delete(keys.webhook_delivery(forge, delivery_id))

    def claim_head(self, project: str, branch: str, commit: str) -> bool:
        """True when `commit` is not the head a webhook last deployed for the branch (and now is)."""
        return bool(self._claim_head(keys=[keys.webhook_head(project, branch)], args=[commit, HEAD_SECONDS]))

    def release_head(self, project: str, branch: str, commit: str) -> None:
        self._release_head(keys=[keys.webhook_head(project, branch)], args=[commit])

    def forget_branch(self, project: str, branch: str) -> None:
        """The branch was deleted: pushing the same commit to it again deploys it again."""
        self.redis.delete(keys.webhook_head(project, branch))
