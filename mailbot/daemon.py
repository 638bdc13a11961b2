"""Composition root: database, SMTP intake, pipeline and outbox workers, scheduler, signals.

Shutdown is ordered so nothing is lost: refuse new mail (421), let in-flight DATA finish
storing, finish the message being processed, then stop. Anything not yet processed or sent
is still in the spool or the outbox and is picked up at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from datetime import datetime

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from mailbot import config, db, health, inbox, overdue, pipeline, sdnotify, secret, selfcheck
from mailbot.config import Settings
from mailbot.health import WorkerHealth
from mailbot.intake_imap import ImapWatcher
from mailbot.intake_smtp import SmtpIntake, factory
from mailbot.judgepool import JudgePool
from mailbot.logs import LOGGER, event
from mailbot.models import utcnow
from mailbot.notices import Notices
from mailbot.outbox import Courier
from mailbot.smtp_limits import pause_on_resource_errors
from mailbot.spool_writer import SpoolWriter
from mailbot.web.app import CasePage
from mailbot.web.metrics import Metrics
from mailbot.web.ops import Ops
from mailbot.web.server import listen

DRAIN_SECONDS = 30.0
BATCH = 50
HEALTH_SECONDS = 5.0


def on_loop(action: Callable[[], object]) -> Callable[[], Coroutine[None, None, None]]:
    """Wrap a quick callable as a coroutine job, so APScheduler runs it on the event loop."""

    async def job() -> None:
        action()

    return job


class Worker:
    """Runs a blocking `step` in a thread whenever woken, until a step finds nothing to do;
    then sleeps until the next row that waits out a retry backoff is due (`next_due`).

    Supervised: any exception is logged once per kind (`worker-error`), the worker rests for a
    backoff and tries again, so a database outage never ends it (issue 10).
    """

    def __init__(self, name: str, step: Callable[[], int], next_due: Callable[[], datetime | None]) -> None:
        self.name = name
        self.step = step
        self.next_due = next_due
        self.health = WorkerHealth(name)
        self.wake = asyncio.Event()
        self.halt = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self.halt.is_set()

    def stop(self) -> None:
        self.halt.set()
        self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        while not self.stopping:
            await self.wake.wait()
            self.wake.clear()
            try:
                due = await self._work()
            except Exception as exc:
                delay = self.health.failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.halt.wait(), delay)
                self.wake.set()
                continue
            self.health.idle()
            if timer is not None:
                timer.cancel()
            if due is not None:
                delay = max(0.0, (due - utcnow()).total_seconds())
                timer = loop.call_later(delay, self.wake.set)
        self.health.stopped()

    async def _work(self) -> datetime | None:
        """Steps until one finds less than a batch; returns when the next waiting row is due."""
        self.health.busy()
        while not self.stopping and await asyncio.to_thread(self.step) >= BATCH:
            self.health.progress()
        return await asyncio.to_thread(self.next_due)


class Job:
    """A periodic check run in a thread, supervised like a worker: an error is logged once per
    kind and the next run simply tries again."""

    def __init__(self, name: str, action: Callable[[], object]) -> None:
        self.action = action
        self.health = WorkerHealth(name)

    async def run(self) -> None:
        self.health.busy()
        try:
            await asyncio.to_thread(self.action)
        except Exception as exc:
            self.health.failed(exc)
        else:
            self.health.idle()


class Daemon:
    def __init__(self, config_path: str, settings: Settings) -> None:
        self.config_path = config_path
        self.current = settings
        self.engine: Engine = db.make_engine(settings.database.url, timeout=settings.database.store_timeout_seconds)
        self.notices = Notices(settings)
        self.courier = Courier(self.engine, settings)
        self.writer = SpoolWriter(self.engine)  # group commit for SMTP and every IMAP watcher
        self.judges = JudgePool()  # one per daemon: the pipeline, SMTP and every IMAP watcher share it
        self.stop_requested = asyncio.Event()
        self.watchers: list[ImapWatcher] = []
        self.watchdog = False
        self.jobs = [Job("receipt-window", self.courier.log_breaches),
                     Job("answer-targets", lambda: overdue.log_overdue(self.engine))]
        self.listeners: list[web.AppRunner] = []

    def settings(self) -> Settings:
        return self.current

    def reload(self) -> None:
        """SIGHUP: take a good edit of config.toml; keep running on the old one if it is broken."""
        try:
            fresh = secret.ensure(config.load(self.config_path))
            # The same checks as check-config: a missing template folder taken on would fail
            # every mail until they all end in quarantine.
            problems = selfcheck.problems(fresh)
        except config.ConfigError as exc:
            problems = exc.problems
        if problems:
            for problem in problems:
                event("config-rejected", logging.WARNING, problem=problem)
            return
        fixed = [key for key, old, new in (
            ("smtp.host", self.current.smtp.host, fresh.smtp.host),
            ("smtp.port", self.current.smtp.port, fresh.smtp.port),
            ("database.url", self.current.database.url, fresh.database.url),
            ("database.store_timeout_seconds", self.current.database.store_timeout_seconds,
             fresh.database.store_timeout_seconds),
            ("web.enabled", self.current.web.enabled, fresh.web.enabled),
            ("web.host", self.current.web.host, fresh.web.host),
            ("web.port", self.current.web.port, fresh.web.port),
            ("ops.enabled", self.current.ops.enabled, fresh.ops.enabled),
            ("ops.host", self.current.ops.host, fresh.ops.host),
            ("ops.port", self.current.ops.port, fresh.ops.port),
        ) if old != new]
        for key in fixed:
            event("config-restart-needed", key=key, file=self.config_path)
        accounts_changed = fresh.imap.accounts != self.current.imap.accounts
        self.current = fresh
        self.notices = Notices(fresh)
        self.courier.settings = fresh
        if accounts_changed:
            self.loop.create_task(self._restart_watchers())
        event("config-reloaded", file=self.config_path)

    def _process_batch(self) -> int:
        count = pipeline.process_pending(self.engine, self.current, BATCH, self.notices,
                                         should_stop=self._between_mails,
                                         judges=self.judges)
        if count:
            self.loop.call_soon_threadsafe(self.outbox.wake.set)
        return count

    def _between_mails(self) -> bool:
        """Called before each mail of a batch: counts as progress, and says whether to stop."""
        self.pipeline.health.progress()
        return self.pipeline.stopping

    def healths(self) -> list[WorkerHealth]:
        return [self.pipeline.health, self.outbox.health, *(job.health for job in self.jobs),
                *(watcher.health for watcher in self.watchers)]

    async def _check_health(self) -> None:
        """On the event loop: note stalled workers, and ping the watchdog only while none is.

        A worker in a step without progress for `stall_seconds` (a hung database or file
        system) stops the pings, so systemd restarts us; a worker that fails and retries (the
        database is down) is not stalled: it goes on by itself once the fault is gone, and a
        restart would not fix the fault.
        """
        stall = self.current.daemon.stall_seconds
        stalled = [w.name for w in self.healths() if w.check_stall(stall)]
        if stalled:
            sdnotify.status(f"stalled: {', '.join(stalled)}")
        elif self.watchdog:
            sdnotify.watchdog()

    async def _heartbeats(self) -> None:
        """Write the worker states every few seconds for `mailbot status`; never ends on an error."""
        writer = WorkerHealth("heartbeat")
        while not self.stop_requested.is_set():
            try:
                await asyncio.to_thread(health.record, self.engine, self.healths())
                writer.idle()
            except Exception as exc:
                writer.failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), health.HEARTBEAT_SECONDS)

    def _start_watchers(self) -> None:
        self.watchers = [ImapWatcher(account, self.engine, self.settings, self.on_stored, self.judges, self.writer)
                         for account in self.current.imap.accounts]
        for watcher in self.watchers:
            watcher.start()

    async def _stop_watchers(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(watcher.stop) for watcher in self.watchers))
        self.watchers = []

    async def _restart_watchers(self) -> None:
        """A reload that changes [[imap.accounts]]: each watcher stops between messages, then
        the new set starts; mail is only ever moved after its commit, so nothing is lost."""
        await self._stop_watchers()
        self._start_watchers()

    def on_stored(self, _spool_id: int) -> None:
        """A mail reached the spool (SMTP), or was stored and processed already (IMAP watchers
        process their own mail): wake both workers, so its receipt goes out at once."""
        self.loop.call_soon_threadsafe(self.pipeline.wake.set)
        self.loop.call_soon_threadsafe(self.outbox.wake.set)

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        settings = self.current
        self.pipeline = Worker("pipeline", self._process_batch, lambda: inbox.next_due(self.engine))
        self.outbox = Worker("outbox", lambda: self.courier.deliver_due(BATCH, self.outbox.health.progress),
                             self.courier.next_due)
        intake = SmtpIntake(self.engine, self.settings, self.on_stored, self.judges, self.writer)
        pause_on_resource_errors(self.loop)
        server = await self.loop.create_server(factory(intake), settings.smtp.host, settings.smtp.port)
        port = server.sockets[0].getsockname()[1]
        if settings.web.enabled:
            page = CasePage(self.engine, self.settings, self.outbox.wake.set).app()
            self.listeners.append(await listen(page, settings.web.host, settings.web.port))
        metrics = Metrics(self.engine, lambda: self.watchers) if settings.ops.enabled else None
        if metrics is not None:
            LOGGER.addHandler(metrics.handler)
            self.listeners.append(await listen(Ops(self.engine, metrics).app(), settings.ops.host, settings.ops.port))
        self._start_watchers()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self.stop_requested.set)
        self.loop.add_signal_handler(signal.SIGHUP, self.reload)

        # Jobs are coroutines so APScheduler runs them on the event loop, not in its thread pool:
        # asyncio.Event is not thread-safe, and the watchdog must prove the loop itself is alive.
        scheduler = AsyncIOScheduler()
        scheduler.add_job(on_loop(self.pipeline.wake.set), "interval", seconds=30, id="spool-sweep")
        scheduler.add_job(on_loop(self.outbox.wake.set), "interval", seconds=5, id="outbox-deliver")
        scheduler.add_job(self.jobs[0].run, "interval", seconds=60, id="receipt-window")
        scheduler.add_job(self.jobs[1].run, "interval", seconds=60, id="answer-targets",
                          next_run_time=utcnow())  # first check at start
        scheduler.start()
        tasks = [asyncio.create_task(self.pipeline.run()), asyncio.create_task(self.outbox.run())]
        self.pipeline.wake.set()  # whatever a previous run left unprocessed goes first
        self.outbox.wake.set()
        event("started", smtp=f"{settings.smtp.host}:{port}", database=self.engine.url.render_as_string(),
              relay=settings.relay.mode, imap_accounts=len(self.watchers),
              web=f"{settings.web.host}:{settings.web.port}" if settings.web.enabled else None,
              ops=f"{settings.ops.host}:{settings.ops.port}" if settings.ops.enabled else None)
        sdnotify.ready(f"accepting mail on {settings.smtp.host}:{port}")
        interval = sdnotify.watchdog_interval()
        self.watchdog = interval is not None
        # On the event loop itself, so a wedged loop stops the watchdog pings too.
        scheduler.add_job(self._check_health, "interval", seconds=min(interval or HEALTH_SECONDS, HEALTH_SECONDS),
                          id="health")
        tasks.append(asyncio.create_task(self._heartbeats()))

        await self.stop_requested.wait()
        event("stopping")
        sdnotify.stopping()
        intake.draining = True
        deadline = self.loop.time() + DRAIN_SECONDS
        while intake.in_flight and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        server.close()
        for listener in self.listeners:
            await listener.cleanup()
        if metrics is not None:
            LOGGER.removeHandler(metrics.handler)
        await self._stop_watchers()
        await asyncio.to_thread(self.writer.close)
        scheduler.shutdown(wait=False)
        for worker in (self.pipeline, self.outbox):
            worker.stop()
        await asyncio.gather(*tasks)
        with contextlib.suppress(Exception):  # best effort: `mailbot status` then says stopped
            await asyncio.to_thread(health.record, self.engine, self.healths())
        await asyncio.to_thread(self.judges.close)
        self.engine.dispose()
        event("stopped")
        return 0

