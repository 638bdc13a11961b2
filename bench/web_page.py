"""Case page latency (ms per request) beside the stylesheet from the same server in the same run,
and how long the event loop waits meanwhile (the daemon's SMTP intake shares that loop).

The baseline, GET /static/page.css, is aiohttp's own cost for one small answer; the ratio says
what the link check, the database reads and the template add, independent of the machine. The
case has `--messages` customer mails (each also a spool row for "was my mail processed?").
Loop lag is the worst delay of a 10 ms timer while `--concurrency` page loads run at once: the
database work runs in threads, so it must stay near the idle lag, not grow with the page's cost.
Usage: python bench/web_page.py [--messages 200] [--requests 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from mailbot import cases, config, db, inbox
from mailbot.cases import Context
from mailbot.files import FileStore
from mailbot.mail import Envelope
from mailbot.models import InboundSpool
from mailbot.notices import Notices
from mailbot.parse import parse
from mailbot.web import links
from mailbot.web.app import CasePage

ROOT = Path(__file__).resolve().parents[1]


def mail(number: int, subject: str) -> bytes:
    body = "\r\n".join(f"Zeile {line} der Nachricht {number}." for line in range(20))
    return (f"From: Karl Kunde <kunde@customer.test>\r\nTo: service@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <bench-{number}@customer.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\n"
            f"{body}\r\n> zitiert\r\n").encode()


def setup(folder: Path, messages: int) -> tuple[config.Settings, str]:
    document = {
        "service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
        "database": {"url": f"sqlite:///{folder / 'bench.db'}"},
        "storage": {"attachments_dir": str(folder / "files")},
        "templates": {"dir": str(ROOT / "templates")},
        "web": {"enabled": True},
        "policy": {"notice_limit": 100000},
        "tokens": {"secret": "bench-secret-0123456789"},
    }
    settings = config.parse(document, folder / "config.toml")
    engine = db.make_engine(settings.database.url)
    with db.session(engine) as session:
        ctx = Context(session, settings, Notices(settings), FileStore(folder / "files"), None)
        case = cases.open_case(ctx, parse(mail(0, "Drucker druckt nicht")))
        tagged = f"Re: [#{case.token}] {case.subject}"
        for number in range(1, messages):
            cases.add_reply(ctx, case, parse(mail(number, tagged)))
        link = links.url(settings, case).removeprefix(settings.web.base_url)
        assert case.number is not None
        case_number = case.number
    envelope = Envelope("kunde@customer.test", ("service@example.com",), "smtp")
    for number in range(messages):
        stored = inbox.store(engine, mail(number, "x"), envelope)
        with db.session(engine) as session:
            row = session.get(InboundSpool, stored.spool_id)
            assert row is not None
            row.status, row.verdict, row.case_number = "done", "reply", case_number
            session.add(row)
    engine.dispose()
    return settings, link


async def timed(client: TestClient, path: str, count: int) -> list[float]:  # type: ignore[type-arg]
    took = []
    for _ in range(count):
        start = time.perf_counter()
        response = await client.get(path)
        await response.read()
        assert response.status == 200, response.status
        took.append((time.perf_counter() - start) * 1000)
    return took


async def lag_while(work: asyncio.Future[object] | None, seconds: float) -> float:
    """The worst lateness (ms) of a 10 ms timer until `work` is done (or for `seconds`)."""
    worst, deadline = 0.0, time.perf_counter() + seconds
    while (work is not None and not work.done()) or (work is None and time.perf_counter() < deadline):
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, (time.perf_counter() - start - 0.01) * 1000)
    return worst


async def measure(settings: config.Settings, link: str, requests: int, concurrency: int) -> None:
    engine = db.make_engine(settings.database.url)
    app = CasePage(engine, lambda: settings).app()
    async with TestClient(TestServer(app)) as client:
        await timed(client, link, 5)  # warm up: templates compiled, connections pooled
        page = await timed(client, link, requests)
        css = await timed(client, "/static/page.css", requests)
        idle = await lag_while(None, 1.0)
        burst = asyncio.gather(*(timed(client, link, max(1, requests // concurrency)) for _ in range(concurrency)))
        busy = await lag_while(burst, 0)
        await burst
    engine.dispose()
    p50, p95 = statistics.median(page), statistics.quantiles(page, n=20)[18]
    b50, b95 = statistics.median(css), statistics.quantiles(css, n=20)[18]
    print(f"case page          p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")
    print(f"stylesheet (base)  p50 {b50:7.2f} ms  p95 {b95:7.2f} ms")
    print(f"ratio              p50 {p50 / b50:7.1f} x   p95 {p95 / b95:7.1f} x")
    print(f"loop lag           idle {idle:6.2f} ms  during {concurrency} concurrent page loads {busy:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings, link = setup(Path(folder), args.messages)
        print(f"case with {args.messages} messages and {args.messages} spool rows, {args.requests} requests each")
        asyncio.run(measure(settings, link, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
