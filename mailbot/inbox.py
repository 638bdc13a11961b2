"""The durable inbound spool: every intake stores raw bytes here before it says yes.

SMTP answers 250 and IMAP moves a message only after `store` has committed. Processing then
claims rows from here; a row that keeps failing is quarantined with its reason after
`max_attempts`, never dropped and never blocking the rows behind it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailbot.headertext import getaddresses, storable
from mailbot.logs import event
from mailbot.mail import Envelope
from mailbot.models import InboundSpool, key, utcnow


@dataclass(frozen=True)
class Stored:
    spool_id: int
    duplicate: bool


def identity(raw: bytes, envelope: Envelope) -> tuple[str, str | None]:
    """(dedupe key, Message-ID): sender + Message-ID, or the bytes' hash without a Message-ID."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    found = re.findall(r"<[^<>\s]+>", str(headers.get("Message-ID") or ""))
    message_id = storable(found[0]) if found else None  # a NUL there made PostgreSQL refuse the mail
    senders = getaddresses([str(v) for v in headers.get_all("From", [])])
    sender = (senders[0][1] if senders else "") or envelope.mail_from
    if message_id is None:
        return "sha256:" + hashlib.sha256(raw).hexdigest(), None
    digest = hashlib.sha256(f"{sender.lower()}\n{message_id}".encode("utf-8", "replace")).hexdigest()
    return "mid:" + digest, message_id


@dataclass(frozen=True)
class Arrival:
    """One mail to store: its bytes, envelope and (IMAP) source key."""

    raw: bytes
    envelope: Envelope
    source_key: str | None = None


def _known(db: Session, dedupe_keys: list[str], source_keys: list[str]) -> dict[str, int]:
    """Spool ids of rows already stored under any of these keys, by key."""
    query = select(InboundSpool.id, InboundSpool.dedupe_key, InboundSpool.source_key).where(
        or_(col(InboundSpool.dedupe_key).in_(dedupe_keys), col(InboundSpool.source_key).in_(source_keys)))
    known: dict[str, int] = {}
    for spool_id, dedupe_key, source_key in db.exec(query).all():
        assert spool_id is not None
        known[dedupe_key] = spool_id
        if source_key is not None:
            known[source_key] = spool_id
    return known


def store_many(engine: Engine, arrivals: list[Arrival]) -> list[Stored]:
    """Durably store mails in one transaction (one fsync for all; committed on return), in order.

    A mail seen before (stored earlier, or twice in this batch) returns its first row. Should
    another writer (a `replay`, a second instance) commit the same key meanwhile, the batch is
    rolled back and tried again, so the dedupe stays exact.
    """
    keyed = [(arrival, *identity(arrival.raw, arrival.envelope)) for arrival in arrivals]
    tries = 3
    while True:
        with Session(engine, expire_on_commit=False) as db:
            known: dict[str, int | InboundSpool] = dict(_known(
                db, [key for _, key, _ in keyed], [a.source_key for a, _, _ in keyed if a.source_key]))
            results: list[tuple[int | InboundSpool, bool]] = []
            for arrival, dedupe_key, message_id in keyed:
                found = known.get(dedupe_key) or (known.get(arrival.source_key) if arrival.source_key else None)
                if found is not None:
                    results.append((found, True))
                    continue
                envelope = arrival.envelope
                row = InboundSpool(
                    source=envelope.source, source_key=arrival.source_key, dedupe_key=dedupe_key,
                    mail_from=envelope.mail_from, rcpt_to=",".join(envelope.rcpt_to),
                    declared_size=envelope.declared_size, peer=envelope.peer, message_id=message_id,
                    raw=arrival.raw,
                )
                db.add(row)
                known[dedupe_key] = row
                if arrival.source_key:
                    known[arrival.source_key] = row
                results.append((row, False))
            try:
                db.commit()
            except IntegrityError:  # a concurrent writer stored one of these first
                tries -= 1
                if not tries:
                    raise
                continue
            return [Stored(found if isinstance(found, int) else key(found), duplicate) for found, duplicate in results]


def store(engine: Engine, raw: bytes, envelope: Envelope, source_key: str | None = None) -> Stored:
    """Durably store one mail (committed on return); a mail seen before returns its first row."""
    return store_many(engine, [Arrival(raw, envelope, source_key)])[0]


def envelope_of(row: InboundSpool) -> Envelope:
    return Envelope(
        mail_from=row.mail_from,
        rcpt_to=tuple(filter(None, row.rcpt_to.split(","))),
        source=row.source,
        declared_size=row.declared_size,
        peer=row.peer,
    )


def status(engine: Engine, spool_id: int) -> str:
    with Session(engine) as db:
        row = db.get(InboundSpool, spool_id)
        return row.status if row else "missing"


def due(engine: Engine, now: datetime, limit: int) -> list[int]:
    """Pending rows whose next attempt is due, oldest first."""
    return [spool_id for spool_id, _ in due_with_attempts(engine, now, limit)]


