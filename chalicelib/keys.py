"""Every Redis key and bucket key percel uses, with its lifetime.

No other module spells a key; they call these functions.
"""
from __future__ import annotations

import hashlib

PREFIX = "percel"

# --- Redis ------------------------------------------------------------------

# Hash: one deployment record. Lives until the deployment is purged by cleanup.
def record(deployment_id: str) -> str:
    return f"{PREFIX}:dep:{deployment_id}"


# Sorted set: every deployment id scored by creation time; for listing and retention.
DEPLOYMENTS_INDEX = f"{PREFIX}:deps"

# List: ids of deployments waiting for a runner. An id leaves it when a runner claims it.
QUEUE = f"{PREFIX}:queue"

# Sorted set: ids claimed by a runner, scored by the lease's expiry (unix seconds).
# An id leaves it when its build ends or the reaper moves it back to QUEUE.
PROCESSING = f"{PREFIX}:processing"


# String: which runner holds a claimed job's lease; lives while the job is in PROCESSING.
# (The claim script builds it from LEASE_PREFIX: the job is only known inside the script.)
LEASE_PREFIX = f"{PREFIX}:lease:"


def lease_owner(deployment_id: str) -> str:
    return LEASE_PREFIX + deployment_id


# The source queue (same shapes and lifetimes as the three above): deployments recorded
# `uploading` whose clone and source upload wait for (list), or are held by (sorted set scored
# by lease expiry; string naming the holder), a source worker (pipeline/sources.py).
SOURCE_QUEUE = f"{PREFIX}:sources:queue"
SOURCE_PROCESSING = f"{PREFIX}:sources:processing"
SOURCE_LEASE_PREFIX = f"{PREFIX}:sources:lease:"


# Stream: live build log lines. Capped in length; expires a while after the build ends.
def build_log(deployment_id: str) -> str:
    return f"{PREFIX}:log:{deployment_id}"


# String: set when a user cancels a build; the runner polls it. Expires after a day.
def cancel_flag(deployment_id: str) -> str:
    return f"{PREFIX}:cancel:{deployment_id}"


# String: a forge's webhook delivery already acted on (SET NX); expires after a day
# (state/hooks.py DELIVERY_SECONDS), or is deleted when acting on it failed. An id that is not
# a short plain one (forges send UUIDs) is hashed, so a sender cannot grow or shape the key.
def webhook_delivery(forge: str, delivery_id: str) -> str:
    plain = len(delivery_id) <= 64 and delivery_id.replace("-", "").isalnum() and delivery_id.isascii()
    shown = delivery_id if plain else "sha256-" + hashlib.sha256(delivery_id.encode()).hexdigest()
    return f"{PREFIX}:webhook:delivery:{forge}:{shown}"


# String: the commit a webhook last deployed for a project's branch; expires after an hour
# (state/hooks.py HEAD_SECONDS) and is deleted with the branch.
def webhook_head(project: str, branch: str) -> str:
    return f"{PREFIX}:webhook:head:{project}:{branch}"


# Hash: one deploy hook (project, its uid, branch, created_at, the SHA-256 of its secret).
# Lives until it is revoked.
def deploy_hook(hook_id: str) -> str:
    return f"{PREFIX}:hook:{hook_id}"


# String: a deploy hook's id by the SHA-256 of its secret; lives and dies with the hook.
def deploy_hook_secret(sha256: str) -> str:
    return f"{PREFIX}:hook:secret:{sha256}"


# Sorted set: a project's deploy hook ids scored by creation time, for listing; an id leaves it
# when the hook is revoked.
def project_hooks(name: str) -> str:
    return f"{PREFIX}:project:{name}:hooks"


# Counter: deployments a deploy hook started in the current window; expires with the window.
def hook_rate(hook_id: str) -> str:
    return f"{PREFIX}:rate:hook:{hook_id}"


# Hash: one API token (name, role, projects, the SHA-256 of its secret, expiry). Lives until it
# is revoked, or until its expiry when it has one (EXPIREAT). docs/DECISIONS.md#tokens
def token(token_id: str) -> str:
    return f"{PREFIX}:token:{token_id}"


# Sorted set: every token id scored by creation time, for listing. An id leaves it on revocation;
# an expired token's id is removed by the next listing.
TOKENS_INDEX = f"{PREFIX}:tokens"


# Counter: deployments a token created in the current window; expires with the window.
def deploy_rate(token_id: str) -> str:
    return f"{PREFIX}:rate:deploy:{token_id}"


# Counter: failed authentications from one client address in the current window; expires with it.
def auth_failures(address: str) -> str:
    return f"{PREFIX}:rate:authfail:{address}"


# Hash: one project (settings, sealed env and webhook secret, `production` pointer,
# `auto_promote`, a creation `uid` and a `seq` counter). Lives until the project is deleted.
def project(name: str) -> str:
    return f"{PREFIX}:project:{name}"


