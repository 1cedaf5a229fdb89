"""`percel`: the argument parser and the exit codes; each subcommand lives in deploy.py or commands.py."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from percel_cli import __version__, commands, config
from percel_cli.client import ApiError, Client
from percel_cli.deploy import USAGE, UsageError, run_deploy, run_logs
from percel_cli.output import Printer

EXIT_CODES = """\
exit codes:
  0    done (for deploy and logs -f: the deployment is deployed)
  1    the deployment failed or was cancelled
  2    a usage error, or the API refused the call or could not be reached
  130  Ctrl-C: stopped following; the build goes on

The API and token come from `percel login`, stored in $XDG_CONFIG_HOME/percel/config.json
(~/.config/percel/config.json); PERCEL_API and PERCEL_TOKEN override them.
Colour only on a terminal, never with NO_COLOR set."""

MAIN_EXAMPLES = """\
examples:
  percel login --api http://localhost:8000 --token pcl_...
  percel deploy                       # this folder, built on the server
  percel deploy ./dist --prebuilt     # an already-built folder, served as it is
  percel deploy --repo https://github.com/you/site --ref main
  percel deploy --project shop --prod
  percel ls --project shop
  percel logs -f k3x2m9q8w7e6r5t4

""" + EXIT_CODES

DEPLOY_EXAMPLES = """\
examples:
  percel deploy                                  # the current folder; the server detects the framework
  percel deploy site --build-command 'npm run build' --output-dir dist --env API_URL=https://api.example.com
  percel deploy site/dist --prebuilt             # upload a built folder, no build
  percel deploy site --prebuilt --output-dir dist   # publish only site/dist, no build
  percel deploy --repo file:///srv/git/site --ref main
  percel deploy --project shop                   # this folder as a preview of project shop
  percel deploy --project shop --prod            # ... as its production deployment
  percel deploy --project shop --branch redesign # ... as the preview of a branch of it
  percel deploy --project shop --git --ref feature/login   # the project's own repository
  id=$(percel deploy --json --no-wait | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

Folders are sent without .git, .hg, .svn, node_modules and files that usually hold secrets
(.env, .env.* but .env.example/.sample/.template, *.pem, *.key, id_rsa*, id_dsa*, id_ecdsa*,
id_ed25519*, .npmrc, .netrc, .pypirc), whatever the ignore files say, nor what .gitignore and
.percelignore files (in any folder) ignore, nor symlinks that lead out of the folder.
Only the files the server does not already hold are uploaded.

""" + EXIT_CODES


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    printer = Printer(as_json=getattr(args, "json", False))
    if not getattr(args, "run", None):
        parser.print_help()
        return USAGE
    try:
        return int(args.run(client_for(args), args, printer))
    except UsageError as exc:
        printer.error(str(exc))
        return USAGE
    except ApiError as exc:
        printer.error(exc.line())
        return USAGE
    except KeyboardInterrupt:
        printer.note("\ninterrupted")
        return 130


def client_for(args: argparse.Namespace) -> Client:
    if args.run in (commands.login, commands.logout):
        return Client(getattr(args, "api", None) or "", None)
    creds = config.load()
    if not creds.api:
        raise UsageError("no API: run `percel login --api URL --token T`, or set PERCEL_API")
    if not creds.token:
        raise UsageError("no token: run `percel login`, or set PERCEL_TOKEN")
    return Client(creds.api, creds.token)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="percel", description="Deploy folders and repositories to a percel server, and manage them.",
        epilog=MAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"percel {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    add = _adder(sub)

    deploy = add("deploy", run_deploy, "deploy a folder, a repository or a project", DEPLOY_EXAMPLES)
    deploy.add_argument("dir", nargs="?", metavar="DIR", help="the folder to deploy (default: .)")
    deploy.add_argument("--prebuilt", action="store_true", help="DIR is built output: serve it as it is")
    deploy.add_argument("--force", action="store_true",
                        help="build even when an earlier deployment had the same inputs (else its output is reused)")
    deploy.add_argument("--repo", metavar="URL", help="deploy this git repository instead of a folder")
    deploy.add_argument("--ref", help="the branch or tag (with --repo or --project)")
    deploy.add_argument("--project", metavar="NAME", help="deploy for this project")
    deploy.add_argument("--prod", action="store_true", help="with --project: a production deployment")
    deploy.add_argument("--branch", metavar="B", help="with --project: the folder's preview branch "
                        "(its address is PROJECT-git-B)")
    deploy.add_argument("--git", action="store_true", help="with --project: its own repository, not a folder")
    for flag, meta in (("--build-command", "CMD"), ("--install-command", "CMD"), ("--output-dir", "DIR"),
                       ("--root-dir", "DIR"), ("--node-version", "MAJOR")):
        deploy.add_argument(flag, metavar=meta)
    deploy.add_argument("--env", action="append", metavar="NAME=VALUE", help="a build variable (repeatable)")
    deploy.add_argument("--no-wait", action="store_true", help="return once the deployment is accepted")

    listing = add("ls", commands.ls, "list deployments, newest first", "examples:\n  percel ls --limit 5\n"
                  "  percel ls --project shop --json")
    listing.add_argument("--project", metavar="NAME")
    listing.add_argument("--limit", type=int, metavar="N")
    for name, run, helptext in (("inspect", commands.inspect, "show one deployment"),
                                ("cancel", commands.cancel, "cancel an uploading, queued or building deployment")):
        add(name, run, helptext, f"example:\n  percel {name} k3x2m9q8w7e6r5t4").add_argument("id", metavar="ID")
    logs = add("logs", run_logs, "print a deployment's build log",
               "examples:\n  percel logs k3x2m9q8w7e6r5t4\n  percel logs -f k3x2m9q8w7e6r5t4   # until the build ends")
    logs.add_argument("id", metavar="ID")
    logs.add_argument("-f", "--follow", action="store_true", help="follow the build to its end")
    remove = add("rm", commands.rm, "delete a deployment", "example:\n  percel rm k3x2m9q8w7e6r5t4 --yes")
    remove.add_argument("id", metavar="ID")
    remove.add_argument("--yes", "-y", action="store_true", help="do not ask")

    _project_commands(add)
    _token_commands(add)

    login = add("login", commands.login, "check and store the API address and token",
                "example:\n  percel login --api http://localhost:8000 --token pcl_...")
    login.add_argument("--api", required=True, metavar="URL")
    login.add_argument("--token", metavar="T", help="asked for on a terminal when left out")
    add("logout", commands.logout, "forget the stored API and token", "example:\n  percel logout")
    add("whoami", commands.whoami, "check that the API answers and takes the token", "example:\n  percel whoami")
    return parser


def _adder(sub: argparse._SubParsersAction) -> Callable[..., argparse.ArgumentParser]:  # type: ignore[type-arg]
    def add(name: str, run: Callable[..., int], helptext: str, epilog: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=helptext, description=helptext, epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        command.set_defaults(run=run)
        return command
    return add


def _project_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    projects = add("projects", commands.projects, "list, create, update, inspect or delete projects",
                   "examples:\n  percel projects\n  percel projects create shop --repo https://github.com/you/shop "
                   "--build-command 'npm run build' --output-dir dist\n"
                   "  percel projects update shop --node-version 22 --env API_URL=https://api.example.com\n"
                   "  percel projects inspect shop\n"
                   "  percel projects rm shop --yes")
    projects.add_argument("action", nargs="?", choices=("ls", "create", "update", "inspect", "rm"))
    projects.add_argument("name", nargs="?", metavar="NAME")
    projects.add_argument("--repo", metavar="URL")
    for setting in commands.PROJECT_SETTINGS:
        projects.add_argument("--" + setting.replace("_", "-"), dest=setting)
    projects.add_argument("--env", action="append", metavar="NAME=VALUE",
                          help="a build variable for production and preview (repeatable)")
    projects.add_argument("--yes", "-y", action="store_true", help="rm: do not ask")

    promote = add("promote", commands.promote, "put a deployment of the project in production, no build",
                  "example:\n  percel promote shop k3x2m9q8w7e6r5t4")
    promote.add_argument("project", metavar="PROJECT")
    promote.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
    rollback = add("rollback", commands.rollback, "production back to the deployment before",
                   "example:\n  percel rollback shop")
    rollback.add_argument("project", metavar="PROJECT")

    domains = add("domains", commands.domains, "a project's custom domains",
                  "examples:\n  percel domains ls shop\n  percel domains add shop www.example.com\n"
                  "  percel domains add shop beta.example.com --branch beta\n  percel domains rm shop www.example.com")
    domains.add_argument("action", choices=("ls", "add", "rm"))
    domains.add_argument("project", metavar="PROJECT")
    domains.add_argument("domain", nargs="?", metavar="DOMAIN")
    domains.add_argument("--branch", metavar="B", help="add: serve this branch's preview (default: production)")

    hooks = add("hooks", commands.hooks, "a project's deploy hooks (a URL that deploys a branch)",
                "examples:\n  percel hooks ls shop\n  percel hooks add shop --branch main\n"
                "  percel hooks rm shop HOOK_ID")
    hooks.add_argument("action", choices=("ls", "add", "rm"))
    hooks.add_argument("project", metavar="PROJECT")
    hooks.add_argument("hook_id", nargs="?", metavar="HOOK_ID")
    hooks.add_argument("--branch", metavar="B")


def _token_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    tokens = add("tokens", commands.tokens, "list, create or revoke API tokens (admin)",
                 "examples:\n  percel tokens\n  percel tokens create ci --role deploy --project shop\n"
                 "  percel tokens revoke q7m2k9x8w7e6r5t4")
    tokens.add_argument("action", nargs="?", choices=("ls", "create", "revoke"))
    tokens.add_argument("name", nargs="?", metavar="NAME_OR_ID")
    tokens.add_argument("--role", choices=("read", "deploy", "admin"))
    tokens.add_argument("--project", action="append", metavar="P", help="limit it to a project (repeatable)")
    tokens.add_argument("--expires-in-days", type=float, metavar="N")


if __name__ == "__main__":
    sys.exit(main())
