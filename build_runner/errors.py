"""The two ways a build ends in `failed` with a message meant for the user.

Anything else a build raises is a fault of percel's own (a bug, the bucket or Redis
failing): the runner logs its traceback and tells the user only that the build runner
failed, never that their project did.
"""
from __future__ import annotations


class ProjectError(Exception):
    """Something in the user's project stops its build (a root_dir that is not there, no
    output directory, a tool the project needs). Subclasses live next to what raises them."""


class BuildFailed(Exception):
    """The runner ends a build for a reason it can name: a step exited non-zero or was
    cancelled, the output is over a limit, the uploaded source is gone."""


# What the user reads for any other exception; the traceback goes to the runner's own log.
INTERNAL_ERROR = "internal error in the build runner"


# How the sandbox's network proxy reports a connection it refused, one build-log line each
# (build_runner/sandbox/network.py); a failed step names the first one in its reason.
REFUSAL_PREFIX = "percel sandbox: network access refused: "
# A reason's detail is cut here: the reason is the first line of the record's `error`.
MAX_DETAIL_CHARS = 200


def refusal_note(line: str) -> str | None:
    """For a refusal line, the clause a failed step's reason gets, e.g. "network access to
    example.com:443 was refused (not on the registry allow-list)"; None for any other line."""
    if not line.startswith(REFUSAL_PREFIX):
        return None
    message = one_line(line[len(REFUSAL_PREFIX):])
    target, _, rest = message.partition(" ")
    target = target.rstrip(":,")
    if not _looks_like_host(target):
        return f"network access was refused ({message})"
    why = rest.removeprefix("is ").strip()
    return f"network access to {target} was refused" + (f" ({why})" if why else "")


def _looks_like_host(token: str) -> bool:
    return bool(token) and "/" not in token and ("." in token or ":" in token)


def one_line(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text` made safe for a one-line reason: control characters replaced, length capped."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit - 3] + "..."
