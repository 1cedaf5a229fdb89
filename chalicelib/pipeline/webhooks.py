"""POST /api/webhooks/{forge}: a forge's delivery deploys the projects of its repository.

No API token: the delivery proves itself with the webhook secret of a project whose repository
it names (forges.verify). Which projects those are is read from the payload before anything else
of it is trusted; every other check of the payload comes after the signature, so a caller without
a secret learns nothing beyond "not JSON" or 401, and 401 says the same whether the repository is
unknown or the signature wrong.

Answers: 200 for a ping, a branch deletion, a repeated delivery and a delivery that deploys
nothing (`ignored` says why: 200, not 202, because nothing was accepted for later); 202 with the
deployments queued.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from chalicelib.context import Context
from chalicelib.errors import ApiError, NotFound
from chalicelib.pipeline import forges, projects
from chalicelib.pipeline.forges import Event


class BadSignature(ApiError):
    """No project of the repository the delivery names has a secret that verifies it.

    RFC 9110 §15.5.2 asks a 401 for a WWW-Authenticate challenge, but no registered scheme
    describes a signed body, and forges read only the status: we send none rather than a
    Bearer challenge that would mislead."""
    status, code = 401, "bad_signature"


def receive(ctx: Context, forge: str, headers: Mapping[str, str], raw_body: bytes) -> tuple[int, dict[str, Any]]:
    """(status, body) for one delivery; refusals are raised (404, 400, 401)."""
    if forge not in forges.FORGES:
        raise NotFound(f"no webhook receiver for {forge!r}; there are: {', '.join(forges.FORGES)}")
    headers = {name.lower(): value for name, value in headers.items()}
    payload = forges.load_payload(headers, raw_body)
    names = verified_projects(ctx, forge, headers, raw_body, forges.repo_urls(forge, payload))
    event = forges.parse(forge, headers, payload)
    if event.kind == "ping":
        return 200, {"ping": True, "projects": names}
    if event.kind == "ignore":
        return 200, {"ignored": event.reason, "projects": names}
    delivery = forges.delivery_id(forge, headers)
    if delivery is not None and not ctx.deliveries.claim(forge, delivery):
        return 200, {"ignored": f"delivery {delivery} was received before", "projects": names}
    try:
        return act(ctx, forge, event, names)
    except BaseException:
        # Whatever failed (a busy API process, a clone that timed out), a redelivery must retry.
        if delivery is not None:
            with contextlib.suppress(Exception):
                ctx.deliveries.release(forge, delivery)
        raise


def verified_projects(ctx: Context, forge: str, headers: Mapping[str, str], raw_body: bytes,
                      urls: tuple[str, ...]) -> list[str]:
    """The projects of the named repository whose webhook secret verifies the delivery, or a 401."""
    wanted = set(urls)
    # Every project is read (one HGETALL each): an instance has tens of projects, and comparing
    # normal forms here needs no index to keep in step when a project's repo_url changes.
    candidates = [project["name"] for project in ctx.projects.all()
                  if forges.normalize_repo_url(project.get("repo_url", "")) in wanted]
    names = [name for name in candidates
             if forges.verify(forge, headers, raw_body, ctx.projects.webhook_secret(name) or "")]
    if not names:
        raise BadSignature("no project of this repository has a webhook secret that verifies "
                           "this delivery")
    return names


def act(ctx: Context, forge: str, event: Event, names: list[str]) -> tuple[int, dict[str, Any]]:
    """Deploy or drop `event.branch` in each project."""
    assert event.branch is not None
    if event.kind == "delete_branch":
        dropped = {}
        for name in names:
            ctx.deliveries.forget_branch(name, event.branch)
            dropped[name] = projects.delete_branch(ctx, name, event.branch)
        return 200, {"deleted_branch": event.branch, "projects": dropped}
    created = []
    for name in names:
        deployment = deploy_head(ctx, forge, event, name)
        if deployment is not None:
            created.append(deployment)
    if not created:
        return 200, {"ignored": f"commit {event.commit} of {event.branch} is already deployed",
                     "projects": names}
    return 202, {"deployments": created}


def deploy_head(ctx: Context, forge: str, event: Event, name: str) -> dict[str, Any] | None:
    """Deploy the branch unless a webhook already deployed this commit of it (GitHub and Gitea
    send a push and a pull request event for one commit pushed to a pull request's branch)."""
    assert event.branch is not None and event.commit is not None
    if not ctx.deliveries.claim_head(name, event.branch, event.commit):
        return None
    try:
        return projects.deploy_branch(ctx, name, event.branch, commit=event.commit,
                                      trigger=f"{forge} {event.reason}")
    except BaseException:
        with contextlib.suppress(Exception):
            ctx.deliveries.release_head(name, event.branch, event.commit)
        raise
