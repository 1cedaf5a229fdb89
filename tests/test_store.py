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
