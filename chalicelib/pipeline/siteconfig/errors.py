"""The one error every config source raises."""
from __future__ import annotations


class SiteConfigError(ValueError):
    """A config file the build cannot use; the message names the file and the rule."""
