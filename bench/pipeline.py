"""Pipeline throughput: spooled mails -> cases + queued receipts, beside parse + rules alone.

Run: .venv/bin/python bench/pipeline.py [--mails 2000] [--database-url URL]
Fills the spool with N small customer mails (each from its own sender, so every one opens a
case and queues a receipt), then runs `pipeline.process_pending` until the spool is empty,
with a judge pool as the daemon has. The baseline is judge() (pre-checks, parse, libmagic,
rules) on the same bytes in one process: the mail work alone. Issue 11 asks the pipeline for
at least 0.5x the baseline, i.e. the database may cost at most as much as the mail work.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import Session, select

from mailbot import config, db, inbox, pipeline
from mailbot.judge import judge
from mailbot.judgepool import JudgePool
from mailbot.mail import Envelope
from mailbot.models import InboundSpool, Outbox
from mailbot.notices import Notices

ROOT = Path(__file__).resolve().parents[1]


def mail(number: int) -> bytes:
    return (
        f"From: Kunde {number} <kunde{number}@customer.test>\r\nTo: service@example.com\r\n"
        f"Subject: Drucker {number} druckt nicht\r\nMessage-ID: <bench{number}@customer.test>\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Guten Tag,\r\n\r\nder Drucker im 2. Stock druckt seit heute Morgen nicht mehr.\r\n\r\nGrüße\r\n"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--database-url", help="an empty database (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        settings = config.parse(
            {"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
             "tokens": {"secret": "0123456789abcdef"}, "database": {"url": url},
             "templates": {"dir": str(ROOT / "templates")}, "storage": {"attachments_dir": f"{tmp}/files"},
             # every mail its own sender at one domain: lift the amplification caps meant for floods
             "policy": {"domain_hourly_limit": 10 * args.mails, "global_hourly_limit": 10 * args.mails}},
            Path(tmp) / "config.toml",
        )
        raws = [mail(n) for n in range(args.mails)]
        envelopes = [Envelope(f"kunde{n}@customer.test", ("service@example.com",), "smtp") for n in range(args.mails)]

        start = time.perf_counter()
        for raw, envelope in zip(raws, envelopes, strict=True):
            judge(raw, envelope, settings)
        baseline = args.mails / (time.perf_counter() - start)

        engine = db.make_engine(url)
        with Session(engine) as session:
            session.execute(insert(InboundSpool), [
                {"source": "smtp", "dedupe_key": inbox.identity(raw, envelope)[0], "mail_from": envelope.mail_from,
                 "rcpt_to": "service@example.com", "message_id": f"<bench{n}@customer.test>", "raw": raw}
                for n, (raw, envelope) in enumerate(zip(raws, envelopes, strict=True))
            ])
            session.commit()
        judges = JudgePool()
        judges.judge(raws[0], envelopes[0], settings)  # workers started, as in a running daemon
        notices = Notices(settings)
        start = time.perf_counter()
        while pipeline.process_pending(engine, settings, 50, notices, judges=judges):
            pass
        rate = args.mails / (time.perf_counter() - start)
        judges.close()
        with Session(engine) as session:
            receipts = session.exec(select(func.count()).select_from(Outbox)).one()
        engine.dispose()
    backend = url.split(":", 1)[0]
    print(f"{args.mails} mails on {backend}: {receipts} receipts queued")
    print(f"pipeline {rate:8.1f} mails/s   parse+rules alone {baseline:8.1f} mails/s   ratio {rate / baseline:.2f}x")


if __name__ == "__main__":
    main()
