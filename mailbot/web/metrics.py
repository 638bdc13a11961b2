"""Prometheus metrics, counted from the event log lines and read from the store at scrape time.

Counters come from `mailbot.logs.event` (a logging handler on the `mailbot` logger): every mail
decision and every delivery already is one event, so nothing on the mail path has to know about
metrics, and a number on the dashboard always has a log line behind it. Queue sizes and the
oldest unsent receipt are read from the database at scrape time (indexed counts; the spool's raw
mail is never touched), so they are right after a restart and across processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from mailbot.intake_imap import ImapWatcher
from mailbot.models import InboundSpool, Outbox, utcnow
from mailbot.pipeline import VERDICT_EVENTS

RECEIPTS = ("receipt", "reply_receipt")
DECIDED = frozenset(VERDICT_EVENTS.values())


class Metrics:
    """One registry per daemon; `handler` turns events into counts."""

    def __init__(self, engine: Engine, watchers: Callable[[], Sequence[ImapWatcher]]) -> None:
        self.registry = CollectorRegistry()
        self.mails = Counter("mailbot_mails", "Mails decided, by intake source and verdict",
                             ["source", "verdict"], registry=self.registry)
        self.sent = Counter("mailbot_mail_sent", "Mails accepted by the relay, by kind (receipt, status_changed, ...)",
                            ["kind"], registry=self.registry)
        self.receipt_latency = Histogram(
            "mailbot_receipt_latency_seconds", "Time from queuing a receipt to the relay's acceptance",
            buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 7200), registry=self.registry)
        self.registry.register(_Store(engine, watchers))
        self.handler = _Events(self)


class _Events(logging.Handler):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.INFO)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "event", None)
        fields = getattr(record, "fields", {})
        source = str(fields.get("source", "unknown")).split(":", 1)[0]  # imap:<account> -> imap
        if name in DECIDED:
            self.metrics.mails.labels(source, fields.get("verdict", "unknown")).inc()
        elif name == "processing-failed" and fields.get("state") == "quarantined":
            self.metrics.mails.labels(source, "quarantined").inc()
        elif name == "notice-sent":
            kind = str(fields.get("kind", "unknown"))
            self.metrics.sent.labels(kind).inc()
            if kind in RECEIPTS and "queued_for" in fields:
                self.metrics.receipt_latency.observe(float(fields["queued_for"]))


class _Store(Collector):
    """Gauges read when Prometheus scrapes (in a worker thread: the ops handler calls it so)."""

    def __init__(self, engine: Engine, watchers: Callable[[], Sequence[ImapWatcher]]) -> None:
        self.engine = engine
        self.watchers = watchers

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("mailbot_store_up", "1 when the database answered this scrape")
        try:
            gauges = list(self._store())
        except SQLAlchemyError:
            up.add_metric([], 0)
            gauges = []
        else:
            up.add_metric([], 1)
        yield up
        yield from gauges
        connected = GaugeMetricFamily("mailbot_imap_connected", "1 while the account's watcher is logged in",
                                      labels=["account"])
        alive = GaugeMetricFamily("mailbot_imap_watcher_alive", "1 while the account's watcher thread runs",
                                  labels=["account"])
        for watcher in self.watchers():
            connected.add_metric([watcher.account.name], int(watcher.connected))
            alive.add_metric([watcher.account.name], int(watcher.alive))
        yield connected
        yield alive

    def _store(self) -> Iterator[Metric]:
        with Session(self.engine) as db:
            spool = dict(db.exec(select(InboundSpool.status, func.count()).where(
                col(InboundSpool.status).in_(("pending", "quarantined"))).group_by(InboundSpool.status)).all())
            outbox = dict(db.exec(select(Outbox.status, func.count()).where(
                col(Outbox.status).in_(("queued", "failed"))).group_by(Outbox.status)).all())
            oldest = db.exec(select(func.min(Outbox.created)).where(
                Outbox.status == "queued", col(Outbox.kind).in_(RECEIPTS))).one()
        yield GaugeMetricFamily("mailbot_spool_pending", "Stored mails not yet decided", value=spool.get("pending", 0))
        yield GaugeMetricFamily("mailbot_quarantine_size", "Mails in quarantine (refused or not judgeable)",
                                value=spool.get("quarantined", 0))
        queued = GaugeMetricFamily("mailbot_outbox", "Outgoing mails by status", labels=["status"])
        for status in ("queued", "failed"):
            queued.add_metric([status], outbox.get(status, 0))
        yield queued
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily("mailbot_oldest_unsent_receipt_seconds",
                                "Age of the oldest receipt still queued (0: none)", value=age)