def due_with_attempts(engine: Engine, now: datetime, limit: int) -> list[tuple[int, int]]:
    """(id, attempts started so far) of the pending rows whose next attempt is due, oldest first."""
    with Session(engine) as db:
        query = (
            select(InboundSpool.id, InboundSpool.attempts)
            .where(InboundSpool.status == "pending", InboundSpool.next_attempt_at <= now)
            .order_by(col(InboundSpool.id))
            .limit(limit)
        )
        return [(i, attempts) for i, attempts in db.exec(query).all() if i is not None]


def next_due(engine: Engine) -> datetime | None:
    """When the earliest pending row may be tried again (after a failed attempt's backoff)."""
    with Session(engine) as db:
        query = select(func.min(InboundSpool.next_attempt_at)).where(InboundSpool.status == "pending")
        return db.exec(query).one()


def begin_attempt(engine: Engine, spool_id: int, max_attempts: int) -> InboundSpool | None:
    """`begin_attempts` for one row: the row with its attempt counted, or None."""
    rows = begin_attempts(engine, [spool_id], max_attempts)
    return rows[0] if rows else None


def begin_attempts(engine: Engine, spool_ids: list[int], max_attempts: int) -> list[InboundSpool]:
    """Count an attempt *before* processing, so a mail that crashes the process is still capped.

    Returns the rows still pending, with the attempt counted, in spool order. A row whose
    attempts are used up without a recorded outcome killed the process (or its judge) each
    time: it is quarantined here, at the claim, as `crashed_processing`, and never tried again
    at the next start. One transaction for the whole batch.
    """
    with Session(engine, expire_on_commit=False) as db:
        counted = set(db.exec(
            update(InboundSpool)
            .where(col(InboundSpool.id).in_(spool_ids), col(InboundSpool.status) == "pending",
                   col(InboundSpool.attempts) < max_attempts)
            .values(attempts=InboundSpool.attempts + 1)
            .returning(col(InboundSpool.id))
        ).scalars())
        spent = db.exec(select(InboundSpool).where(
            col(InboundSpool.id).in_(set(spool_ids) - counted), col(InboundSpool.status) == "pending",
            col(InboundSpool.attempts) >= max_attempts,
        )).all()
        for row in spent:
            row.status, row.verdict, row.processed_at = "quarantined", "quarantined", utcnow()
            row.reason = f"crashed_processing: {row.attempts} attempts started, none finished"
            db.add(row)
        rows = db.exec(select(InboundSpool).where(col(InboundSpool.id).in_(counted))
                       .order_by(col(InboundSpool.id))).all()
        db.commit()
    for row in spent:
        event("quarantined", logging.ERROR, spool=row.id, message_id=row.message_id, verdict="quarantined",
              reason="crashed_processing", attempts=row.attempts, last_error=row.last_error)
    return list(rows)


def undo_attempt(engine: Engine, spool_id: int) -> None:
    """Take back an attempt that never got to judge the mail (an ordered shutdown)."""
    with Session(engine) as db:
        db.execute(update(InboundSpool)
                   .where(col(InboundSpool.id) == spool_id, col(InboundSpool.status) == "pending",
                          col(InboundSpool.attempts) > 0)
                   .values(attempts=InboundSpool.attempts - 1))
        db.commit()


def record_failure(engine: Engine, spool_id: int, error: str, max_attempts: int, backoff: timedelta) -> str:
    """After a failed attempt: retry later, or quarantine once the attempts are used up."""
    with Session(engine) as db:
        row = db.get(InboundSpool, spool_id)
        if row is None or row.status != "pending":
            return row.status if row else "missing"
        row.last_error = error[:2000]
        if row.attempts >= max_attempts:
            row.status, row.verdict = "quarantined", "quarantined"
            row.reason = f"processing failed {row.attempts} times: {error}"[:2000]
            row.processed_at = utcnow()
        else:
            row.next_attempt_at = utcnow() + backoff * (2 ** (row.attempts - 1))
        db.add(row)
        db.commit()
        return row.status


def quarantined(engine: Engine) -> list[InboundSpool]:
    with Session(engine) as db:
        query = select(InboundSpool).where(InboundSpool.status == "quarantined")
        return list(db.exec(query.order_by(col(InboundSpool.id))).all())


def get(engine: Engine, spool_id: int) -> InboundSpool | None:
    with Session(engine) as db:
        return db.get(InboundSpool, spool_id)


def release(engine: Engine, spool_id: int) -> bool:
    """Put a quarantined mail back in the queue (after a fix or a policy change)."""
    with Session(engine) as db:
        row = db.get(InboundSpool, spool_id)
        if row is None or row.status != "quarantined":
            return False
        row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
        row.verdict = row.reason = row.last_error = None
        db.add(row)
        db.commit()
        return True


def delete(engine: Engine, spool_id: int) -> bool:
    """Drop a quarantined mail for good: only ever by an operator's explicit command."""
    with Session(engine) as db:
        row = db.get(InboundSpool, spool_id)
        if row is None or row.status != "quarantined":
            return False
        db.delete(row)
        db.commit()
        return True
