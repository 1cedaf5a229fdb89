"""The dashboard's files as served: the shell and its versioned assets, their caching and
security headers, and names that are not assets (chalicelib/dashboard/assets.py)."""
from __future__ import annotations

import re

import pytest

from chalicelib.dashboard import assets
from chalicelib.dashboard.assets import Bundle, asset_response, load, shell_response

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@pytest.fixture
def bundle(tmp_path) -> Bundle:
    (tmp_path / "index.html").write_text('<script type="module" src="/dashboard/{{version}}/app.js">'
                                         "</script>")
    (tmp_path / "app.js").write_text("import './api.js';\n")
    (tmp_path / "api.js").write_text("export const x = 1;\n")
    (tmp_path / "style.css").write_text("body { margin: 0 }\n")
    (tmp_path / ".hidden").write_text("not served")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.js").write_text("not served")
    return load(tmp_path)


def security(headers: dict) -> dict:
    return {name: headers.get(name) for name in
            ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")}


SECURE = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
          "Referrer-Policy": "no-referrer"}


def test_the_shell_names_its_assets_by_version_and_is_revalidated_every_load(bundle):
    response = shell_response(None, bundle)
    assert response.status_code == 200
    assert response.body == f'<script type="module" src="/dashboard/{bundle.version}/app.js"></script>'.encode()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["ETag"] == f'"{bundle.version}"'
    assert security(response.headers) == SECURE


def test_an_unchanged_shell_is_a_304_with_the_same_headers(bundle):
    for header in (f'"{bundle.version}"', f'W/"{bundle.version}"', f'"other", "{bundle.version}"', "*"):
        response = shell_response(header, bundle)
        assert (response.status_code, response.body) == (304, b""), header
        assert security(response.headers) == SECURE
    assert shell_response('"stale"', bundle).status_code == 200


@pytest.mark.parametrize("name, media", [("app.js", "text/javascript; charset=utf-8"),
                                         ("style.css", "text/css; charset=utf-8")])
def test_an_asset_of_this_version_is_immutable(bundle, name, media):
    response = asset_response(bundle.version, name, None, bundle)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == media
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert security(response.headers) == SECURE


@pytest.mark.parametrize("name", ["index.html", "missing.js", ".hidden", "sub", "deep.js",
                                  "../assets.py", "..%2Fassets.py", "%2e%2e/assets.py",
                                  "/etc/passwd", "sub/deep.js", "", "."])
def test_anything_but_an_asset_is_a_404_and_never_a_file_read(bundle, name):
    response = asset_response(bundle.version, name, None, bundle)
    assert response.status_code == 404
    assert response.body == b"Not Found\n"
    assert security(response.headers) == SECURE


def test_an_asset_of_another_version_is_a_404(bundle):
    assert asset_response("0" * 16, "app.js", None, bundle).status_code == 404


def test_the_version_changes_with_any_file(tmp_path, bundle):
    (tmp_path / "api.js").write_text("export const x = 2;\n")
    assert load(tmp_path).version != bundle.version


def test_the_shipped_files_load_with_no_inline_script_or_style():
    shipped = assets.bundle()
    shell = shipped.shell.decode()
    assert re.fullmatch(r"[0-9a-f]{16}", shipped.version)
    assert {"app.js", "api.js", "style.css"} <= set(shipped.assets)
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", shell)
    assert re.findall(r"<script[^>]*>", shell) == [f'<script type="module" src="/dashboard/{shipped.version}/app.js">']
    for name, body in shipped.assets.items():
        if name.endswith(".js"):
            # Every module a module imports is a sibling: the versioned directory holds them all.
            for imported in re.findall(r'from "\./([^"]+)"', body.decode()):
                assert imported in shipped.assets, (name, imported)
