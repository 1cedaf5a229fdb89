"""Keep the local stack's processes running: any service that exits is started again.

Generic over the stack's list of services: every entry whose process exits is respawned with
the same command line (Service.respawn), whatever it is, including entries added after the
supervisor started. Restarts back off exponentially per service (RESTART_BASE_SECONDS doubled
per consecutive crash up to RESTART_MAX_SECONDS) and the count resets once the service has run
STABLE_SECONDS, as Kubernetes treats a crashing container (kubernetes.io/docs/concepts/workloads/
pods/pod-lifecycle/: 10 s doubled up to 5 min, reset after 10 min of running), scaled down to a
development machine where a restart costs a second. Each restart is
reported with the exit status and kept in `restarts`, so a test can tell a healed crash from
a quiet run (docs/DECISIONS.md#supervision).
"""
from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

# First restart delay: a process that exits at once is not respawned in a tight loop.
RESTART_BASE_SECONDS = 0.5
# Longest delay between two restarts of one crashing service.
RESTART_MAX_SECONDS = 30.0
# A service that ran this long before exiting starts again from RESTART_BASE_SECONDS.
STABLE_SECONDS = 30.0
# How often the supervisor looks at its services.
POLL_SECONDS = 0.2


class Supervised(Protocol):
    """What the supervisor needs of a service (devstack.services.Service)."""
    name: str
    retired: bool

    def exit_status(self) -> int | None: ...
    def respawn(self) -> None: ...


@dataclass(frozen=True)
class Restart:
    name: str
    status: int     # the exit status: negative is the signal that ended it (Popen.returncode)
    attempt: int    # consecutive restarts of this service, 1 after a stable run
    delay: float    # seconds waited before starting it again
    at: float       # time.time() of the exit's discovery


def describe(status: int) -> str:
    """An exit status as a person reads it: "exit status 1", "killed by SIGKILL"."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def backoff(attempt: int) -> float:
    """Seconds to wait before the `attempt`-th consecutive restart (1-based)."""
    return min(RESTART_BASE_SECONDS * 2 ** (attempt - 1), RESTART_MAX_SECONDS)


class Supervisor:
    """Watches `services` (a live list: entries added later are watched too) from a thread."""

    def __init__(self, services: Sequence[Supervised], say: Callable[[str], None] = print):
        self.services = services
        self.say = say
        self.restarts: list[Restart] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started: dict[str, float] = {}   # name -> when its current process started
        self._attempts: dict[str, int] = {}    # name -> consecutive restarts
        self._due: dict[str, float] = {}       # name -> when to respawn it

    def start(self) -> Supervisor:
        now = time.monotonic()
        for service in self.services:
            self._started.setdefault(service.name, now)
        self._thread = threading.Thread(target=self._run, name="devstack-supervisor", daemon=True)
        self._thread.start()
        return self

    def halt(self) -> None:
        """Restart nothing from now on; returns at once (safe in a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """halt(), then wait for the supervising thread to end (before the services stop)."""
        self.halt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(RESTART_MAX_SECONDS + 5)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for service in list(self.services):
                try:
                    self.check(service, time.monotonic())
                except Exception as error:  # one bad respawn must not end supervision
                    self.say(f"devstack: could not restart {service.name}: {error}")
                    self._due[service.name] = time.monotonic() + RESTART_MAX_SECONDS

    def check(self, service: Supervised, now: float) -> None:
        """One look at `service`: note its exit and when to respawn it; respawn it when due."""
        name = service.name
        self._started.setdefault(name, now)
        status = service.exit_status()
        if status is None or service.retired:
            return
        if name not in self._due:
            ran = now - self._started[name]
            attempt = 1 if ran >= STABLE_SECONDS else self._attempts.get(name, 0) + 1
            self._attempts[name] = attempt
            delay = backoff(attempt)
            self._due[name] = now + delay
            self.restarts.append(Restart(name, status, attempt, delay, time.time()))
            self.say(f"devstack: {name} exited ({describe(status)}) after {ran:.1f} s; "
                     f"restarting in {delay:g} s (restart {attempt} in a row)")
            return
        if now >= self._due[name] and not self.stopping:
            del self._due[name]
            service.respawn()
            self._started[name] = now
