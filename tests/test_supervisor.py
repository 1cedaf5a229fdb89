"""devstack/supervisor.py: which exits are restarted, when, and what is said about them."""
from __future__ import annotations

from dataclasses import dataclass, field

from devstack.supervisor import RESTART_MAX_SECONDS, STABLE_SECONDS, Supervisor, backoff, describe


@dataclass
class FakeService:
    """A service whose process exits when told to; respawn() starts a new one."""
    name: str
    status: int | None = None
    retired: bool = False
    spawned: list[float] = field(default_factory=list)

    def exit_status(self) -> int | None:
        return self.status

    def respawn(self) -> None:
        self.status = None
        self.spawned.append(len(self.spawned))


def supervised(*services: FakeService) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    supervisor = Supervisor(list(services), said.append)
    for service in services:
        supervisor.check(service, 0.0)  # what start() notes: each one running since 0
    return supervisor, said


def test_backoff_doubles_from_half_a_second_up_to_its_cap():
    assert [backoff(n) for n in range(1, 6)] == [0.5, 1, 2, 4, 8]
    assert backoff(40) == RESTART_MAX_SECONDS


def test_exit_statuses_read_as_a_person_says_them():
    assert describe(-9) == "killed by SIGKILL"
    assert describe(1) == "exit status 1"


def test_a_dead_service_is_restarted_after_its_delay_and_the_restart_is_told():
    runner, api = FakeService("runner-1"), FakeService("api")
    supervisor, said = supervised(runner, api)
    runner.status = -9
    supervisor.check(runner, 5.0)
    supervisor.check(api, 5.0)
    assert said == ["devstack: runner-1 exited (killed by SIGKILL) after 5.0 s; "
                    "restarting in 0.5 s (restart 1 in a row)"]
    supervisor.check(runner, 5.2)
    assert runner.spawned == []                      # not before its delay
    supervisor.check(runner, 5.5)
    assert runner.spawned == [0] and runner.status is None
    assert api.spawned == []                         # the others are left alone
    assert [(r.name, r.status, r.delay) for r in supervisor.restarts] == [("runner-1", -9, 0.5)]


def test_a_crash_loop_backs_off_and_a_stable_run_resets_it():
    redis = FakeService("redis")
    supervisor, _ = supervised(redis)
    now = 0.0
    for _ in range(4):                               # exits right after each start
        redis.status = 1
        supervisor.check(redis, now)
        now += supervisor.restarts[-1].delay
        supervisor.check(redis, now)
    assert [r.delay for r in supervisor.restarts] == [0.5, 1, 2, 4]
    redis.status = 1                                 # this time it ran a long while first
    supervisor.check(redis, now + STABLE_SECONDS)
    assert supervisor.restarts[-1].delay == 0.5 and supervisor.restarts[-1].attempt == 1


def test_a_service_stopped_on_purpose_or_after_a_halt_stays_down():
    stopped, crashed = FakeService("cleanup", status=0, retired=True), FakeService("s3")
    supervisor, said = supervised(stopped, crashed)
    supervisor.check(stopped, 10.0)
    assert said == [] and stopped.spawned == []
    crashed.status = -15
    supervisor.check(crashed, 10.0)
    supervisor.halt()                                # Ctrl-C: the children got SIGINT too
    supervisor.check(crashed, 20.0)
    assert crashed.spawned == []


def test_services_added_later_are_supervised_too():
    first = FakeService("runner-0")
    services = [first]
    supervisor = Supervisor(services, lambda line: None)
    added = FakeService("upload-worker", status=1)
    services.append(added)                           # e.g. Stack.add_runner, a new service
    supervisor.check(added, 0.0)
    supervisor.check(added, 1.0)
    assert added.spawned == [0]
