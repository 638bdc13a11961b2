"""The batched pipeline: a batch is judged in parallel and acted on in one transaction with a
SAVEPOINT per mail, so one failing mail rolls back alone and the others go through.

The poison mail is made poisonous by the database itself (a trigger refuses its message row),
so the failure is real and happens in the middle of the batch's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from support import base_sections, compose, wait_for, write_config

from mailbot import config, db, inbox, pipeline
from mailbot.config import Settings
from mailbot.mail import Envelope
from mailbot.models import Case, InboundSpool, Message, Outbox

ENVELOPE = Envelope("kunde@customer.test", ("service@example.com",), "smtp")
POISON_TRIGGER = {
    "sqlite": ["CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject = 'Gift' "
               "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"],
    "postgresql": [
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
        "IF NEW.subject = 'Gift' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()",
    ],
}


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    sections = base_sections(tmp_path, db_url, policy={"max_attempts": 3, "retry_base_seconds": 0.001})
    return config.load(write_config(tmp_path / "config.toml", sections))


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(settings.database.url)
    yield engine
    engine.dispose()


def store(engine: Engine, *mails: bytes) -> list[int]:
    return [inbox.store(engine, raw, ENVELOPE).spool_id for raw in mails]


def test_a_poison_mail_rolls_back_alone_and_is_quarantined_after_max_attempts(
        engine: Engine, settings: Settings) -> None:
    with engine.begin() as connection:
        for statement in POISON_TRIGGER[engine.dialect.name]:
            connection.execute(text(statement))
    ids = store(engine, *(compose(subject="Gift" if n == 2 else f"Frage {n}")
                          for n in range(5)))

    def drained() -> bool:  # process until nothing is pending (retries wait out a short backoff)
        pipeline.process_pending(engine, settings, limit=50)
        return inbox.next_due(engine) is None

    wait_for(drained)
    with Session(engine) as session:
        rows = {row.id: row for row in session.exec(select(InboundSpool)).all()}
        assert [rows[i].status for i in ids] == ["done", "done", "quarantined", "done", "done"]
        assert [rows[i].attempts for i in ids] == [1, 1, 3, 1, 1]
        reason = rows[ids[2]].reason or ""
        assert reason.startswith("processing failed 3 times: ") and "poisoned row" in reason
        assert len(session.exec(select(Case)).all()) == 4
        assert len(session.exec(select(Outbox)).all()) == 4


def test_a_reply_in_the_same_batch_finds_the_case_its_first_mail_opens(engine: Engine, settings: Settings) -> None:
    first = compose(message_id="erste", subject="Drucker")
    reply = compose(message_id="zweite", subject="Re: Drucker",
                    headers={"In-Reply-To": "<erste@customer.test>", "References": "<erste@customer.test>"})
    ids = store(engine, first, reply)
    results = pipeline.process_batch(engine, settings, ids)
    opened, answered = (results[i][1] for i in ids)
    assert opened is not None and answered is not None
    assert (opened.verdict, answered.verdict) == ("new_case", "reply")
    assert opened.case == answered.case
    with Session(engine) as session:
        texts = session.exec(select(Message.message_id).where(Message.direction == "in")
                             .order_by(col(Message.id))).all()
    assert texts == ["<erste@customer.test>", "<zweite@customer.test>"]
