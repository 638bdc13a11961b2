"""Group commit: mails stored together stay exactly deduplicated, within a batch, against rows
stored before, and when many sessions hand in the same mail at once."""

from __future__ import annotations

import threading

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support import compose

from mailbot import db, inbox
from mailbot.inbox import Arrival
from mailbot.mail import Envelope
from mailbot.models import InboundSpool
from mailbot.spool_writer import SpoolWriter

SMTP = Envelope("kunde@customer.test", ("service@example.com",), "smtp")


def rows(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(InboundSpool)).one())


def test_a_batch_dedupes_within_itself_and_against_the_spool(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        first = inbox.store(engine, compose(message_id="old"), SMTP)
        imap = Envelope("kunde@customer.test", ("service@example.com",), "imap:support")
        stored = inbox.store_many(engine, [
            Arrival(compose(message_id="new"), SMTP),
            Arrival(compose(message_id="old"), SMTP),  # stored before
            Arrival(compose(message_id="new"), SMTP),  # twice in this batch
            Arrival(compose(message_id="x"), imap, "imap:support:INBOX:1:7"),
            Arrival(compose(message_id="y"), imap, "imap:support:INBOX:1:7"),  # same UID, refetched
        ])
        new, old, again, uid, refetched = stored
        assert not new.duplicate and not uid.duplicate
        assert old == inbox.Stored(first.spool_id, True)
        assert again == inbox.Stored(new.spool_id, True)
        assert refetched == inbox.Stored(uid.spool_id, True)
        assert rows(engine) == 3
    finally:
        engine.dispose()


def test_many_sessions_handing_in_the_same_mail_store_it_once(db_url: str) -> None:
    engine = db.make_engine(db_url)
    writer = SpoolWriter(engine)
    results: list[inbox.Stored] = []
    lock = threading.Lock()

    def session() -> None:
        result = writer.submit(compose(message_id="same"), SMTP).result(30)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=session) for _ in range(30)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len({r.spool_id for r in results}) == 1 and len(results) == 30
        assert [r.duplicate for r in results].count(False) == 1
        assert rows(engine) == 1
    finally:
        writer.close()
        engine.dispose()

