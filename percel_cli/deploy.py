"""`percel deploy` and `percel logs`: start a deployment, then follow its build log to the end."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from percel_cli import files as local_files
from percel_cli.client import ApiError, Client
from percel_cli.output import Printer, count, human_bytes
from percel_cli.upload import upload

# How often the build log is polled while the build runs; each poll is one cheap GET.
POLL_SECONDS = 0.5
# While following, an unreachable API or a 5xx is tried again this many times in a row, a second
# apart, before the command gives up: a restarted API process should not end a followed build.
FOLLOW_RETRIES = 5
# The states after which a deployment never changes again (chalicelib/state/records.py).
FINAL = frozenset({"deployed", "failed", "cancelled", "deleted"})
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A combination of arguments that cannot work: one line, exit code 2."""


def run_deploy(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    body, path, accepted = deploy_request(client, args, printer)
    if accepted is None:
        accepted = client.post(path, body)
    deployment_id = accepted["id"]
    status = str(accepted.get("status") or "queued")
    accepted_line = f"{printer.paint(status, 'dim', printer.err)} {deployment_id}  {accepted.get('url')}"
    if args.no_wait:
        printer.note(accepted_line)
        printer.result(accepted, accepted.get("url"))
        return OK
    return follow(client, deployment_id, printer, show_url=True, first=accepted_line)


def deploy_request(client: Client, args: argparse.Namespace, printer: Printer
                   ) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """The body and route of the POST that starts the deployment, uploading the folder first when
    one is deployed; and the deployment itself when the upload already made it (a folder whose
    files the bucket all has deploys in that one request)."""
    check_combination(args)
    force = {"force": True} if args.force else {}
    if args.project:
        path = f"/api/projects/{args.project}/deployments"
        if args.git or args.ref:
            return {**({"ref": args.ref} if args.ref else {}), **force}, path, None
        upload_id, _ = upload_folder(client, args, printer)
        body: dict[str, Any] = {"upload_id": upload_id, "target": "production" if args.prod else "preview"}
        if args.branch:
            body["branch"] = args.branch
        return {**body, **({"prebuilt": True} if args.prebuilt else {}), **force}, path, None
    if args.repo:
        return {"repo_url": args.repo, **({"ref": args.ref} if args.ref else {}), **build_options(args),
                **force}, "/api/deployments", None
    options = {**build_options(args), **({"prebuilt": True} if args.prebuilt else {}), **force}
    upload_id, accepted = upload_folder(client, args, printer, deploy=options)
    return {"upload_id": upload_id, **options}, "/api/deployments", accepted


def check_combination(args: argparse.Namespace) -> None:
    options = build_options(args)
    if args.repo and (args.dir or args.prebuilt):
        raise UsageError("--repo deploys a repository: give no folder and no --prebuilt")
    if args.project and args.repo:
        raise UsageError("a project deploys its own repository: drop --repo (or drop --project)")
    if args.project and options:
        raise UsageError(f"a project's build settings are its own ({', '.join(options)}): change them with "
                         "`percel projects update NAME`, or deploy without --project")
    if args.ref and not (args.repo or args.project):
        raise UsageError("--ref needs --repo or --project")
    if args.git and not args.project:
        raise UsageError("--git deploys a project's repository: it needs --project")
    if args.prod and not args.project:
        raise UsageError("--prod needs --project")
    if args.prod and (args.git or args.ref):
        raise UsageError("a git deploy's target follows its branch: drop --prod")
    if args.prebuilt and (args.build_command or args.install_command):
        raise UsageError("--prebuilt deploys a folder as it is: no --build-command nor --install-command")
    if args.branch and (not args.project or args.git or args.ref or args.prod):
        raise UsageError("--branch names a folder's preview branch for --project: not with --git, "
                         "--ref or --prod")


def build_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {name: getattr(args, name) for name in
               ("build_command", "install_command", "output_dir", "root_dir", "node_version")
               if getattr(args, name) is not None}
    if args.env:
        options["env"] = parse_env(args.env)
    return options


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env takes NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


def upload_folder(client: Client, args: argparse.Namespace, printer: Printer,
                  deploy: dict[str, Any] | None = None) -> tuple[str, dict[str, Any] | None]:
    """The upload's id, and with `deploy` (build options) the deployment the API made of it at
    once, when the bucket had every file."""
    root = Path(args.dir or ".")
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder")
    walk = local_files.collect(root)
    for note in walk.skipped:
        printer.note(f"skipped {note}")
    if not walk.files:
        raise UsageError(f"nothing to deploy in {root}: every file is ignored (or it is empty)")
    hashed = local_files.hashed(walk.files, cache=local_files.HashCache(root))
    printer.note(f"{root.resolve()}: {count(len(hashed), 'file')}, {human_bytes(sum(f.size for f in hashed))}")
    result = upload(client, hashed, printer.err, deploy)
    printer.note(result.summary())
    return result.id, result.deployment


def follow(client: Client, deployment_id: str, printer: Printer, show_url: bool, first: str = "") -> int:
    """Print `first`, the build log as it comes (stderr), then the outcome; Ctrl-C detaches, from
    the moment `first` is out (a user who sees it may press Ctrl-C at once)."""
    try:
        if first:
            printer.note(first)
        print_log(client, deployment_id, printer.note, until_done=True)
        record = wait_final(client, deployment_id)
    except KeyboardInterrupt:
        printer.note(f"\ndetached; the build goes on: percel logs -f {deployment_id}")
        return INTERRUPTED
    return outcome(record, printer, show_url)


def print_log(client: Client, deployment_id: str, emit: Callable[[str], None], until_done: bool) -> None:
    cursor = None
    while True:
        page = patient_get(client, f"/api/deployments/{deployment_id}/logs", cursor=cursor)
        for line in page.get("lines") or []:
            emit(line)
        cursor = page.get("cursor") or cursor
        if page.get("done") or (not until_done and not page.get("lines")):
            return
        if not page.get("lines"):
            time.sleep(POLL_SECONDS)


def wait_final(client: Client, deployment_id: str) -> dict[str, Any]:
    while True:
        record: dict[str, Any] = patient_get(client, f"/api/deployments/{deployment_id}")
        if record.get("status") in FINAL:
            return record
        time.sleep(POLL_SECONDS)


def patient_get(client: Client, path: str, **query: Any) -> Any:
    for attempt in range(FOLLOW_RETRIES + 1):
        try:
            return client.get(path, **query)
        except ApiError as exc:
            if attempt == FOLLOW_RETRIES or (exc.status is not None and exc.status < 500):
                raise
            time.sleep(1)


def outcome(record: dict[str, Any], printer: Printer, show_url: bool) -> int:
    status = record.get("status")
    if status == "deployed":
        if not printer.as_json:
            printer.note(f"{printer.paint('deployed', 'green', printer.err)} {record.get('id')}")
        printer.result(record, record.get("url") if show_url else "")
        return OK
    if not printer.as_json:
        printer.error(f"deployment {record.get('id')} {status}: {record.get('error') or 'no reason given'}")
    printer.result(record, "")
    return FAILED


def run_logs(client: Client, args: argparse.Namespace, printer: Printer) -> int:
    """The log is this command's output: stdout, line by line (with --json, one object at the end)."""
    lines: list[str] = []
    emit = lines.append if printer.as_json else printer.line
    try:
        print_log(client, args.id, emit, until_done=args.follow)
        record = wait_final(client, args.id) if args.follow else None
    except KeyboardInterrupt:
        printer.note("\nstopped following; the build goes on")
        return INTERRUPTED
    if printer.as_json:
        printer.result({"id": args.id, "lines": lines, **({"status": record["status"]} if record else {})})
    if record is None:
        return OK
    if record.get("status") != "deployed":
        printer.note(f"deployment {args.id} {record.get('status')}: {record.get('error') or 'no reason given'}")
        return FAILED
    return OK

