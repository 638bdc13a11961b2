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
from mailbot.models import InboundSpool, utcnow


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


def _existing(db: Session, dedupe_key: str, source_key: str | None) -> int | None:
    match = col(InboundSpool.dedupe_key) == dedupe_key
    if source_key is not None:
        match = or_(match, col(InboundSpool.source_key) == source_key)
    return db.exec(select(InboundSpool.id).where(match)).first()


def store(engine: Engine, raw: bytes, envelope: Envelope, source_key: str | None = None) -> Stored:
    """Durably store one mail (committed on return); a mail seen before returns its first row."""
    dedupe_key, message_id = identity(raw, envelope)
    with Session(engine) as db:
        found = _existing(db, dedupe_key, source_key)
        if found is not None:
            return Stored(found, True)
        row = InboundSpool(
            source=envelope.source,
            source_key=source_key,
            dedupe_key=dedupe_key,
            mail_from=envelope.mail_from,
            rcpt_to=",".join(envelope.rcpt_to),
            declared_size=envelope.declared_size,
            message_id=message_id,
            raw=raw,
        )
        db.add(row)
        try:
            db.commit()
        except IntegrityError:  # a concurrent store of the same mail won the race
            db.rollback()
            found = _existing(db, dedupe_key, source_key)
            if found is None:
                raise
            return Stored(found, True)
        assert row.id is not None
        return Stored(row.id, False)


def envelope_of(row: InboundSpool) -> Envelope:
    return Envelope(
        mail_from=row.mail_from,
        rcpt_to=tuple(filter(None, row.rcpt_to.split(","))),
        source=row.source,
        declared_size=row.declared_size,
    )


def status(engine: Engine, spool_id: int) -> str:
    with Session(engine) as db:
        row = db.get(InboundSpool, spool_id)
        return row.status if row else "missing"


def due(engine: Engine, now: datetime, limit: int) -> list[int]:
    """Pending rows whose next attempt is due, oldest first."""
    with Session(engine) as db:
        query = (
            select(InboundSpool.id)
            .where(InboundSpool.status == "pending", InboundSpool.next_attempt_at <= now)
            .order_by(col(InboundSpool.id))
            .limit(limit)
        )
        return [i for i in db.exec(query).all() if i is not None]


def next_due(engine: Engine) -> datetime | None:
    """When the earliest pending row may be tried again (after a failed attempt's backoff)."""
    with Session(engine) as db:
        query = select(func.min(InboundSpool.next_attempt_at)).where(InboundSpool.status == "pending")
        return db.exec(query).one()


def begin_attempt(engine: Engine, spool_id: int, max_attempts: int) -> InboundSpool | None:
    """Count an attempt *before* processing, so a mail that crashes the process is still capped.

    Returns the row (with the attempt counted), or None when it is no longer pending. A row
    whose attempts are used up without a recorded outcome killed the process (or its judge)
    each time: it is quarantined here, at the claim, as `crashed_processing`, and never tried
    again at the next start.
    """
    with Session(engine) as db:
        result = db.execute(
            update(InboundSpool)
            .where(col(InboundSpool.id) == spool_id, col(InboundSpool.status) == "pending",
                   col(InboundSpool.attempts) < max_attempts)
            .values(attempts=InboundSpool.attempts + 1)
        )
        db.commit()
        if getattr(result, "rowcount", 0) == 1:
            return db.get(InboundSpool, spool_id)
        row = db.get(InboundSpool, spool_id)
        if row is not None and row.status == "pending" and row.attempts >= max_attempts:
            row.status, row.verdict, row.processed_at = "quarantined", "quarantined", utcnow()
            row.reason = f"crashed_processing: {row.attempts} attempts started, none finished"
            db.add(row)
            db.commit()
            event("quarantined", logging.ERROR, spool=spool_id, message_id=row.message_id, verdict="quarantined",
                  reason="crashed_processing", attempts=row.attempts, last_error=row.last_error)
        return None


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
