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
