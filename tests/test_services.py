"""devstack's admin token: what `make run` prints and keeps between starts."""
import stat

from devstack.services import admin_token


def test_make_run_keeps_one_private_admin_token_across_starts(tmp_path):
    first = admin_token(tmp_path, {})
    kept = tmp_path / "admin-token"
    assert kept.read_text().strip() == first and len(first) > 40
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert admin_token(tmp_path, {}) == first                      # the next start reuses it


def test_percel_admin_token_wins_and_writes_nothing(tmp_path):
    assert admin_token(tmp_path, {"PERCEL_ADMIN_TOKEN": "chosen"}) == "chosen"
    assert not (tmp_path / "admin-token").exists()


def test_the_embedded_bucket_survives_a_kill_9_of_its_server(tmp_path):
    import signal

    import boto3

    from devstack import services
    s3 = services.start_s3(tmp_path)
    port = int(s3.url.rsplit(":", 1)[1])
    client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
    try:
        client.create_bucket(Bucket="kept")
        client.put_object(Bucket="kept", Key="blobs/a", Body=b"first", ContentType="text/css")
        client.put_object(Bucket="kept", Key="gone", Body=b"deleted later")
        client.delete_objects(Bucket="kept", Delete={"Objects": [{"Key": "gone"}]})
        s3.process.send_signal(signal.SIGKILL)
        s3.process.wait()
        s3 = services.start_s3(tmp_path, port)            # the same state folder
        answer = client.get_object(Bucket="kept", Key="blobs/a")
        assert answer["Body"].read() == b"first" and answer["ContentType"] == "text/css"
        assert [o["Key"] for o in client.list_objects_v2(Bucket="kept")["Contents"]] == ["blobs/a"]
    finally:
        s3.stop()


def test_the_recording_keeps_only_requests_that_change_the_bucket(tmp_path):
    import json

    from devstack.s3_server import compact
    recording = tmp_path / "recording.jsonl"
    lines = [json.dumps({"method": m, "url": f"http://h/b/{m}"}) for m in ("PUT", "GET", "HEAD", "DELETE")]
    recording.write_text("\n".join(lines) + '\n{"method": "PUT", "url": "http://h/b/cut sh')  # a kill -9
    assert [e["method"] for e in compact(recording)] == ["PUT", "DELETE"]
    assert [json.loads(line)["method"] for line in recording.read_text().splitlines()] == ["PUT", "DELETE"]
