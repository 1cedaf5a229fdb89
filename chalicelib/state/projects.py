"""Projects and their aliases: the only Redis code for them (docs/DECISIONS.md#aliases).

A project is a hash of settings plus pointers: `production` (a deployment id), one per branch
(the newest deployed deployment of it), and routes from host names to (project, branch). An
alias is only a pointer: moving it is one Lua script, so every request handler reads either the
old deployment or the new one, never a mix, and an older build finishing late never takes an
alias back from a newer one (each deployment carries its creation `seq` within the project).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from chalicelib import keys
from chalicelib.state.secrets import EnvBox

# How many past production deployments the history keeps (rollback walks it; retention keeps
# the newest KEEP_PRODUCTION_ROLLBACKS of them).
HISTORY_LENGTH = 100
PRODUCTION = ""   # the branch part of a route that means "the production deployment"

# A Lua function the record's state machine runs in the same script that moves a record to
# `deployed` (state/records.py), so a deployment is never live without its addresses having
# moved: the branch pointer and, for a production deployment while auto_promote is on, the
# production pointer, each only forward in `seq`. The project's keys are built from the record's
# `project` (one Redis, as the claim script does); `project_uid` tells a project deleted and
# made again under the same name from the one the deployment belonged to.
MOVE_ALIASES_LUA = """
local function move_aliases(record)
  local f = redis.call('HMGET', record, 'id', 'project', 'project_uid', 'seq', 'branch', 'target')
  if not f[2] then return end
  local project = '%(prefix)s' .. f[2]
  if redis.call('HGET', project, 'uid') ~= f[3] then return end
  local id, seq = f[1], tonumber(f[4])
  local current = redis.call('HGET', project .. ':branches', f[5])
  if (not current) or tonumber(string.match(current, '^%%d+')) < seq then
    redis.call('HSET', project .. ':branches', f[5], f[4] .. ' ' .. id)
  end
  if f[6] == 'production' and redis.call('HGET', project, 'auto_promote') == '1' and
      tonumber(redis.call('HGET', project, 'production_seq') or '0') < seq then
    redis.call('HSET', project, 'production', id, 'production_seq', f[4])
    redis.call('LREM', project .. ':history', 0, id)
    redis.call('LPUSH', project .. ':history', id)
    redis.call('LTRIM', project .. ':history', 0, %(history)d - 1)
  end
end
""" % {"prefix": keys.project(""), "history": HISTORY_LENGTH}

# KEYS: the name's route, project, index; ARGV: route value, name, creation time, field/value
# pairs. 0 when the name is taken (a project, or a route such as a domain).
_CREATE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
"""

# KEYS: project, history; ARGV: uid, id, seq, auto_promote ("1"/"0"), record in history ("1"/"0").
_PROMOTE_LUA = """
if redis.call('HGET', KEYS[1], 'uid') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'production', ARGV[2], 'production_seq', ARGV[3],
           'auto_promote', ARGV[4])
if ARGV[5] == '1' then
  redis.call('LREM', KEYS[2], 0, ARGV[2])
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
end
return 1
"""

# KEYS[1]: a route. Returns the deployment id it points at now, "" when it points at nothing
# yet (a branch not deployed, a project without production), false when there is no route. The project's keys
# are built inside the script from the route's value (one round trip; a single Redis).
_RESOLVE_LUA = """
local route = redis.call('GET', KEYS[1])
if not route then return false end
local tab = string.find(route, '\\t', 1, true)
local name = string.sub(route, 1, tab - 1)
local branch = string.sub(route, tab + 1)
local project = ARGV[1] .. name
if branch == '' then return redis.call('HGET', project, 'production') or '' end
local pointer = redis.call('HGET', project .. ':branches', branch)
if not pointer then return '' end
return string.sub(pointer, string.find(pointer, ' ', 1, true) + 1)
"""

# KEYS[1]: a route; ARGV[1]: the value expected. Deletes only a route that still says that.
_DROP_ROUTE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def route_value(name: str, branch: str) -> str:
    return f"{name}\t{branch}"


@dataclass(frozen=True)
class Pointer:
    seq: int
    deployment_id: str


