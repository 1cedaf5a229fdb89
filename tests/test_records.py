"""The state machine against a real Redis: legal moves pass, illegal ones are refused."""
import pytest
import redis

from chalicelib.state.records import (
    MAX_WARNINGS,
    TRANSITIONS,
    WARNING_CHARS,
    IllegalTransition,
    Records,
    State,
    public_view,
    warnings_field,
)


@pytest.fixture
def records(redis_url):
    store = Records(redis.Redis.from_url(redis_url))
    store.create({"id": "dep1", "repo_url": "file:///r"})
    return store


def test_a_new_record_is_queued_with_timestamps(records):
    record = records.get("dep1")
    assert record["status"] == "queued" and record["created_at"] and record["repo_url"]
    assert records.list_ids() == ["dep1"]


def test_the_happy_path(records):
    assert records.transition("dep1", State.BUILDING) == (State.QUEUED, 1)
    records.transition("dep1", State.DEPLOYED, attempt=1)
    assert records.status("dep1") is State.DEPLOYED


def test_an_uploading_record_moves_to_queued_with_its_job_pushed_in_the_same_step(records):
    records.create({"id": "dep2", "repo_url": "file:///r"}, status=State.UPLOADING)
    with pytest.raises(IllegalTransition):
        records.transition("dep2", State.BUILDING)  # never built before its source is uploaded
    assert records.redis.llen("jobs") == 0
    assert records.transition("dep2", State.QUEUED, push_to="jobs", commit="c" * 40)[0] is State.UPLOADING
    assert records.redis.lrange("jobs", 0, -1) == [b"dep2"] and records.get("dep2")["commit"] == "c" * 40
    with pytest.raises(IllegalTransition):  # a second move is refused, and pushes nothing
        records.transition("dep2", State.QUEUED, push_to="jobs")
    assert records.redis.llen("jobs") == 1


def test_a_job_delivered_twice_cannot_start_twice(records):
    records.transition("dep1", State.BUILDING, only_from={State.QUEUED})
    with pytest.raises(IllegalTransition):
        records.transition("dep1", State.BUILDING, only_from={State.QUEUED})


@pytest.mark.parametrize("start", list(State))
@pytest.mark.parametrize("target", list(State))
def test_every_move_follows_the_table(records, start, target):
    records.redis.hset("percel:dep:dep1", "status", start.value)
    if target in TRANSITIONS[start]:
        records.transition("dep1", target, error="x")
        assert records.status("dep1") is target
    else:
        with pytest.raises(IllegalTransition):
            records.transition("dep1", target)
        assert records.status("dep1") is start


def test_unknown_record_cannot_move(records):
    with pytest.raises(IllegalTransition):
        records.transition("nope", State.BUILDING)
    assert records.get("nope") is None


def test_fields_travel_with_the_transition(records):
    records.transition("dep1", State.BUILDING)
    records.transition("dep1", State.FAILED, error="build exited 1")
    assert records.get("dep1")["error"] == "build exited 1"


def test_a_stale_attempt_is_fenced_off(records):
    _, first = records.transition("dep1", State.BUILDING)
    records.transition("dep1", State.QUEUED, attempt=first)  # the reaper hands it back
    _, second = records.transition("dep1", State.BUILDING)
    assert second == first + 1
    with pytest.raises(IllegalTransition):  # the first runner wakes up and reports
        records.transition("dep1", State.FAILED, attempt=first, error="late")
    records.transition("dep1", State.DEPLOYED, attempt=second)
    record = records.get("dep1")
    assert record["status"] == "deployed" and "error" not in record


def test_warnings_are_a_bounded_json_list_and_absent_means_none():
    """The record holds strings; the API shows `warnings` as a list, the first MAX_WARNINGS
    cut to WARNING_CHARS, then how many more the build log has."""
    many = [f"_redirects line {n}: " + "x" * 1000 for n in range(MAX_WARNINGS + 3)]
    shown = public_view({"id": "a", "status": "deployed", "warnings": warnings_field(many)})["warnings"]
    assert isinstance(shown, list) and len(shown) == MAX_WARNINGS + 1
    assert shown[0] == many[0][:WARNING_CHARS]
    assert shown[-1] == "... and 3 more in the build log"
    assert public_view({"id": "a", "status": "queued"})["warnings"] == []
