"""End to end: cancelling a running build and deleting a live deployment, over HTTP."""
import time
from pathlib import Path

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
    """The runner polls the cancel flag every second (docs/ARCHITECTURE.md), so the build
    stops within about 1 s; asserted with a generous margin, 5 s, on a shared machine."""
    url = make_repo(tmp_path / "slow", {
        "package.json": '{"name": "slow", "version": "1.0.0", "scripts": '
                        '{"build": "echo started-long-build && sleep %d"}}' % SLEEP_MARK,
        "index.html": "x"})
    _, created = http.json("POST", "/api/deployments", {"repo_url": url})
    deployment_id = created["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the build itself is running
        _, logs = http.json("GET", f"/api/deployments/{deployment_id}/logs")
        if any("started-long-build" in line for line in logs["lines"]):
            break
        http.check_runners()
        time.sleep(0.3)
    assert sleeping_builds(), "the build's sleep is not running"
    status, record = http.json("POST", f"/api/deployments/{deployment_id}/cancel")
    cancelled_at = time.monotonic()
    assert status == 200 and record["status"] == "cancelled"
    while time.monotonic() < cancelled_at + 30:
        _, logs = http.json("GET", f"/api/deployments/{deployment_id}/logs")
        if any("cancelled" in line for line in logs["lines"]):
            break
        time.sleep(0.1)
    stopped_after = time.monotonic() - cancelled_at
    assert any("build command `npm run build` failed: cancelled" in line
               for line in logs["lines"]), logs
    assert stopped_after < 5, f"the build stopped {stopped_after:.1f} s after the cancel"
    assert sleeping_builds() == []  # the build's processes are gone, not only its record
    assert http.json("GET", f"/api/deployments/{deployment_id}")[1]["status"] == "cancelled"
    status, body = http.json("POST", f"/api/deployments/{deployment_id}/cancel")
    assert status == 409 and body["error"]["code"] == "conflict"


SLEEP_MARK = 297  # an unusual duration, so the build's own `sleep` can be found in /proc


def sleeping_builds() -> list[int]:
    """Pids of processes running `sleep SLEEP_MARK` (sandboxed processes are visible here)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == [b"sleep", str(SLEEP_MARK).encode()]:
            found.append(int(proc.name))
    return found


def test_deleting_a_live_deployment_answers_410(http, stack, tmp_path):
    url = make_repo(tmp_path / "live", {"index.html": "<p>live</p>"})
    _, created = http.json("POST", "/api/deployments", {"repo_url": url})
    deployment_id = created["id"]
    wait_status(http, deployment_id, "deployed")
    host = site_host(stack, deployment_id)
    assert http.request("GET", "/", host=host)[2] == b"<p>live</p>"
    status, record = http.json("DELETE", f"/api/deployments/{deployment_id}")
    deleted_at = time.monotonic()
    assert status == 200 and record["status"] == "deleted"
    # The README promises 410 "within 5 s everywhere" (a cached manifest is re-checked every
    # 5 s); a 1 s margin covers the request itself on a shared machine.
    while http.request("GET", "/", host=host)[0] != 410 and time.monotonic() < deleted_at + 15:
        time.sleep(0.2)
    gone_after = time.monotonic() - deleted_at
    assert http.request("GET", "/", host=host)[0] == 410
    assert gone_after < 6, f"the site answered 410 only {gone_after:.1f} s after the DELETE"
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
