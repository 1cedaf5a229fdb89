"""The storage module: unit tests on moto's in-process mock, one round trip over real HTTP."""
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from chalicelib import keys
from chalicelib.settings import Settings
from chalicelib.storage.presign import QuerySigner
from chalicelib.storage.store import MissingBlob, Store, make_s3_client
from tests.conftest import read_entry


@pytest.fixture
def store():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        s = Store(client, "unit")
        s.ensure_bucket()
        yield s


def test_blobs_are_written_once(store, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hello")
    assert store.upload_blobs({"h1": tmp_path / "a.txt", "h2": b"bytes"}) == 2
    assert store.upload_blobs({"h1": tmp_path / "a.txt", "h2": b"bytes"}) == 0
    assert store.get_blob("h1") == b"hello" and store.get_blob("h2") == b"bytes"


def test_missing_objects_read_as_none(store):
    assert store.get_bytes("nope") is None and store.get_json("nope.json") is None
    assert store.exists("nope") is False
    assert store.missing_blobs(["x", "y"]) == ["x", "y"]


def test_an_object_reads_as_a_stream_and_a_missing_one_as_none(store):
    store.put_bytes("cache/k", b"0123456789" * 1000)
    with store.open_stream("cache/k") as stream:
        assert stream is not None
        assert stream.read(10) == b"0123456789" and len(stream.read()) == 9990
    with store.open_stream("cache/absent") as stream:
        assert stream is None


def test_json_round_trip_and_listing(store):
    store.put_json(keys.deployment_manifest("d1"), {"files": {}})
    assert store.get_json("deployments/d1.json") == {"files": {}}
    assert [k for k, _ in store.list_keys("deployments/")] == ["deployments/d1.json"]
    store.delete(["deployments/d1.json"])
    assert store.exists("deployments/d1.json") is False


def test_download_refuses_a_missing_blob(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.download_files({tmp_path / "x": {"sha256": "absent"}})


class Index:
    """A PackLocator in memory (state/packindex.py keeps it in Redis)."""

    def __init__(self):
        self.where: dict[str, tuple[str, int]] = {}

    def locate(self, sha256s):
        return {h: self.where[h] for h in sha256s if h in self.where}

    def record(self, pack, segments):
        self.where.update({h: (pack, offset) for h, offset in segments.items()})


def test_packed_files_are_read_by_range_and_a_pack_once_per_download(tmp_path):
    with mock_aws():
        store = Store(boto3.client("s3", region_name="us-east-1"), "unit", packed=Index())
        store.ensure_bucket()
        a, b = b"first file", b"second"
        ha, hb = hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()
        pack = store.put_pack(a + b, {ha: 0, hb: len(a)})
        assert pack == hashlib.sha256(a + b).hexdigest() and store.get_blob(pack) == a + b
        entry = {"sha256": hb, "size": len(b), "pack": {"sha256": pack, "offset": len(a)}}
        assert read_entry(store, entry) == b
        assert store.keep_files([ha, hb, "absent"]) == ({ha: (pack, 0), hb: (pack, len(a))},
                                                       ["absent"], [])
        gets = []
        store.s3.meta.events.register("before-call.s3.GetObject", lambda **kw: gets.append(1))
        store.download_files({tmp_path / "a": {"sha256": ha, "size": len(a),
                                               "pack": {"sha256": pack, "offset": 0}},
                              tmp_path / "sub" / "b": entry})
        assert (tmp_path / "a").read_bytes() == a and (tmp_path / "sub" / "b").read_bytes() == b
        assert len(gets) == 1
        store.delete([keys.blob(pack)])
        with pytest.raises(MissingBlob):
            read_entry(store, entry)
        # A swept pack: its files are missing unless stored as blobs of their own.
        store.upload_blobs({ha: a})
        assert store.keep_files([ha, hb]) == ({}, [hb], [])


def test_real_http_endpoint_round_trip(s3_url, tmp_path):
    settings = Settings(s3_endpoint_url=s3_url, bucket="http-round-trip")
    real = Store(make_s3_client(settings), settings.bucket)
    real.ensure_bucket()
    payload = bytes(range(256)) * 1000
    real.upload_blobs({"big": payload})
    assert real.get_blob("big") == payload
    url = real.presign(keys.blob("big"))
    assert url.startswith(s3_url)


def test_a_manifest_is_written_at_most_once(store):
    assert store.put_json_once("deployments/d.json", {"attempt": 1}) is True
    assert store.put_json_once("deployments/d.json", {"attempt": 2}) is False
    assert store.get_json("deployments/d.json") == {"attempt": 1}


def test_a_copy_is_hashed_by_the_bucket_or_read_back_when_it_reports_nothing(store, monkeypatch):
    store.put_bytes("uploads/u/staged", b"what was sent")
    sent = hashlib.sha256(b"what was sent").hexdigest()
    assert store.copy_hashed("uploads/u/staged", "uploads/u/checked") == sent
    assert store.get_bytes("uploads/u/checked") == b"what was sent"
    assert store.copy_hashed("uploads/u/absent", "uploads/u/other") is None
    # An endpoint whose CopyObject answer carries no ChecksumSHA256: the copy is read and hashed.
    copy = store.s3.copy_object

    def without_checksum(**params):
        answer = copy(**params)
        answer["CopyObjectResult"].pop("ChecksumSHA256", None)
        return answer
    monkeypatch.setattr(store.s3, "copy_object", without_checksum)
    assert store.copy_hashed("uploads/u/staged", "uploads/u/again") == sent


def test_presigned_urls_are_sigv4_with_the_checksum_signed(s3_url):
    settings = Settings(s3_endpoint_url=s3_url, bucket="presign-v4")
    real = Store(make_s3_client(settings), settings.bucket)
    for url in (real.presign(keys.blob("x")), real.presign_put("uploads/u/x", "ab" * 32, 60)[0]):
        assert parse_qs(urlsplit(url).query)["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    url, headers = real.presign_put("uploads/u/x", "ab" * 32, 60)
    signed = parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {name.lower() for name in headers} <= set(signed)


# --- which blobs the bucket holds: LIST pages, HEADs, and the stamps Redis remembers -----------

def _counting(client) -> list[str]:
    """The S3 operations `client` sends (botocore's before-call event names each one)."""
    sent: list[str] = []
    client.meta.events.register("before-call.s3.*",
                                lambda model, **_: sent.append(model.name))
    return sent


def test_a_large_look_up_reads_list_pages_and_finds_exactly_the_stored_blobs(s3_calls):
    settings = Settings(s3_endpoint_url=s3_calls.url, bucket="look-up-many")
    real = Store(make_s3_client(settings), settings.bucket)
    real.ensure_bucket()
    stored = {hashlib.sha256(b"stored %d" % i).hexdigest(): b"stored %d" % i for i in range(300)}
    real.upload_blobs(stored)
    absent = [hashlib.sha256(b"absent %d" % i).hexdigest() for i in range(300)]
    mark = s3_calls.mark()
    stamps = real.blob_stamps([*stored, *absent])
    calls = s3_calls.since(mark)
    assert set(stamps) == set(stored)
    assert real.missing_blobs([*stored, *absent]) == sorted(absent)
    # One LIST page per first hex digit settles all 600, where a HEAD each would be 600 calls.
    assert len(calls) <= 16 and all(c.method == "GET" and "list-type=2" in c.path for c in calls)


def test_a_look_up_lost_in_a_bigger_bucket_goes_on_with_heads(store):
    # 2,200 blobs under one first digit; asked for one in 200 of them and as many absent ones:
    # a page of 1,000 keys settles 10, fewer than a LIST is worth, so the other 12 get a HEAD.
    store.upload_blobs({f"a{i:04d}": b"x" for i in range(2200)})
    present = [f"a{i:04d}" for i in range(0, 2200, 200)]
    sent = _counting(store.s3)
    assert sorted(store.blob_stamps(present + [p + "x" for p in present])) == present
    assert sent.count("ListObjectsV2") == 1 and sent.count("HeadObject") == 12


@pytest.fixture
def stamped(redis_url):
    """A Store on moto's mock with its stamps kept in the tests' Redis."""
    import redis

    from chalicelib.state.blobstamps import BlobStamps
    client = redis.Redis.from_url(redis_url)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s = Store(s3, "stamped", refresh_after=600, stamps=BlobStamps(client, 600))
        s.ensure_bucket()
        yield s
    client.flushdb()


def test_a_blob_seen_recently_costs_no_request_and_a_deleted_one_is_forgotten(stamped):
    blobs = {hashlib.sha256(b"%d" % i).hexdigest(): b"%d" % i for i in range(40)}
    stamped.upload_blobs(blobs)
    sent = _counting(stamped.s3)
    assert stamped.missing_blobs(blobs) == [] and stamped.keep_blobs(blobs) == ([], [])
    assert sent == []
    gone = sorted(blobs)[0]
    stamped.delete([keys.blob(gone)])  # as the sweep deletes
    assert stamped.missing_blobs(blobs) == [gone]


def test_a_blob_deleted_behind_the_stores_back_is_found_by_a_check_that_asks_the_bucket(stamped):
    blobs = {hashlib.sha256(b"wiped %d" % i).hexdigest(): b"wiped %d" % i for i in range(3)}
    stamped.upload_blobs(blobs)
    gone = sorted(blobs)[1]
    stamped.s3.delete_object(Bucket="stamped", Key=keys.blob(gone))  # a wiped bucket
    assert stamped.missing_blobs(blobs) == []  # what Redis remembers: no request
    assert stamped.missing_blobs(blobs, cached=False) == [gone]
    # ... and from then on it is not remembered as stored.
    assert stamped.missing_blobs(blobs) == [gone]


def test_a_stamp_older_than_refresh_after_is_not_trusted(stamped):
    old = hashlib.sha256(b"old").hexdigest()
    stamped.upload_blobs({old: b"old"})
    # Seen just over refresh_after ago (left by a process configured to trust stamps longer).
    stamped.stamps.redis.set(keys.blob_stamp(old), repr(time.time() - 601))
    sent = _counting(stamped.s3)
    assert stamped.missing_blobs([old]) == []
    assert "HeadObject" in sent


def test_urls_signed_in_bulk_are_the_urls_botocore_signs():
    with mock_aws():
        _signed_in_bulk_as_botocore_signs(Store(make_s3_client(Settings()), "bulk"))


def _signed_in_bulk_as_botocore_signs(store: Store) -> None:
    items = [(keys.staged_blob("u" * 16, h), h) for h in
             (hashlib.sha256(b"%d" % i).hexdigest() for i in range(30))]
    items.append((keys.blob(items[0][1]), items[0][1]))
    for _ in range(5):  # botocore stamps the current second: compare URLs made within one
        ours = store.presign_puts(items, 600)
        theirs = [store.presign_put(key, h, 600) for key, h in items]
        dates = {parse_qs(urlsplit(url).query)["X-Amz-Date"][0] for url, _ in ours + theirs}
        if len(dates) == 1:
            break
    assert len(dates) == 1
    assert ours == theirs
    # ... and they are signed here, not by botocore again: the signer follows botocore's URL.
    (url, headers), (key, _) = theirs[0], items[0]
    secret = store.s3._request_signer._credentials.get_frozen_credentials().secret_key
    assert QuerySigner.following(url, key, headers, secret) is not None
    assert QuerySigner.following(url, key, headers, "another secret") is None

R2 = Settings(s3_endpoint_url="https://acct.r2.cloudflarestorage.com", s3_region="auto", bucket="site",
              s3_access_key_id="r2-key", s3_secret_access_key="r2-secret")


def test_an_r2_client_signs_with_its_own_keys_and_region_not_lambdas(monkeypatch):
    """In Lambda the AWS_* variables hold the role's temporary keys; R2 must get its token's keys,
    SigV4 with region "auto", and no session token (signing happens locally: no server needed)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAROLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "role-session")
    store = Store(make_s3_client(R2, boto3.session.Session()), R2.bucket)
    for url in (store.presign(keys.blob("x")), store.presign_put("uploads/u/x", "ab" * 32, 60)[0]):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        assert parts.netloc == "acct.r2.cloudflarestorage.com" and parts.path.startswith("/site/")
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        key, _date, region, service, _ = query["X-Amz-Credential"][0].split("/")
        assert (key, region, service) == ("r2-key", "auto", "s3")
        assert "X-Amz-Security-Token" not in query


def test_without_keys_of_its_own_the_client_uses_boto3s_chain_and_the_aws_region(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAROLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "role-session")
    # A new session reads the environment now (boto3's default one keeps what it first read).
    client = make_s3_client(Settings(aws_region="eu-west-1", bucket="b"), boto3.session.Session())
    url = Store(client, "b").presign(keys.blob("x"))
    query = parse_qs(urlsplit(url).query)
    key, _date, region, _, _ = query["X-Amz-Credential"][0].split("/")
    assert (key, region) == ("ASIAROLEKEY", "eu-west-1") and query["X-Amz-Security-Token"] == ["role-session"]

def test_only_a_bucket_that_does_not_answer_counts_as_unreachable():
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    from chalicelib.storage.store import unreachable

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                           "PutObject")
    assert unreachable(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert unreachable(ReadTimeoutError(endpoint_url="http://127.0.0.1:9"))
    assert unreachable(client_error("SlowDown", 503))
    assert not unreachable(client_error("NoSuchKey", 404))
    assert not unreachable(client_error("AccessDenied", 403))
    assert not unreachable(ValueError("a bug of ours"))


def test_the_first_failure_of_a_batch_cancels_the_calls_not_yet_started():
    store, calls = Store(s3_client=None, bucket="b", workers=1), []

    def fail(item: int) -> int:
        calls.append(item)
        raise ConnectionError("the bucket is down")
    with pytest.raises(ConnectionError):
        store._map(fail, list(range(100)))
    assert len(calls) < 5  # not once per file: each call would spend boto3's retry budget
