"""End to end in a real browser: Debian's chromium, driven by Playwright, against the whole stack.
A user signs in with a token, deploys a project and watches its log arrive live, promotes and
rolls back through the confirm dialog (the production address follows), manages tokens, and
does it all at 375 px wide and from the keyboard, with the page's CSP never tripped.

Screenshots go to test-artifacts/dashboard/ (their paths are printed). Without chromium or
Playwright these tests fail, saying what to install: they never skip.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from chalicelib.dashboard.assets import CONTENT_SECURITY_POLICY
from chalicelib.settings import Settings
from tests.conftest import TEST_ADMIN_TOKEN, Http, commit_all, make_repo

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "dashboard"
# A request handler sees a moved address within this many seconds (README, Projects).
ALIAS_SECONDS = Settings().alias_cache_seconds
BUILD = {"build_command": "sh build.sh", "output_dir": "dist"}
NARROW = 375
expect = None   # playwright's, imported by the browser fixture (which fails clearly without it)
REFUSED = "Failed to load resource: the server responded with a status of 4"
# Set before any page script runs: every CSP violation the page reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (event) => window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""


def build_script(page: str, echo: str | None = None, sleep: float = 0) -> str:
    return (f"echo '{echo}'\n" if echo else "") + (f"sleep {sleep}\n" if sleep else "") + \
        f"mkdir -p dist && printf '%s' '{page}' > dist/index.html\n"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.fail(f"Playwright is not installed ({error}): `make install` installs "
                    "requirements-dev.txt", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM}: `apt-get install chromium` (`make system-deps` does "
                    "it as root), or point CHROMIUM at one", pytrace=False)
    global expect
    from playwright.sync_api import expect
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class Tab:
    """A page in its own browser context, with what its console said."""

    def __init__(self, browser, stack, width: int = 1100):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.add_init_script(RECORD_VIOLATIONS)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.base = stack.api_url

    def open(self, hash_: str = ""):
        response = self.page.goto(f"{self.base}/{hash_}")
        assert response is not None and response.status == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        return response

    def sign_in(self, token: str = TEST_ADMIN_TOKEN) -> None:
        self.page.get_by_label("API token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("button", name="Sign out").wait_for()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        self.page.get_by_label("API token").wait_for()

    def status(self) -> str:
        return self.page.locator("#status").inner_text()

    def wait_status(self, text: str, timeout: float = 30_000) -> None:
        # Locators poll without eval (page.wait_for_function's string would trip the CSP).
        expect(self.page.locator("#status")).to_contain_text(text, timeout=timeout)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def overflow(self) -> int:
        return self.page.evaluate("document.documentElement.scrollWidth")

    def assert_clean(self) -> None:
        """No CSP violation, no script error, nothing the console called an error but the
        browser's own note on an API refusal the test caused (a 4xx is a failed request to it)."""
        assert self.page.evaluate("window.__violations") == []
        problems = [line for line in self.console if (line.startswith(("error", "pageerror"))
                    or "Content Security Policy" in line) and REFUSED not in line]
        assert problems == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, stack):
    opened = Tab(browser, stack)
    yield opened
    opened.close()


def create_project(http: Http, root: Path, name: str, files: dict[str, str],
                   settings: dict | None = None) -> None:
    make_repo(root, files)
    status, body = http.json("POST", "/api/projects",
                             {"name": name, "repo_url": f"file://{root}", **(settings or {})})
    assert status == 201, body


def deployed(http: Http, name: str) -> str:
    status, created = http.json("POST", f"/api/projects/{name}/deployments", {})
    assert status == 202, created
    record = http.wait_for(created["id"], timeout=180)
    assert record["status"] == "deployed", record.get("error")
    return created["id"]


def production_page(http: Http, stack, name: str, expected: str, timeout: float = 10) -> None:
    """The production address serves `expected` (an address moves within ALIAS_SECONDS)."""
    deadline = time.monotonic() + max(timeout, ALIAS_SECONDS + 1)
    body = b""
    while time.monotonic() < deadline:
        status, _, body = http.request("GET", "/", host=f"{name}.localhost:{stack.port}")
        if status == 200 and body.decode() == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name}'s production address serves {body!r}, not {expected!r}")