class Projects:
    def __init__(self, client: redis.Redis, box: EnvBox):
        self.redis = client
        self.box = box
        self._promote = client.register_script(_PROMOTE_LUA)
        self._create = client.register_script(_CREATE_LUA)
        self._resolve = client.register_script(_RESOLVE_LUA)
        self._drop_route = client.register_script(_DROP_ROUTE_LUA)

    # --- the project itself -------------------------------------------------------------

    def create(self, name: str, fields: dict[str, str]) -> bool:
        """Write a new project and its production route; False when the name is taken (by a
        project, or by a route such as another project's branch alias or a domain)."""
        now = time.time()
        values = {**fields, "name": name, "uid": secrets.token_hex(8), "auto_promote": "1",
                  "seq": "0", "created_at": str(now), "updated_at": str(now)}
        pairs = [item for pair in values.items() for item in pair]
        # One script: the name is never taken without its project, whatever fails midway.
        return bool(self._create(keys=[keys.route(name), keys.project(name), keys.PROJECTS_INDEX],
                                 args=[route_value(name, PRODUCTION), name, now, *pairs]))

    def get(self, name: str) -> dict[str, str] | None:
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.project(name)))
        if not raw or b"uid" not in raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    def webhook_secret(self, name: str) -> str | None:
        """The project's webhook secret, opened (it is sealed like build env values)."""
        sealed = cast("bytes | None", self.redis.hget(keys.project(name), "webhook_secret"))
        return self.box.open(sealed.decode()).get("secret") if sealed else None

    def names(self) -> list[str]:
        """Every project name, oldest first."""
        return [n.decode() for n in cast("list[bytes]", self.redis.zrange(keys.PROJECTS_INDEX, 0, -1))]

    def all(self) -> list[dict[str, str]]:
        return [project for project in map(self.get, self.names()) if project]

    def update(self, name: str, fields: dict[str, str], removed: tuple[str, ...] = ()) -> None:
        pipe = self.redis.pipeline(transaction=True)
        values: dict[Any, Any] = {**fields, "updated_at": str(time.time())}
        pipe.hset(keys.project(name), mapping=values)
        if removed:
            pipe.hdel(keys.project(name), *removed)
        pipe.execute()

    def delete(self, name: str) -> list[str]:
        """Forget the project, its routes (aliases and domains stop answering at once) and its
        pointers; returns the ids of its deployments, for the caller to take down."""
        if self.get(name) is None:
            return []
        ids = self.deployment_ids(name)
        # Each route only while it still names this project (a label two branches share holds
        # the one routed last).
        routes = {name: PRODUCTION, **self.domains(name), **self._branch_labels(name)}
        for route, branch in routes.items():
            self._drop_route(keys=[keys.route(route)], args=[route_value(name, branch)])
        self.redis.delete(keys.project(name), keys.project_branches(name),
                          keys.production_history(name), keys.project_domains(name),
                          keys.project_deployments(name), keys.project_labels(name))
        self.redis.zrem(keys.PROJECTS_INDEX, name)
        return ids

    def _value_of(self, key: str) -> str | None:
        value = cast("bytes | None", self.redis.get(key))
        return value.decode() if value else None

    # --- deployments of a project ---------------------------------------------------------

    def next_seq(self, name: str) -> int:
        """The creation order of a new deployment of the project."""
        return int(self.redis.hincrby(keys.project(name), "seq", 1))

    def add_deployment(self, name: str, deployment_id: str, seq: int,
                       pipe: redis.client.Pipeline) -> None:
        pipe.zadd(keys.project_deployments(name), {deployment_id: seq})

    def deployment_ids(self, name: str, limit: int | None = None) -> list[str]:
        """The project's deployment ids, newest first."""
        end = -1 if limit is None else limit - 1
        raw = cast("list[bytes]", self.redis.zrevrange(keys.project_deployments(name), 0, end))
        return [i.decode() for i in raw]

    def forget_deployment(self, name: str, deployment_id: str) -> None:
        self.redis.zrem(keys.project_deployments(name), deployment_id)

    def point_production(self, name: str, uid: str, deployment_id: str, seq: int, *,
                         auto_promote: bool, remember: bool) -> bool:
        """Point production at a deployment (promote; rollback with remember=False)."""
        return bool(self._promote(
            keys=[keys.project(name), keys.production_history(name)],
            args=[uid, deployment_id, seq, "1" if auto_promote else "0", "1" if remember else "0",
                  HISTORY_LENGTH]))

    def history(self, name: str) -> list[str]:
        raw = cast("list[bytes]", self.redis.lrange(keys.production_history(name), 0, -1))
        return [i.decode() for i in raw]

    def addresses_of(self, name: str, deployment_id: str) -> list[str]:
        """What of project `name` (a deployment's `project`; "" for none) the deployment serves
        now: "<name> production", "<name> branch b"."""
        project = self.get(name) if name else None
        if project is None:
            return []
        serving = [f"{name} production"] if project.get("production") == deployment_id else []
        serving += [f"{name} branch {branch}" for branch, pointer in self.branches(name).items()
                    if pointer.deployment_id == deployment_id]
        return serving

    def protected(self, keep_production: int) -> set[str]:
        """Deployments retention must keep: every one an address points at (production,
        branches; custom domains point through those) and the newest `keep_production` past
        production deployments of each project, the rollback targets."""
        kept: set[str] = set()
        for name in self.names():
            project = self.get(name) or {}
            if project.get("production"):
                kept.add(project["production"])
            kept |= {pointer.deployment_id for pointer in self.branches(name).values()}
            kept |= set(self.history(name)[:keep_production])
        return kept

    # --- branches ---------------------------------------------------------------------------

    def branches(self, name: str) -> dict[str, Pointer]:
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.project_branches(name)))
        pointers = {}
        for branch, value in raw.items():
            seq, deployment_id = value.decode().split(" ", 1)
            pointers[branch.decode()] = Pointer(int(seq), deployment_id)
        return pointers

    def add_branch_route(self, name: str, branch: str, label: str) -> None:
        """`<name>-git-<slug>` answers for the branch from now on (nothing until it deploys).
        Two branches with one slug share the label: the newest to be routed has it."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys.route(label), route_value(name, branch))
        pipe.hset(keys.project_labels(name), label, branch)
        pipe.execute()

    def remove_branch(self, name: str, branch: str, label: str) -> bool:
        """The branch was deleted: its alias stops answering. False when it had none."""
        dropped = int(self._drop_route(keys=[keys.route(label)], args=[route_value(name, branch)]))
        removed = int(self.redis.hdel(keys.project_branches(name), branch))
        self.redis.hdel(keys.project_labels(name), label)
        return bool(dropped or removed)

    def _branch_labels(self, name: str) -> dict[str, str]:
        """label -> the branch routed there last."""
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.project_labels(name)))
        return {label.decode(): branch.decode() for label, branch in raw.items()}

    # --- custom domains -----------------------------------------------------------------------

    def add_domain(self, name: str, domain: str, branch: str) -> str | None:
        """Route `domain` to the project (branch "" = production). Returns the project that
        already holds it when that is another one (nothing changed), else None."""
        value = route_value(name, branch)
        if not self.redis.set(keys.route(domain), value, nx=True):
            holder = (self._value_of(keys.route(domain)) or "\t").split("\t", 1)[0]
            if holder != name:
                return holder
            self.redis.set(keys.route(domain), value)
        self.redis.hset(keys.project_domains(name), domain, branch)
        return None

    def remove_domain(self, name: str, domain: str) -> bool:
        branch = cast("bytes | None", self.redis.hget(keys.project_domains(name), domain))
        if branch is None:
            return False
        self._drop_route(keys=[keys.route(domain)], args=[route_value(name, branch.decode())])
        self.redis.hdel(keys.project_domains(name), domain)
        return True

    def domains(self, name: str) -> dict[str, str]:
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.project_domains(name)))
        return {domain.decode(): branch.decode() for domain, branch in raw.items()}

    # --- the request handler's side -----------------------------------------------------------

    def resolve(self, label_or_domain: str) -> str | None:
        """The deployment a site label or custom domain serves now: its id, "" when the address
        exists but serves nothing yet, None when there is no such address."""
        found = self._resolve(keys=[keys.route(label_or_domain)], args=[keys.project("")])
        return None if found is None else found.decode()
