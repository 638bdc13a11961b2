"""Judge mails in worker processes, each mail bounded in wall-clock time and memory.

One hostile mail must not take the daemon down: a lying nested ZIP grew the daemon by 8 GB
and parser paths ran for minutes (issue 10). So `judge` (pure, see mailbot/judge.py) runs in
a separate process with RLIMIT_AS set to `[limits] judge_memory_mb`, and a mail that takes
longer than `judge_seconds` has its worker killed and replaced. Either way the mail gets a
plain Quarantine verdict (`judge_timeout`, `judge_memory`, `judge_crashed`) and the daemon
goes on. The same pool gives the pipeline all cores for batches (`judge_many`).

Why pebble and not concurrent.futures: a ProcessPoolExecutor cannot cancel a task that has
started, so a hung parse would hold a worker for ever, and a worker that dies marks the whole
executor broken. pebble's ProcessPool times out a running task by killing just that worker,
starts a new one, and reports a dead worker as ProcessExpired on that task alone.

Workers come from a forkserver with this module (and so the parser, libmagic and the rules)
preloaded: never a fork of the daemon with its threads and sockets, and a new worker costs a
fork, not an interpreter start. Results travel back pickled; nothing here touches a database.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager

from pebble import ProcessExpired, ProcessPool

from mailbot.config import Settings
from mailbot.judge import Judgement, judge
from mailbot.mail import Envelope
from mailbot.verdicts import Quarantine

# A worker is replaced after this many mails, so whatever a parser leaves behind (fragmented
# heap after a MemoryError, caches) cannot grow without bound.
MAX_TASKS = 500


class JudgeUnavailable(Exception):
    """The pool is shutting down: the mail was not judged and must be tried again later."""


def _verdict(reason: str) -> Judgement:
    return Judgement(None, Quarantine(reason), ["judge"])


@contextmanager
def _memory_limit(megabytes: int) -> Iterator[None]:
    """RLIMIT_AS while judging only: receiving the next mail or sending a result never fails on
    it (a worker dying between tasks would leave pebble without a task to blame)."""
    before = resource.getrlimit(resource.RLIMIT_AS)
    soft = megabytes * 1024 * 1024
    if before[1] != resource.RLIM_INFINITY:
        soft = min(soft, before[1])
    resource.setrlimit(resource.RLIMIT_AS, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, before)


def judge_in_worker(raw: bytes, envelope: Envelope, settings: Settings) -> Judgement:
    """Runs in a worker process: the limit is set per mail, so a reload takes effect at once."""
    megabytes = settings.limits.judge_memory_mb
    try:
        with _memory_limit(megabytes):
            return judge(raw, envelope, settings)
    except MemoryError:
        return _verdict(f"judge_memory: judging needed more than {megabytes} MB")
    except RecursionError as exc:
        return _verdict(f"judge_failed: RecursionError: {exc}")
    except Exception as exc:  # a pure function failing here fails the same way every time: a human looks
        return _verdict(f"judge_failed: {type(exc).__name__}: {exc}"[:500])


class JudgePool:
    """Worker processes that judge mails; thread-safe, one per daemon (the CLI makes its own)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self._closed = False

    def _new_pool(self) -> ProcessPool:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return ProcessPool(max_workers=self.workers, max_tasks=MAX_TASKS, context=context)

    def _running(self) -> ProcessPool:
        """The pebble pool, replaced if it broke (it gives up when a worker dies between tasks)."""
        with self._lock:
            if self._closed:
                raise JudgeUnavailable("the judge pool is closed")
            if not self._pool.active:
                self._pool.stop()  # type: ignore[no-untyped-call]
                self._pool = self._new_pool()
            return self._pool

    def judge(self, raw: bytes, envelope: Envelope, settings: Settings) -> Judgement:
        return self.judge_many([(raw, envelope)], settings)[0]

    def judge_many(self, items: Sequence[tuple[bytes, Envelope]], settings: Settings) -> list[Judgement]:
        """Judge every (raw, envelope) on all workers at once; results in the order given."""
        seconds = settings.limits.judge_seconds
        pool = self._running()
        futures = [pool.schedule(judge_in_worker, (raw, envelope, settings), timeout=seconds)
                   for raw, envelope in items]
        results: list[Judgement] = []
        for future in futures:
            try:
                results.append(future.result())
            except FutureTimeout:
                results.append(_verdict(f"judge_timeout: judging took more than {seconds:g} s"))
            except ProcessExpired as exc:
                if self._closed:
                    raise JudgeUnavailable("the judge pool closed while judging") from exc
                results.append(_verdict(f"judge_crashed: the worker died (exit code {exc.exitcode})"))
            except (CancelledError, RuntimeError) as exc:  # stopped or broken under us: try again later
                raise JudgeUnavailable(f"the judge pool failed: {type(exc).__name__}: {exc}") from exc
        return results

    def close(self) -> None:
        """Stop the workers (a mail being judged is abandoned and tried again at the next start)."""
        with self._lock:
            self._closed = True
            self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join()


_shared: JudgePool | None = None
_shared_lock = threading.Lock()


def shared() -> JudgePool:
    """This process's pool, started on first use: the CLI and tests that do not bring their own."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = JudgePool()
        return _shared
