"""SiteServer (chalicelib/serving/site.py) against a real moto S3 server and a real Redis.

What a user would notice here is cost and freshness: a warm handler answers cache hits,
304s, redirects and 404s without a bucket call (each GET is a billed request and a network round trip), its
caches stay bounded, and a deleted deployment stops being served.
"""
from __future__ import annotations

import dataclasses
import hashlib

import brotli
import pytest

from chalicelib import keys
from chalicelib.serving.site import BUCKET_READS_HEADER, LRU, SiteServer, site_label
from chalicelib.state.records import State
from tests.conftest import publish_output

SITE_ID = "sitesitesitesite"
SCRIPT = b"export const answer = 42;\n" * 200
IMAGE = bytes(range(256)) * 40


@pytest.fixture
def site(ctx, tmp_path):
    root = tmp_path / "out"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>\n" * 50)
    (root / "about.html").write_text("<h1>about</h1>")
    (root / "assets" / "index-B7xQ9zKp.js").write_bytes(SCRIPT)
    (root / "assets" / "photo.bin").write_bytes(IMAGE)
    publish_output(ctx, SITE_ID, root, vercel={
        "cleanUrls": True, "redirects": [{"source": "/old/:slug", "destination": "/new/:slug"}]})
    return SITE_ID


@pytest.fixture
def server(ctx) -> SiteServer:
    return SiteServer(ctx)


def get(server: SiteServer, path: str, method: str = "GET", **headers: str):
    return server.handle(SITE_ID, method, path, "", {k.lower().replace("_", "-"): v
                                                      for k, v in headers.items()})


def test_a_warm_handler_serves_hits_without_the_bucket(server, site):
    first = get(server, "/assets/index-B7xQ9zKp.js")
    assert first.status_code == 200 and first.body == SCRIPT
    assert server.bucket_reads == 2          # the manifest, then the blob
    for _ in range(5):
        assert get(server, "/assets/index-B7xQ9zKp.js").body == SCRIPT
    assert server.bucket_reads == 2


def test_304_redirect_404_and_head_make_no_bucket_call(server, site):
    get(server, "/")                          # warms the manifest (and index.html)
    reads = server.bucket_reads
    etag = get(server, "/assets/photo.bin", "HEAD").headers["ETag"]
    assert get(server, "/assets/photo.bin", if_none_match=etag).status_code == 304
    moved = get(server, "/old/post")
    assert moved.status_code == 308 and moved.headers["Location"] == "/new/post"
    assert get(server, "/about.html").status_code == 308        # cleanUrls
    missing = get(server, "/no/such/page")
    assert missing.status_code == 404 and missing.body == b"404 Not Found\n"
    assert get(server, "/..%2fsecret").status_code == 400
    assert server.bucket_reads == reads       # photo.bin was never fetched


def test_a_range_is_cut_from_the_cached_blob(server, site):
    whole = get(server, "/assets/photo.bin")
    reads = server.bucket_reads
    part = get(server, "/assets/photo.bin", range="bytes=256-511")
    assert part.status_code == 206 and part.body == IMAGE[256:512] == whole.body[256:512]
    assert part.headers["Content-Range"] == f"bytes 256-511/{len(IMAGE)}"
    assert server.bucket_reads == reads


def test_each_encoding_is_its_own_cached_blob(server, site):
    packed = get(server, "/assets/index-B7xQ9zKp.js", accept_encoding="gzip, br")
    assert packed.headers["Content-Encoding"] == "br"
    assert brotli.decompress(packed.body) == SCRIPT
    reads = server.bucket_reads
    get(server, "/assets/index-B7xQ9zKp.js", accept_encoding="br")
    assert server.bucket_reads == reads
    plain = get(server, "/assets/index-B7xQ9zKp.js")
    assert plain.body == SCRIPT and server.bucket_reads == reads + 1


def test_the_local_stage_reports_bucket_reads_in_a_header(server, site):
    assert get(server, "/").headers[BUCKET_READS_HEADER] == "2"
    assert get(server, "/").headers[BUCKET_READS_HEADER] == "2"


def test_other_stages_do_not_expose_the_counter(ctx, site):
    prod = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, stage="prod"))
    response = get(SiteServer(prod), "/")
    assert response.status_code == 200 and BUCKET_READS_HEADER not in response.headers


def test_the_blob_cache_is_bounded(ctx, site):
    small = SiteServer(ctx, cache_bytes=64 * 1024)   # blobs: 64 KiB, one item at most 8 KiB
    get(small, "/assets/photo.bin")                    # 10 KiB: too big to keep
    reads = small.bucket_reads
    get(small, "/assets/photo.bin")
    assert small.bucket_reads == reads + 1
    get(small, "/assets/index-B7xQ9zKp.js")           # 5 KiB: kept
    reads = small.bucket_reads
    get(small, "/assets/index-B7xQ9zKp.js")
    assert small.bucket_reads == reads and small.blobs.used <= small.blobs.max_bytes


def test_lru_evicts_the_least_recently_used():
    cache = LRU(max_bytes=80)
    cache.put("a", b"a", 10)
    cache.put("b", b"b", 10)
    cache.get("a")
    for name in "cdefghi":
        cache.put(name, name.encode(), 10)
    assert cache.get("b") is None and cache.get("a") == b"a" and cache.used == 80


