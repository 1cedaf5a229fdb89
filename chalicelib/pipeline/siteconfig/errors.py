"""The errors config sources raise."""
from __future__ import annotations


class SiteConfigError(ValueError):
    """A config file or rule the build cannot use; the message names the file and the rule.

    Raised out of compile_config only for a file that cannot be read as a whole (vercel.json,
    percel.json, invalid TOML, too large, not UTF-8); inside `_redirects`, `_headers` and
    netlify.toml the rule it names is skipped with a warning instead.
    """


class RestSkipped(SiteConfigError):
    """A cap reached in a rules file: the rule it names and every later one are skipped."""
