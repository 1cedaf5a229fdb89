import pytest

from chalicelib.storage.mediatypes import content_type, is_compressible


@pytest.mark.parametrize("path, expected", [
    ("index.html", "text/html; charset=utf-8"),
    ("a/b/style.css", "text/css; charset=utf-8"),
    ("assets/index-Ab12.js", "text/javascript; charset=utf-8"),
    ("m.mjs", "text/javascript; charset=utf-8"),
    ("data.json", "application/json; charset=utf-8"),
    ("logo.svg", "image/svg+xml; charset=utf-8"),
    ("p.png", "image/png"), ("p.JPG", "image/jpeg"), ("p.webp", "image/webp"),
    ("p.avif", "image/avif"), ("p.gif", "image/gif"), ("favicon.ico", "image/x-icon"),
    ("f.woff", "font/woff"), ("f.woff2", "font/woff2"), ("f.ttf", "font/ttf"),
    ("m.wasm", "application/wasm"), ("robots.txt", "text/plain; charset=utf-8"),
    ("sitemap.xml", "application/xml; charset=utf-8"),
    ("index.js.map", "application/json; charset=utf-8"),
    ("site.webmanifest", "application/manifest+json; charset=utf-8"),
    (".well-known/apple-app-site-association", "application/json; charset=utf-8"),
    ("LICENSE", "application/octet-stream"), ("archive.unknownext", "application/octet-stream"),
])
def test_content_type_table(path, expected):
    assert content_type(path) == expected


def test_already_compressed_formats_are_not_recompressed():
    assert is_compressible(content_type("a.js")) and is_compressible(content_type("a.wasm"))
    assert not is_compressible(content_type("a.png"))
    assert not is_compressible(content_type("a.woff2"))