# Sorted set: every project name scored by creation time, for listing.
PROJECTS_INDEX = f"{PREFIX}:projects"


# Sorted set: a project's deployment ids scored by their `seq` (creation order within the
# project). Lives with the project.
def project_deployments(name: str) -> str:
    return f"{PREFIX}:project:{name}:deps"


# Hash: branch -> "<seq> <deployment id>", the newest deployed deployment of each branch.
def project_branches(name: str) -> str:
    return f"{PREFIX}:project:{name}:branches"


# List: the deployments that served production, newest first (rollback targets). Capped.
def production_history(name: str) -> str:
    return f"{PREFIX}:project:{name}:history"


# Hash: custom domain -> branch ("" for production) of one project.
def project_domains(name: str) -> str:
    return f"{PREFIX}:project:{name}:domains"


# Hash: branch alias label -> branch, so deleting the project finds every route it owns.
def project_labels(name: str) -> str:
    return f"{PREFIX}:project:{name}:labels"


# String: "<project>\t<branch>" ("" branch: production) for a site label under ROOT_DOMAIN
# (`<name>`, `<name>-git-<slug>`) or a custom domain (it has dots; a label never does). Set
# with the project, its branch deployments and its domains; removed with them.
def route(label_or_domain: str) -> str:
    return f"{PREFIX}:route:{label_or_domain}"


# String: one upload's file list and owning token as JSON (POST /api/uploads). Expires after
# UPLOAD_SECONDS; a deployment made from it copies the list into its source manifest.
def upload(upload_id: str) -> str:
    return f"{PREFIX}:upload:{upload_id}"


# String: the deployment whose build had these inputs (a digest: build_runner/memo.py), so a
# deployment with the same inputs reuses its output. Expires after MEMO_SECONDS.
def build_memo(inputs: str) -> str:
    return f"{PREFIX}:memo:{inputs}"


# String: a blob's LastModified (unix time) as a request to the bucket saw it or set it; expires
# when the Store would no longer trust it (docs/DECISIONS.md#blob-stamps).
def blob_stamp(sha256: str) -> str:
    return f"{PREFIX}:blobstamp:{sha256}"


# String: "<pack sha256>:<offset>", where a verified pack holds this file's bytes
# (state/packindex.py; docs/DECISIONS.md#packs). Expires after PACK_INDEX_SECONDS; losing it only
# means the file is uploaded again, since a pack is checked to exist before it is used.
def packed_file(sha256: str) -> str:
    return f"{PREFIX}:packed:{sha256}"

# String: the deployment whose source manifest holds the clone of this repository URL, ref and
# commit (a digest of the three), so a deploy of a commit already cloned copies that manifest
# instead of cloning again. Expires after MEMO_SECONDS; worthless once that manifest is gone.
def source_memo(repo_url: str, ref: str, commit: str) -> str:
    digest = hashlib.sha256("\0".join((repo_url, ref, commit)).encode()).hexdigest()
    return f"{PREFIX}:source-memo:{digest}"


# --- Bucket -----------------------------------------------------------------

# File contents by sha256; written once, never changed.
BLOBS_PREFIX = "blobs/"


def blob(sha256: str) -> str:
    return f"{BLOBS_PREFIX}{sha256}"


# The source tree's manifest, written by the upload service.
def source_manifest(deployment_id: str) -> str:
    return f"sources/{deployment_id}.json"


# Where a client PUTs a blob of an upload (its presigned URL names exactly this key): never
# trusted until verified. With the server's verified copy beside it (`checked_blob`), deleted
# once the blob is promoted to blobs/, else swept by cleanup UPLOAD_SECONDS + GC_GRACE_SECONDS
# after it was written (docs/DECISIONS.md#uploads).
UPLOADS_PREFIX = "uploads/"


def staged_blob(upload_id: str, sha256: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/{sha256}"


# The API's own copy of a staged blob, made to have the bucket hash it: no client holds a URL
# for this key, so what was hashed is what gets promoted.
def checked_blob(upload_id: str, sha256: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/checked/{sha256}"


# Where a client PUTs the `number`th pack of an upload (docs/DECISIONS.md#packs): small files
# one after the other. Read and checked by the API, which writes `blobs/<sha256 of the pack>`
# and deletes this; else swept like a staged blob.
def staged_pack(upload_id: str, number: int) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/pack-{number}"


# The output manifest; its existence is what makes a deployment servable.
def deployment_manifest(deployment_id: str) -> str:
    return f"deployments/{deployment_id}.json"


# Archived build log, written when a build ends.
def archived_log(deployment_id: str) -> str:
    return f"logs/{deployment_id}.txt"


# Build caches (dependency tarballs), keyed by what they depend on.
def build_cache(cache_key: str) -> str:
    return f"cache/{cache_key}"