def test_unknown_sites_are_404_and_deleted_ones_410(ctx, server, site):
    assert server.handle("zzzzzzzzzzzzzzzz", "GET", "/", "", {}).status_code == 404
    assert get(server, "/").status_code == 200
    ctx.records.transition(SITE_ID, State.DELETED)
    server.checked.clear()                    # as if RECHECK_SECONDS had passed
    assert get(server, "/").status_code == 410


@pytest.mark.parametrize("host, label", [
    ("abc.localhost", "abc"), ("ABC.localhost:8000", "abc"), ("abc.localhost.", "abc"),
    ("abc.localhost.:8000", "abc"), ("[::1]:8000", None), ("abc.localhost:8000:1", None),
    ("localhost", None), ("a.b.localhost", None), ("abc.example.com", None), (None, None),
    ("-x.localhost", None)])
def test_site_label(host, label):
    assert site_label(host, "localhost") == label


def test_a_missing_blob_is_a_plain_500_not_a_traceback(ctx, tmp_path):
    root = tmp_path / "broken"
    root.mkdir()
    (root / "index.html").write_text("<h1>gone soon</h1>")
    publish_output(ctx, "brokenbrokenbrok", root)
    manifest = ctx.store.get_json(keys.deployment_manifest("brokenbrokenbrok"))
    ctx.store.delete([keys.blob(manifest["files"]["index.html"]["sha256"])])
    response = SiteServer(ctx).handle("brokenbrokenbrok", "GET", "/", "", {})
    assert response.status_code == 500 and b"missing" in response.body


def big_manifest(count: int) -> dict:
    """An output manifest of `count` compressible files with br and gzip variants."""
    def entry(number: int) -> dict:
        digest = f"{number:064x}"
        return {"sha256": digest, "size": 20_000, "type": "text/html; charset=utf-8",
                "encodings": {"br": {"sha256": "b" + digest[1:], "size": 5_000},
                              "gzip": {"sha256": "c" + digest[1:], "size": 6_000}}}
    files = {f"section-{n % 100:03d}/a-rather-long-page-name-{n:06d}.html": entry(n)
             for n in range(count)}
    return {"version": 1, "id": "bigsitebigsiteab", "files": files, "config": None}


def test_a_site_at_the_file_limit_is_compiled_once_and_stays_cached(ctx):
    """Its manifest is ~10 MB of JSON: it must not be fetched and parsed on every request."""
    count = ctx.settings.max_output_files
    ctx.store.put_json(keys.deployment_manifest("bigsitebigsiteab"), big_manifest(count))
    server = SiteServer(ctx)
    paths = [f"/section-{n % 100:03d}/a-rather-long-page-name-{n:06d}"
             for n in (0, count // 2, count - 1)]
    for path in paths * 2:
        assert server.handle("bigsitebigsiteab", "HEAD", path, "", {}).status_code == 200
    assert server.bucket_reads == 1
    assert server.sites.used <= server.sites.max_item


def test_only_a_missing_blob_is_the_missing_file_500(server, site, monkeypatch):
    """A bug (here a KeyError in the resolver) is not "a file of this site is missing": it
    propagates to the app, which logs it and answers 500."""
    def broken(*args, **kwargs):
        raise KeyError("sha256")
    monkeypatch.setattr("chalicelib.serving.site.resolve", broken)
    with pytest.raises(KeyError):
        get(server, "/")


def test_a_published_file_an_upload_packed_is_served_from_its_pack(ctx, tmp_path):
    """A prebuilt upload's files are in a pack (docs/DECISIONS.md#packs): publishing names the
    pack instead of storing each file again, and serving reads the file's bytes out of it."""
    page, image = b"<h1>packed page</h1>\n" * 40 + tmp_path.name.encode(), bytes(range(256)) * 3
    offsets = {hashlib.sha256(page).hexdigest(): 0, hashlib.sha256(image).hexdigest(): len(page)}
    pack = ctx.store.put_pack(page + image, offsets)
    root = tmp_path / "out"
    root.mkdir()
    (root / "index.html").write_bytes(page)
    (root / "photo.bin").write_bytes(image)
    publish_output(ctx, "packedsitepacked", root)
    files = ctx.store.get_json(keys.deployment_manifest("packedsitepacked"))["files"]
    assert files["photo.bin"]["pack"] == {"sha256": pack, "offset": len(page)}
    assert not ctx.store.exists(keys.blob(files["photo.bin"]["sha256"]))  # not stored again
    server = SiteServer(ctx)

    def fetch(path: str, **headers: str):
        return server.handle("packedsitepacked", "GET", path, "", {k.replace("_", "-"): v
                                                                   for k, v in headers.items()})
    assert fetch("/").body == page
    # A precompressed variant is a blob of its own, never in a pack.
    assert brotli.decompress(fetch("/", accept_encoding="br").body) == page
    assert fetch("/photo.bin").body == image
    part = fetch("/photo.bin", range="bytes=10-19")
    assert part.status_code == 206 and part.body == image[10:20]
