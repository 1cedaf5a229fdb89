"""End to end: sites moved from Netlify, Cloudflare Pages and Vercel, config files as written there.

Each site brings the config a team would have on its old platform, in that platform's own
habits (inline comments, header lines without indentation, a line the platform skips, `has`
captures, header templates), deploys through the API as any repository does, and is browsed
over HTTP. What a visitor sees must be what the old platform showed (the rules behind each
expectation are in tests/conformance/ and docs/CONFORMANCE.md); what the deployer sees is the
skipped lines, named in the deployment's `warnings` and in its build log.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import site_host
from tests.test_e2e_serving import deploy_all

PAGE = "<!doctype html><title>{0}</title><h1>{0}</h1>"

# A docs site that lived on Netlify. The API proxy and the broken line are what Netlify itself
# would report and skip; everything else applies.
NETLIFY_SITE = {
    "index.html": PAGE.format("home"),
    "docs/intro.html": PAGE.format("intro"),
    "posts/hello.html": PAGE.format("hello post"),
    "results.html": PAGE.format("results"),
    "new-page.html": PAGE.format("new page"),
    "en/index.html": PAGE.format("english home"),
    "en/404.html": PAGE.format("english not found"),
    "assets/app-3f2a1b9c.js": "console.log('app');\n",
    "_redirects": "\n".join([
        "# Moved when the docs were reorganised",
        "/docs/v1/*                  /docs/:splat          301",
        "/blog/:year/:month/:slug    /posts/:slug          301   # old permalinks",
        "/search  q=:query           /results?term=:query  302",
        "/api/*                      https://api.example.com/:splat  200",
        "/old-page.html              /new-page             301",
        "this line lost its slash    /somewhere",
        "/en/*                       /en/404.html          404",
    ]) + "\n",
    "_headers": "\n".join([
        "/*",
        "  X-Frame-Options: DENY",
        "  Referrer-Policy: strict-origin-when-cross-origin",
        "/assets/*",
        "Cache-Control: public, max-age=31536000, immutable",   # not indented: still a header
    ]) + "\n",
}

# A marketing site that lived on Cloudflare Pages: no 404.html (so Pages served it as a
# single-page app), rules without a status (302 there), placeholders in header values.
CLOUDFLARE_SITE = {
    "index.html": PAGE.format("cf home"),
    "about.html": PAGE.format("about"),
    "posts/hello.html": PAGE.format("hello"),
    "percel.json": json.dumps({"dialect": "cloudflare"}),
    "_redirects": "\n".join([
        "/old            /about",
        "/blog/*         /posts/:splat         301",
        "/teapot         /about                418",
    ]) + "\n",
    "_headers": "\n".join([
        "/posts/:slug",
        "  X-Post: :slug",
        "/*",
        "  X-Robots-Tag: noindex",
        "/about",
        "  ! X-Robots-Tag",
    ]) + "\n",
}

# An app that lived on Vercel: a language picked from the query by a named group, a header
# filled from the path, a rewrite for the client-side app.
VERCEL_SITE = {
    "index.html": PAGE.format("vercel home"),
    "about.html": PAGE.format("about"),
    "fr/welcome.html": PAGE.format("bienvenue"),
    "app.html": PAGE.format("the app"),
    "blog/hello.html": PAGE.format("hello"),
    "vercel.json": json.dumps({
        "redirects": [
            {"source": "/welcome", "destination": "/:lang/welcome", "permanent": False,
             "has": [{"type": "query", "key": "lang", "value": "(?<lang>en|fr)"}]},
            {"source": "/old-docs/:path*", "destination": "/docs/:path*"}],
        "rewrites": [{"source": "/app/:path*", "destination": "/app.html"}],
        "headers": [{"source": "/blog/:slug",
                     "headers": [{"key": "X-Slug", "value": ":slug"}]}]}),
}


@pytest.fixture(scope="module")
def migrated(http, tmp_path_factory) -> dict[str, str]:
    return deploy_all(http, tmp_path_factory, {"netlify": NETLIFY_SITE,
                                               "cloudflare": CLOUDFLARE_SITE,
                                               "vercel": VERCEL_SITE})


@pytest.fixture(scope="module")
def visit(http, stack, migrated):
    """visit(site, path) -> (status, headers by lower-case name, body), redirects not followed."""
    def request(site: str, path: str):
        status, headers, body = http.request("GET", path, host=site_host(stack, migrated[site]))
        return status, {name.lower(): value for name, value in headers.items()}, body
    return request


@pytest.mark.parametrize("site,path,status,location", [
    ("netlify", "/docs/v1/intro", 301, "/docs/intro"),
    ("netlify", "/blog/2021/04/hello", 301, "/posts/hello"),      # the inline comment is a comment
    ("netlify", "/search?q=cats", 302, "/results?term=cats"),
    ("netlify", "/old-page.html", 301, "/new-page"),
    ("cloudflare", "/old", 302, "/about"),                         # Pages' default status
    ("cloudflare", "/blog/hello", 301, "/posts/hello"),
    ("cloudflare", "/about.html", 308, "/about"),                  # one address per page
    ("vercel", "/welcome?lang=fr", 307, "/fr/welcome?lang=fr"),    # the named group's value
    ("vercel", "/old-docs/a/b", 308, "/docs/a/b"),
])
def test_redirects_as_on_the_old_platform(visit, site, path, status, location):
    answer, headers, _ = visit(site, path)
    assert (answer, headers["location"]) == (status, location)


@pytest.mark.parametrize("site,path,status,page", [
    ("netlify", "/docs/intro", 200, "intro"),
    ("netlify", "/en/missing", 404, "english not found"),
    ("netlify", "/api/users", 404, None),                          # the proxy rule was skipped
    ("cloudflare", "/dashboard/settings", 200, "cf home"),         # no 404.html: an SPA
    ("cloudflare", "/teapot", 200, "cf home"),                     # the 418 line was skipped
    ("vercel", "/about.html", 200, "about"),                       # Vercel serves it as it is
    ("vercel", "/app/settings/profile", 200, "the app"),
    ("vercel", "/welcome?lang=de", 404, None),                     # `has` does not hold
])
def test_pages_as_on_the_old_platform(visit, site, path, status, page):
    answer, _, body = visit(site, path)
    assert answer == status
    if page is not None:
        assert f"<h1>{page}</h1>".encode() in body


def test_headers_as_on_the_old_platform(visit):
    _, headers, _ = visit("netlify", "/assets/app-3f2a1b9c.js")
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["x-frame-options"] == "DENY"
    _, headers, _ = visit("cloudflare", "/posts/hello")
    assert (headers["x-post"], headers["x-robots-tag"]) == ("hello", "noindex")
    _, headers, _ = visit("cloudflare", "/about")
    assert "x-robots-tag" not in headers
    _, headers, _ = visit("vercel", "/blog/hello")
    assert headers["x-slug"] == "hello"


def test_skipped_lines_are_named_to_the_deployer(http, migrated):
    expected = {"netlify": ["_redirects line 5", "_redirects line 7"],
                "cloudflare": ["_redirects line 3"], "vercel": []}
    for site, places in expected.items():
        _, record = http.json("GET", f"/api/deployments/{migrated[site]}")
        assert len(record["warnings"]) == len(places), record["warnings"]
        for place, warning in zip(places, record["warnings"], strict=True):
            assert warning.startswith(place), warning
    _, log = http.json("GET", f"/api/deployments/{migrated['netlify']}/logs")
    said = [line for line in log["lines"] if "config warning" in line]
    assert len(said) == 2 and "_redirects line 5" in said[0]
