"""End to end: cancelling a running build and deleting a live deployment, over HTTP."""
import time

from tests.conftest import make_repo, site_host


def wait_status(http, deployment_id, wanted, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, record = http.json("GET", f"/api/deployments/{deployment_id}")
        if record["status"] == wanted:
            return record
        time.sleep(0.3)
    raise AssertionError(f"{deployment_id} never reached {wanted}: {record}")


def test_cancelling_a_running_build_kills_it(http, stack, tmp_path):
    url = make_repo(tmp_path / "slow", {
        "package.json": '{"name": "slow", "version": "1.0.0", "scripts": '
                        '{"build": "echo started-long-build && sleep 300"}}',
        "index.html": "x"})
    _, created = http.json("POST", "/api/deployments", {"repo_url": url})
    deployment_id = created["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the build itself is running
        _, logs = http.json("GET", f"/api/deployments/{deployment_id}/logs")
        if any("started-long-build" in line for line in logs["lines"]):
            break
        time.sleep(0.3)
    status, record = http.json("POST", f"/api/deployments/{deployment_id}/cancel")
    assert status == 200 and record["status"] == "cancelled"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, logs = http.json("GET", f"/api/deployments/{deployment_id}/logs")
        if any("cancelled" in line for line in logs["lines"]):
            break
        time.sleep(0.3)
    assert any("build command `npm run build` failed: cancelled" in line
               for line in logs["lines"]), logs
    assert http.json("GET", f"/api/deployments/{deployment_id}")[1]["status"] == "cancelled"
    status, body = http.json("POST", f"/api/deployments/{deployment_id}/cancel")
    assert status == 409 and body["error"]["code"] == "conflict"


def test_deleting_a_live_deployment_answers_410(http, stack, tmp_path):
    url = make_repo(tmp_path / "live", {"index.html": "<p>live</p>"})
    _, created = http.json("POST", "/api/deployments", {"repo_url": url})
    deployment_id = created["id"]
    wait_status(http, deployment_id, "deployed")
    host = site_host(stack, deployment_id)
    assert http.request("GET", "/", host=host)[2] == b"<p>live</p>"
    status, record = http.json("DELETE", f"/api/deployments/{deployment_id}")
    assert status == 200 and record["status"] == "deleted"
    deadline = time.monotonic() + 15  # a cached manifest is re-checked within 5 s
    while http.request("GET", "/", host=host)[0] != 410 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert http.request("GET", "/", host=host)[0] == 410
    assert http.json("DELETE", f"/api/deployments/{deployment_id}")[0] == 200  # idempotent
    assert http.json("DELETE", "/api/deployments/zzzzzzzzzzzzzzzz")[0] == 404


def test_two_runners_build_side_by_side_without_mixing_outputs(http, stack, tmp_path):
    if len(stack.runners()) < 2:
        stack.add_runner()
    ids = {}
    for name in ("left", "right"):
        script = (f"sleep 3 && mkdir -p dist && echo built-{name} > dist/index.html "
                  f"&& echo $HOME > dist/home.txt")
        url = make_repo(tmp_path / name, {
            "package.json": '{"name": "%s", "version": "1.0.0", "scripts": {"build": "%s"}}'
                            % (name, script)})
        _, created = http.json("POST", "/api/deployments", {"repo_url": url})
        ids[name] = created["id"]
    deadline, overlapped = time.monotonic() + 120, False
    while time.monotonic() < deadline:
        states = {http.json("GET", f"/api/deployments/{i}")[1]["status"] for i in ids.values()}
        overlapped |= states == {"building"}
        if states <= {"deployed", "failed"}:
            break
        time.sleep(0.2)
    assert overlapped, "the two builds never ran at the same time"
    homes = set()
    for name, deployment_id in ids.items():
        assert http.json("GET", f"/api/deployments/{deployment_id}")[1]["status"] == "deployed"
        assert http.site(deployment_id, "/")[2] == f"built-{name}\n".encode()
        homes.add(http.site(deployment_id, "/home.txt")[2])
    assert len(homes) == 2  # each build had its own private home (npm cache, config)
