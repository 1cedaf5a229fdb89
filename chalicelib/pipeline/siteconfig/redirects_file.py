"""`_redirects`, one rule per line, read in the site's dialect.

Both platforms skip a line they cannot read and deploy the rest: Netlify reports it in the
build log (netlify/build packages/config/src/log/messages.js, warnRedirectsParsing), Cloudflare
Pages as a warning (workers-sdk packages/workers-shared/utils/configuration/parseRedirects.ts,
`invalid`). So does percel: each skipped line is one warning naming the file and the line.
"""
from __future__ import annotations

from chalicelib.pipeline.siteconfig.cloudflare import CloudflareRedirects
from chalicelib.pipeline.siteconfig.errors import RestSkipped
from chalicelib.pipeline.siteconfig.files import read_rule_lines
from chalicelib.pipeline.siteconfig.limits import MAX_RULES
from chalicelib.pipeline.siteconfig.netlify import netlify_redirect_line
from chalicelib.schema import Dialect, HtmlHandling, NetlifyRedirectRule


def parse_redirects_file(text: str, warnings: list[str], dialect: Dialect = "netlify",
                         html_handling: HtmlHandling = "none") -> list[NetlifyRedirectRule]:
    """The rules of `_redirects`, first match first; `html_handling` is Cloudflare's mode, which
    decides whether `/ /index` is a loop."""
    cloudflare = CloudflareRedirects(html_handling) if dialect == "cloudflare" else None
    rules: list[NetlifyRedirectRule] = []

    def read(line: str, where: str) -> None:
        if cloudflare is None and len(rules) >= MAX_RULES:
            raise RestSkipped(f"{where}: more than {MAX_RULES} rules; this line and the rest of "
                              "_redirects skipped")
        rule = (cloudflare.rule(line, where) if cloudflare is not None
                else netlify_redirect_line(line, where, warnings))
        if rule is not None:
            rules.append(rule)

    read_rule_lines(text, "_redirects", warnings, read)
    return rules