def test_deploy_from_the_ui_watch_the_log_live_then_roll_back_and_promote(tab, http, stack, tmp_path):
    repo = tmp_path / "repo"
    create_project(http, repo, "dash", {"build.sh": build_script("v1")}, BUILD)
    v1 = deployed(http, "dash")
    (repo / "build.sh").write_text(build_script("v2", echo="percel-e2e: building v2", sleep=3))
    commit_all(repo)

    tab.open()
    tab.shot("01-sign-in")
    tab.sign_in()
    page = tab.page
    page.get_by_role("link", name="dash", exact=True).click()
    page.get_by_role("heading", name="dash").wait_for()
    tab.shot("02-project")

    page.get_by_role("button", name="Deploy", exact=True).click()
    page.wait_for_url("**/#/deployments/*")
    v2 = page.url.rsplit("/", 1)[1]
    first_status = page.locator("#deployment-status").inner_text()
    assert first_status in ("uploading", "queued", "building")
    # The log line arrives while the build still runs (it sleeps 3 s after echoing it).
    expect(page.locator("#log")).to_contain_text("building v2", timeout=180_000)
    assert page.locator("#deployment-status").inner_text() in ("uploading", "queued", "building")
    tab.shot("03-deployment-building")
    expect(page.locator("#deployment-status")).to_have_text("deployed", timeout=180_000)
    assert "percel: deployed at" in page.locator("#log").inner_text()
    tab.shot("04-deployment-deployed")
    production_page(http, stack, "dash", "v2")

    page.locator(".facts").get_by_role("link", name="dash").click()
    page.get_by_role("button", name=f"Promote {v1}").wait_for()
    page.get_by_role("button", name="Roll back production").click()
    dialog = page.locator("dialog#confirm")
    assert dialog.is_visible()
    tab.shot("05-confirm-rollback")
    dialog.get_by_role("button", name="Roll back").click()
    tab.wait_status(f"production serves {v1}")
    production_page(http, stack, "dash", "v1")
    tab.shot("06-rolled-back")

    # Promote from the keyboard: the dialog opens with Cancel focused, Tab moves to Promote.
    page.get_by_role("button", name=f"Promote {v2}").focus()
    page.keyboard.press("Enter")
    dialog.wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "confirm-ok"
    page.keyboard.press("Enter")
    tab.wait_status(f"Promoted {v2}")
    production_page(http, stack, "dash", "v2")
    assert http.json("GET", "/api/projects/dash")[1]["production_deployment"] == v2
    tab.shot("07-promoted")
    tab.assert_clean()


def test_at_375_px_nothing_overflows_and_the_keyboard_reaches_everything(browser, http, stack, tmp_path):
    create_project(http, tmp_path / "narrow", "narrow", {"index.html": "<h1>narrow</h1>"})
    deployment = deployed(http, "narrow")
    tab = Tab(browser, stack, width=NARROW)
    try:
        tab.open()
        page = tab.page
        reached = []
        for _ in range(10):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("[document.activeElement.tagName, document.activeElement.id || "
                                         "document.activeElement.textContent.trim()]"))
            if reached[-1] == ["INPUT", "token"]:
                # The focus is visible: the stylesheet's ring, not the browser's default.
                assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
        assert ["INPUT", "token"] in reached and ["BUTTON", "Sign in"] in reached
        page.locator("#token").fill(TEST_ADMIN_TOKEN)
        page.keyboard.press("Enter")
        page.get_by_role("link", name="narrow", exact=True).wait_for()
        for name, hash_, ready in [("projects", "#/projects", "New project"),
                                   ("project", "#/projects/narrow", "Deployments of narrow"),
                                   ("deployments", "#/deployments", "All deployments"),
                                   ("deployment", f"#/deployments/{deployment}", "The build has ended"),
                                   ("tokens", "#/tokens", "New token"),
                                   ("new-project", "#/projects/new", "Create project")]:
            page.goto(f"{tab.base}/{hash_}")
            page.get_by_text(ready).first.wait_for()
            assert tab.overflow() <= NARROW, name
            tab.shot(f"narrow-{name}")
        # Buttons are buttons, reachable by Tab, on the narrow project page too.
        page.goto(f"{tab.base}/#/projects/narrow")
        page.get_by_text("Deployments of narrow").wait_for()
        names = set()
        for _ in range(25):
            page.keyboard.press("Tab")
            names.add(page.evaluate("document.activeElement.textContent.trim()"))
        assert {"Sign out", "Delete project", "Roll back production", "Deploy"} <= names
        tab.assert_clean()
    finally:
        tab.close()


def test_tokens_created_once_revoked_and_a_read_token_is_told_it_lacks_the_role(tab, http):
    tab.open("#/tokens")
    tab.sign_in()
    page = tab.page
    page.get_by_label("Name").fill("reader")
    page.get_by_label("Role").select_option("read")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-secret").inner_text()
    assert http.request("GET", "/api/projects", headers={"Authorization": f"Bearer {secret}"})[0] == 200
    tab.shot("tokens-created")

    tab.sign_out()
    tab.sign_in(secret)
    page.goto(f"{tab.base}/#/tokens")
    page.locator("#tokens-forbidden").wait_for()
    assert "admin role" in page.locator("#tokens-forbidden").inner_text()
    tab.shot("tokens-forbidden")
    tab.sign_out()

    tab.sign_in()
    page.goto(f"{tab.base}/#/tokens")
    page.get_by_role("button", name="Revoke reader").click()
    page.locator("dialog#confirm").get_by_role("button", name="Revoke token").click()
    tab.wait_status("Revoked reader")
    status, _, _ = http.request("GET", "/api/projects", headers={"Authorization": f"Bearer {secret}"})
    assert status == 401
    tab.assert_clean()


def test_an_api_refusal_is_said_in_the_live_region_naming_the_field(tab):
    tab.open("#/projects/new")
    tab.sign_in()
    page = tab.page
    page.get_by_label("Name", exact=True).fill("Not A Label")
    page.get_by_label("Repository URL").fill("file:///nowhere")
    page.get_by_role("button", name="Create project").click()
    tab.wait_status("Error 400")
    region = page.locator("#status")
    assert region.get_attribute("aria-live") == "polite"
    assert "name" in tab.status()
    tab.shot("error-message")
    tab.assert_clean()


def test_a_wrong_token_is_refused_at_sign_in(tab):
    tab.open()
    tab.page.get_by_label("API token").fill("percel_not_a_token")
    tab.page.get_by_role("button", name="Sign in").click()
    tab.wait_status("Sign-in failed")
    assert tab.page.get_by_label("API token").is_visible()
    tab.assert_clean()
