"""Deploy hooks: a secret URL that deploys the head of one branch of a project, for a CMS or a
cron job that holds no API token (as Vercel's deploy hooks: https://vercel.com/docs/deploy-hooks).

The hook's secret is its URL's last segment, shown once; only its SHA-256 is kept
(state/hooks.py). Each hook may start HOOK_DEPLOYS_PER_MINUTE deployments per minute.
"""
from __future__ import annotations

from typing import Any

from chalicelib import keys
from chalicelib.context import Context
from chalicelib.errors import BadRequest, Conflict, NotFound, TooManyRequests
from chalicelib.pipeline import projects
from chalicelib.pipeline.validation import check_ref
from chalicelib.state.hooks import Hook

# Enough for one hook per branch a team deploys from outside; each is a standing secret.
MAX_HOOKS_PER_PROJECT = 20
# The URL path a hook is called at; the secret follows.
PATH = "/api/hooks/"
WINDOW_SECONDS = 60


def create_hook(ctx: Context, name: str, body: Any) -> dict[str, Any]:
    """201's body: the hook and its URL, which holds the secret (the only time it is shown)."""
    if not isinstance(body, dict) or set(body) != {"branch"}:
        raise BadRequest('the body must be {"branch": ...}', field="branch")
    branch = _branch(body["branch"])
    project = _project(ctx, name)
    if len(_current(ctx, project)) >= MAX_HOOKS_PER_PROJECT:
        raise Conflict(f"project {name} has {MAX_HOOKS_PER_PROJECT} deploy hooks; delete one first")
    hook, secret = ctx.hooks.create(name, project["uid"], branch)
    return {**hook.view(), "url": PATH + secret}


def list_hooks(ctx: Context, name: str) -> list[dict[str, Any]]:
    """The project's hooks, oldest first, without their secrets."""
    project = _project(ctx, name)
    return [hook.view() for hook in _current(ctx, project)]


def delete_hook(ctx: Context, name: str, hook_id: str) -> dict[str, Any]:
    """Revoke a hook: its URL answers 404 from the next request on."""
    project = _project(ctx, name)
    hook = ctx.hooks.get(hook_id)
    if hook is None or not _belongs(hook, project):
        raise NotFound(f"project {name} has no deploy hook {hook_id!r}")
    ctx.hooks.delete(hook)
    return {**hook.view(), "deleted": True}


def trigger(ctx: Context, secret: str) -> dict[str, Any]:
    """POST /api/hooks/{secret}: 202's body, the new deployment of the hook's branch."""
    hook = ctx.hooks.find(secret)
    project = ctx.projects.get(hook.project) if hook else None
    if hook is None or project is None or not _belongs(hook, project):
        raise NotFound("no such deploy hook")
    count, retry_after = ctx.limits.hit(keys.hook_rate(hook.id), WINDOW_SECONDS)
    limit = ctx.settings.hook_deploys_per_minute
    if count > limit:
        raise TooManyRequests(f"at most {limit} deployments per minute per deploy hook",
                              retry_after=retry_after)
    return {**projects.deploy_branch(ctx, hook.project, hook.branch, trigger=f"hook {hook.id}"),
            "hook": hook.id}


def _branch(value: Any) -> str:
    try:
        branch = check_ref(value)
    except BadRequest:
        branch = None
    if branch is None:
        raise BadRequest("branch must be a branch name", field="branch")
    return branch


def _project(ctx: Context, name: str) -> dict[str, str]:
    project = ctx.projects.get(name) if projects.PROJECT_NAME.match(name or "") else None
    if project is None:
        raise NotFound(f"no project {name!r}")
    return project


def _belongs(hook: Hook, project: dict[str, str]) -> bool:
    """A hook deploys only the project it was made for, not a later one of the same name."""
    return hook.project == project.get("name") and hook.project_uid == project.get("uid")


def _current(ctx: Context, project: dict[str, str]) -> list[Hook]:
    """The project's hooks; those left by a deleted project of the same name are revoked here."""
    hooks = ctx.hooks.of_project(project["name"])
    for stale in (hook for hook in hooks if not _belongs(hook, project)):
        ctx.hooks.delete(stale)
    return [hook for hook in hooks if _belongs(hook, project)]
