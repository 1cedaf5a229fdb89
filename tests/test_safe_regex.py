"""Users' patterns cannot stall the request handler (catastrophic backtracking)."""
import pytest

from chalicelib import safe_regex
from chalicelib.pipeline import siteconfig
from chalicelib.serving.resolve import resolve

PAGE = {"index.html": {"sha256": "0" * 64, "size": 1, "type": "text/html; charset=utf-8"}}


@pytest.mark.parametrize("vercel", [
    {"redirects": [{"source": "/((?:a|a)*)b", "destination": "/x"}]},
    {"rewrites": [{"source": "/:p((?:a|aa)+)+", "destination": "/x"}]},
    {"headers": [{"source": "/(.*)", "headers": [{"key": "X", "value": "1"}],
                  "has": [{"type": "header", "key": "x", "value": "^(?:a|a)*$"}]}]},
])
def test_a_catastrophic_pattern_fails_the_build_with_a_reason(vercel):
    with pytest.raises(siteconfig.SiteConfigError, match="too expensive to match"):
        siteconfig.compile_config(vercel=vercel)


def test_a_slow_pattern_the_probes_miss_is_cut_short_at_request_time():
    config = siteconfig.compile_config(vercel={"redirects": [
        {"source": "/((?:b|b)*)c", "destination": "/x"}]})
    site = {"files": PAGE, "config": config}
    # 2^60 paths to try without a budget; with one, the rule simply does not match.
    assert resolve("GET", "/" + "b" * 60 + "d", {}, site).status == 404
    assert resolve("GET", "/bbc", {}, site).location == "/x"


def test_ordinary_patterns_pass_and_match():
    assert not safe_regex.too_slow(r"^/blog/([^/]+?)$")
    assert not safe_regex.too_slow(r"^/(.*)/(.*)/(.*)/x$")
    assert safe_regex.match(r"^/blog/([^/]+?)$", "/blog/hello")[1] == "hello"
    assert safe_regex.match(r"v\d+", "v12", full=True) is not None
