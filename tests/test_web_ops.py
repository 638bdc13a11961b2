"""The operators' endpoints of a running daemon: /healthz, and /metrics counting a real mail's way
(stored, decided, receipt sent through the relay); /healthz says 503 when the database is gone."""

from __future__ import annotations

import asyncio
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from support import DaemonProcess, Desk, Relay, base_sections, compose, free_port, wait_for

from mailbot import db
from mailbot.web.metrics import Metrics
from mailbot.web.ops import Ops


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_follow_a_mail_and_healthz_answers(
        tmp_path: Path, relay: Relay, daemon_factory: Callable[..., DaemonProcess]) -> None:
    port = free_port()
    sections = base_sections(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}", relay=relay.sections(),
                             ops={"enabled": True, "port": port})
    desk = Desk(daemon_factory(sections), relay)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"ok\n")
    before = samples(port)
    assert before[("mailbot_store_up", ())] == 1
    assert ("mailbot_mails_total", (("source", "smtp"), ("verdict", "new_case"))) not in before

    desk.send(compose())
    desk.mails_to("kunde@customer.test")
    after = wait_for(lambda: (found := samples(port)).get(("mailbot_mail_sent_total", (("kind", "receipt"),)))
                     and found)
    assert after[("mailbot_mails_total", (("source", "smtp"), ("verdict", "new_case")))] == 1
    assert after[("mailbot_receipt_latency_seconds_count", ())] == 1
    assert after[("mailbot_spool_pending", ())] == 0
    assert after[("mailbot_outbox", (("status", "queued"),))] == 0
    assert after[("mailbot_oldest_unsent_receipt_seconds", ())] == 0


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'gone' / 'mailbot.db'}")
    engine.dispose()
    shutil.rmtree(tmp_path / "gone")  # SQLite cannot even create the file again
    ops = Ops(engine, Metrics(engine, list))

    async def probe() -> tuple[int, str, str]:
        async with TestClient(TestServer(ops.app())) as client:
            health = await client.get("/healthz")
            scrape = await client.get("/metrics")
            return health.status, await health.text(), await scrape.text()

    try:
        status, text, metrics = asyncio.run(probe())
    finally:
        engine.dispose()
    assert status == 503 and text.startswith("database: ")
    assert "mailbot_store_up 0.0" in metrics
