"""The subcommands that are one or two API calls each: deployments, projects, domains, hooks,
tokens, and the login state."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from percel_cli import config
from percel_cli.client import ApiError, Client
from percel_cli.deploy import OK, UsageError, parse_env
from percel_cli.output import Printer, table


def deployment_rows(printer: Printer, deployments: list[dict[str, Any]]) -> str:
    rows = [[d["id"], printer.status(d.get("status")), d.get("project") or "-",
             d.get("branch") or d.get("ref") or "-", (d.get("created_at") or "-"), d.get("url") or "-"]
            for d in deployments]
    if not rows:
        return "no deployments"
    return table(rows, ["ID", "STATUS", "PROJECT", "BRANCH", "CREATED", "URL"])


def fields(view: dict[str, Any]) -> str:
    """A record as `name: value` lines, in the API's order."""
    width = max((len(k) for k in view), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {_value(v)}" for k, v in view.items())


def _value(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- deployments ---------------------------------------------------------------------------

def ls(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    path = f"/api/projects/{args.project}/deployments" if args.project else "/api/deployments"
    answer = client.get(path, limit=args.limit)
    printer.result(answer, deployment_rows(printer, answer["deployments"]))
    return OK


def inspect(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    record = client.get(f"/api/deployments/{args.id}")
    printer.result(record, fields(record))
    return OK


def cancel(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    record = client.post(f"/api/deployments/{args.id}/cancel")
    printer.result(record, f"{record['id']} {printer.status(record.get('status'))}")
    return OK


def rm(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    confirm(args, f"delete deployment {args.id}? Its address answers 410 from now on.")
    record = client.delete(f"/api/deployments/{args.id}")
    printer.result(record, f"{record['id']} {printer.status(record.get('status'))}")
    return OK


def confirm(args: argparse.Namespace, question: str) -> None:
    """Ask on a terminal; without one, only --yes goes ahead."""
    if args.yes:
        return
    if not (sys.stdin and sys.stdin.isatty()):
        raise UsageError("not a terminal to ask on: add --yes to go ahead")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("nothing done")


# --- projects ------------------------------------------------------------------------------

PROJECT_SETTINGS = ("production_branch", "root_dir", "install_command", "build_command", "output_dir",
                    "node_version")


def projects(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    action = args.action or "ls"
    if action == "ls":
        answer = client.get("/api/projects")
        rows = [[p["name"], p.get("production_deployment") or "-", p.get("url") or "-",
                 p.get("repo_url") or "-"] for p in answer["projects"]]
        printer.result(answer, table(rows, ["NAME", "PRODUCTION", "URL", "REPOSITORY"]) if rows else "no projects")
        return OK
    name = need(args.name, "a project name")
    if action == "create":
        body: dict[str, Any] = {"name": name, "repo_url": need(args.repo, "--repo URL")}
        body.update({k: getattr(args, k) for k in PROJECT_SETTINGS if getattr(args, k) is not None})
        if args.env:
            env = parse_env(args.env)
            body["env"] = {"production": env, "preview": env}
        view = client.post("/api/projects", body)
        secret = view.get("webhook_secret")
        printer.result(view, f"created {view['name']}: {view.get('url')}"
                       + (f"\nwebhook secret (shown once): {secret}" if secret else ""))
    elif action == "update":
        changes: dict[str, Any] = {k: getattr(args, k) for k in PROJECT_SETTINGS if getattr(args, k) is not None}
        if args.repo:
            changes["repo_url"] = args.repo
        if args.env:
            env = parse_env(args.env)
            changes["env"] = {"production": env, "preview": env}
        if not changes:
            raise UsageError("nothing to change: give a setting, e.g. --build-command CMD")
        view = client.patch(f"/api/projects/{name}", changes)
        printer.result(view, f"updated {name}: {', '.join(sorted(changes))} (for its next deployment)")
    elif action == "inspect":
        view = client.get(f"/api/projects/{name}")
        printer.result(view, fields(view))
    else:
        confirm(args, f"delete project {name} and its addresses?")
        view = client.delete(f"/api/projects/{name}")
        printer.result(view, f"deleted {name}")
    return OK


def need(value: str | None, what: str) -> str:
    if not value:
        raise UsageError(f"this needs {what}")
    return value


def promote(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    view = client.post(f"/api/projects/{args.project}/promote", {"deployment_id": args.deployment_id})
    printer.result(view, f"{args.project}: production is {view.get('production_deployment')} ({view.get('url')})")
    return OK


def rollback(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    view = client.post(f"/api/projects/{args.project}/rollback")
    printer.result(view, f"{args.project}: production is back on {view.get('production_deployment')} "
                         f"({view.get('url')})")
    return OK


def domains(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    if args.action == "ls":
        view = client.get(f"/api/projects/{args.project}")
        found = view.get("domains") or {}
        rows = [[d, b or "production"] for d, b in sorted(found.items())]
        printer.result({"domains": found}, table(rows, ["DOMAIN", "BRANCH"]) if rows else "no domains")
        return OK
    domain = need(args.domain, "a domain")
    if args.action == "add":
        view = client.post(f"/api/projects/{args.project}/domains",
                           {"domain": domain, **({"branch": args.branch} if args.branch else {})})
        printer.result(view, f"{domain} now serves {args.project} ({args.branch or 'production'})")
    else:
        view = client.delete(f"/api/projects/{args.project}/domains/{domain}")
        printer.result(view, f"{domain} removed from {args.project}")
    return OK


def hooks(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    base = f"/api/projects/{args.project}/hooks"
    if args.action == "ls":
        answer = client.get(base)
        rows = [[h["id"], h.get("branch") or "-", h.get("created_at") or "-"] for h in answer["hooks"]]
        printer.result(answer, table(rows, ["ID", "BRANCH", "CREATED"]) if rows else "no deploy hooks")
    elif args.action == "add":
        hook = client.post(base, {"branch": need(args.branch, "--branch B")})
        url = client.api.rstrip("/") + hook["url"] if hook["url"].startswith("/") else hook["url"]
        hook = {**hook, "url": url}
        printer.result(hook, f"deploy hook {hook['id']} for {hook['branch']} (the URL is the secret, "
                             f"shown once):\n{url}")
    else:
        hook = client.delete(f"{base}/{need(args.hook_id, 'a hook id')}")
        printer.result(hook, f"deleted deploy hook {hook['id']}")
    return OK


def tokens(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    action = args.action or "ls"
    if action == "ls":
        answer = client.get("/api/tokens")
        rows = [[t["id"], t["name"], t["role"], _value(t.get("projects")), t.get("expires_at") or "never"]
                for t in answer["tokens"]]
        printer.result(answer, table(rows, ["ID", "NAME", "ROLE", "PROJECTS", "EXPIRES"]) if rows else "no tokens")
    elif action == "create":
        body: dict[str, Any] = {"name": need(args.name, "a token name"), "role": need(args.role, "--role R")}
        if args.project:
            body["projects"] = args.project
        if args.expires_in_days is not None:
            body["expires_in_days"] = args.expires_in_days
        made = client.post("/api/tokens", body)
        printer.result(made, f"token {made['id']} ({made['role']}), shown once:\n{made['token']}")
    else:
        revoked = client.delete(f"/api/tokens/{need(args.name, 'a token id')}")
        printer.result(revoked, f"revoked {revoked['id']} ({revoked.get('name')})")
    return OK


# --- login state ---------------------------------------------------------------------------

def login(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    token = args.token
    if not token:
        if not (sys.stdin and sys.stdin.isatty()):
            raise UsageError("give --token, or run it on a terminal to be asked")
        import getpass
        token = getpass.getpass("token: ").strip()
    checked = Client(args.api, token)
    check(checked)
    path = config.save(args.api, token)
    printer.result({"api": args.api.rstrip("/"), "config": str(path)}, f"logged in to {args.api}; saved in {path}")
    return OK


def logout(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    removed = config.forget()
    printer.result({"removed": removed}, f"removed {config.config_path()}" if removed else "not logged in")
    return OK


def whoami(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    health = check(client)
    creds = config.load()
    view = {"api": client.api, "health": health.get("status"), "authenticated": True, "source": creds.source}
    printer.result(view, f"{client.api}: {health.get('status')}; the token works (from {creds.source})")
    return OK


def check(client: Client) -> dict[str, Any]:
    """The API answers and takes the token: GET /api/health, then one cheap authenticated GET."""
    health: dict[str, Any] = client.get("/api/health")
    try:
        client.get("/api/deployments", limit=1)
    except ApiError as exc:
        if exc.status == 401:
            raise ApiError("the API refused the token", 401, "unauthorized") from None
        raise
    return health
