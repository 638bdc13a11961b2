"""Worker health: what each worker is doing, its errors logged once per kind, stalls noticed.

Issue 10: after one database error the workers ended for good while SMTP kept answering 250,
nothing was logged, and the watchdog kept pinging. Now every worker (pipeline, outbox, each IMAP
watcher) reports its state here and survives any exception with a backoff; the daemon pings
systemd's watchdog only while no worker is stalled, and writes the states to the
`worker_states` table, where `mailbot status` reads them.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from mailbot.logs import event
from mailbot.models import WorkerState, utcnow

BACKOFF_FIRST, BACKOFF_CAP = 1.0, 60.0
HEARTBEAT_SECONDS = 5.0
INSTANCE = socket.gethostname()  # one instance per host for now; scale-out will name them


def backoff(failures: int) -> float:
    """Capped exponential delay with jitter, so many failing workers do not retry in step."""
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, failures - 1)) * random.uniform(0.8, 1.0))


class WorkerHealth:
    """The state of one worker; written by the worker's thread, read by the daemon's loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "starting"
        self.since = utcnow()
        self._busy_at = time.monotonic()  # last progress while busy (monotonic clock)
        self.last_progress: datetime | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.stall_logged = False
        self._lock = threading.Lock()
        self._kinds: set[str] = set()  # error kinds logged in the current run of failures

    def _enter(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, utcnow()

    def busy(self) -> None:
        """Work is due and being done now."""
        with self._lock:
            self._busy_at = time.monotonic()
            self._enter("busy")

    def progress(self) -> None:
        """One unit of work (a mail) done: a long batch is not a stall. (Recovery from errors is
        only declared by `idle`, after a whole pass went through.)"""
        with self._lock:
            self._busy_at = time.monotonic()
            self.last_progress = utcnow()

    def idle(self) -> None:
        """Nothing is due (or the worker waits for the next wake-up)."""
        with self._lock:
            self._recovered()
            self._enter("idle")

    def stopped(self) -> None:
        with self._lock:
            self._enter("stopped")

    def failed(self, exc: BaseException, *, quiet: bool = False) -> float:
        """Log the error if its kind is new in this run of failures (unless the caller logs it in
        its own words: `quiet`); returns the backoff delay."""
        error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.failures += 1
            self.last_error = error[:2000]
            self._enter("failing")
            delay = backoff(self.failures)
            kind = type(exc).__name__
            if kind not in self._kinds and not quiet:
                self._kinds.add(kind)
                event("worker-error", logging.ERROR, worker=self.name, error=error, attempt=self.failures,
                      retry_in=round(delay, 1))
            return delay

    def _recovered(self) -> None:
        if self.failures:
            event("worker-recovered", worker=self.name, failures=self.failures)
        self.failures, self._kinds = 0, set()

    def busy_seconds(self) -> float:
        """How long a busy worker has gone without progress (0 when not busy)."""
        return time.monotonic() - self._busy_at if self.state == "busy" else 0.0

    def check_stall(self, stall_seconds: float) -> bool:
        """True while stalled; logs `worker-stalled` once, and `worker-resumed` when it moves again."""
        stuck = self.busy_seconds()
        stalled = stuck > stall_seconds
        if stalled and not self.stall_logged:
            event("worker-stalled", logging.ERROR, worker=self.name, busy_seconds=round(stuck),
                  hint="see `mailbot status`; a database or file system that hangs is the usual cause")
        elif self.stall_logged and not stalled:
            event("worker-resumed", worker=self.name)
        self.stall_logged = stalled
        return stalled


def record(engine: Engine, workers: Iterable[WorkerHealth]) -> None:
    """Write this instance's worker states (a heartbeat); rows of workers gone (a former run, an
    IMAP account removed by a reload) are dropped."""
    now, pid, workers = utcnow(), os.getpid(), list(workers)
    with Session(engine) as db:
        db.execute(delete(WorkerState).where(col(WorkerState.instance) == INSTANCE,
                                             col(WorkerState.worker).not_in([w.name for w in workers])))
        for worker in workers:
            db.merge(WorkerState(
                instance=INSTANCE, worker=worker.name, host=socket.gethostname(), pid=pid,
                state="stalled" if worker.stall_logged else worker.state, since=worker.since, heartbeat=now,
                busy_seconds=round(worker.busy_seconds(), 1), last_progress=worker.last_progress,
                last_error=worker.last_error if worker.failures else None, failures=worker.failures,
            ))
        db.commit()
