"""The storage module: unit tests on moto's in-process mock, one round trip over real HTTP."""
import hashlib
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from chalicelib import keys
from chalicelib.settings import Settings
from chalicelib.storage.store import Store, make_s3_client


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


def test_json_round_trip_and_listing(store):
    store.put_json(keys.deployment_manifest("d1"), {"files": {}})
    assert store.get_json("deployments/d1.json") == {"files": {}}
    assert [k for k, _ in store.list_keys("deployments/")] == ["deployments/d1.json"]
    store.delete(["deployments/d1.json"])
    assert store.exists("deployments/d1.json") is False


def test_download_refuses_a_missing_blob(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.download_blobs({tmp_path / "x": "absent"})


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
