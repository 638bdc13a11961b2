"""Queued outgoing mail: queue in the caller's transaction, deliver due rows, retry or fail.

A row is marked sent in its own short transaction right after the relay's 250, so a crash in
between costs at most one duplicate, recognisable by its stable Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailbot import sender
from mailbot.config import Settings
from mailbot.logs import event
from mailbot.models import Outbox, utcnow

PERSONAL = "agent_reply"


def recent_count(db: Session, recipient: str, since: datetime) -> int:
    query = select(func.count()).where(Outbox.recipient == recipient, Outbox.created >= since)
    return int(db.exec(query).one())


def _held_back(db: Session, recipient: str, settings: Settings) -> str | None:
    """Which cap on automatic mail this one would exceed, if any: per recipient (notice window),
    per recipient domain and overall (last hour). A flood of forged senders at one victim's
    domain, or at many, is reflected at most this much."""
    policy = settings.policy
    automatic = (col(Outbox.kind) != PERSONAL, col(Outbox.created) >= utcnow() - timedelta(hours=1))
    if recent_count(db, recipient, utcnow() - timedelta(minutes=policy.notice_window_minutes)) >= policy.notice_limit:
        return "rate_limit"
    domain = recipient.rsplit("@", 1)[-1]
    if db.exec(select(func.count()).where(Outbox.recipient_domain == domain, *automatic)).one() \
            >= policy.domain_hourly_limit:
        return "domain_limit"
    if db.exec(select(func.count()).where(*automatic)).one() >= policy.global_hourly_limit:
        return "global_limit"
    return None


def queue(
    db: Session,
    message: EmailMessage,
    *,
    kind: str,
    recipient: str,
    settings: Settings,
    case_id: int | None = None,
    deadline: datetime | None = None,
) -> Outbox | None:
    """Add a rendered mail to the outbox, unless a cap on automatic mail holds it back (logged).

    A person's answer relayed by mailbot (`agent_reply`) is no automatic mail and is never held back.
    """
    cap = None if kind == PERSONAL else _held_back(db, recipient, settings)
    if cap is not None:
        event("notice-suppressed", logging.INFO if cap == "rate_limit" else logging.WARNING,
              kind=kind, to=recipient, reason=cap)
        return None
    row = Outbox(
        case_id=case_id,
        kind=kind,
        recipient=recipient,
        recipient_domain=recipient.rsplit("@", 1)[-1],
        message_id=str(message["Message-ID"]),
        raw=message.as_bytes(),
        deadline_at=deadline,
    )
    db.add(row)
    return row


class Courier:
    """Delivers due outbox rows through the relay; remembers an outage to log it once."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.relay_down = False

    def _due(self, limit: int) -> list[Outbox]:
        with Session(self.engine) as db:
            query = (
                select(Outbox)
                .where(Outbox.status == "queued", Outbox.next_attempt_at <= utcnow())
                .order_by(col(Outbox.id))
                .limit(limit)
            )
            return list(db.exec(query).all())

    def next_due(self) -> datetime | None:
        """When the earliest queued mail is due (retries wait out their backoff)."""
        with Session(self.engine) as db:
            query = select(func.min(Outbox.next_attempt_at)).where(Outbox.status == "queued")
            return db.exec(query).one()

    def _update(self, row_id: int | None, **values: object) -> None:
        with Session(self.engine) as db:
            row = db.get(Outbox, row_id)
            if row is None:
                return
            for key, value in values.items():
                setattr(row, key, value)
            db.add(row)
            db.commit()

    def _retry(self, row: Outbox, error: str) -> None:
        policy = self.settings.policy
        attempts = row.attempts + 1
        if attempts >= policy.max_send_attempts:
            self._update(row.id, attempts=attempts, status="failed", last_error=error)
            event("notice-failed", logging.ERROR, outbox=row.id, to=row.recipient, error=error)
            return
        delay = min(policy.retry_base_seconds * 2 ** (attempts - 1), policy.retry_max_seconds)
        self._update(
            row.id, attempts=attempts, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=delay)
        )
        event("notice-retry", logging.WARNING, outbox=row.id, to=row.recipient, error=error, delay=delay)

    def deliver_due(self, limit: int = 100, progress: Callable[[], None] = lambda: None) -> int:
        """Send what is due now through one relay session; returns how many were sent.

        `progress` is called before each mail, so a slow relay working through a batch is not
        taken for a stalled worker. "sent" is recorded for the whole batch in one commit: a
        crash between the relay's 250 and that commit costs at most a resend of the batch,
        with the same Message-IDs.
        """
        rows = self._due(limit)
        if not rows:
            return 0
        sent: list[tuple[Outbox, datetime]] = []
        handled: set[int | None] = set()
        try:
            with sender.session(self.settings.relay) as deliver:
                for row in rows:
                    progress()
                    handled.add(row.id)
                    try:
                        deliver(row.raw, self.settings.service.noreply, [row.recipient])
                    except sender.PermanentFailure as exc:
                        self._update(row.id, status="failed", attempts=row.attempts + 1, last_error=str(exc))
                        event("notice-failed", logging.ERROR, outbox=row.id, to=row.recipient, error=str(exc))
                        continue
                    except sender.TemporaryFailure as exc:
                        self._retry(row, str(exc))
                        continue
                    sent.append((row, utcnow()))
        except sender.TemporaryFailure as exc:
            if not self.relay_down:
                event("relay-down", logging.ERROR, error=str(exc))
            self.relay_down = True
            for row in rows:
                if row.id not in handled:  # the relay failed before this one was tried
                    self._retry(row, str(exc))
            self._mark_sent(sent)
            return len(sent)
        self._mark_sent(sent)
        if self.relay_down:
            event("relay-up")
            self.relay_down = False
        return len(sent)

    def _mark_sent(self, sent: list[tuple[Outbox, datetime]]) -> None:
        if not sent:
            return
        with Session(self.engine) as db:
            db.execute(update(Outbox), [{"id": row.id, "status": "sent", "sent_at": at, "attempts": row.attempts + 1}
                                        for row, at in sent])
            db.commit()
        for row, at in sent:
            late = row.deadline_at is not None and at > row.deadline_at
            event("notice-sent", kind=row.kind, outbox=row.id, to=row.recipient, message_id=row.message_id,
                  late=late or None, queued_for=round((at - row.created).total_seconds(), 3))

    def log_breaches(self) -> int:
        """Log once each queued mail whose receipt window has passed; it is still delivered."""
        with Session(self.engine) as db:
            query = select(Outbox).where(
                Outbox.status == "queued",
                col(Outbox.deadline_at) < utcnow(),
                Outbox.breach_logged == False,  # noqa: E712
            )
            rows = list(db.exec(query).all())
            for row in rows:
                row.breach_logged = True
                db.add(row)
                event("receipt-window-breached", logging.ERROR, outbox=row.id, to=row.recipient,
                      kind=row.kind, deadline=row.deadline_at)
            db.commit()
            return len(rows)


def _due_now(row: Outbox) -> None:
    row.status, row.attempts, row.next_attempt_at, row.last_error = "queued", 0, utcnow(), None


def retry(engine: Engine, row_id: int) -> str | None:
    """Make a queued or failed mail due now with a fresh attempt count.

    Returns the status the row had (a sent row is left alone), or None if there is no such row.
    """
    with Session(engine) as db:
        row = db.get(Outbox, row_id)
        if row is None:
            return None
        previous = row.status
        if previous != "sent":
            _due_now(row)
            db.add(row)
            db.commit()
        return previous


def flush(engine: Engine) -> int:
    """Make every queued and failed mail due now with a fresh attempt count, as `postqueue -f`
    does, for when the relay is back; returns how many rows that touched."""
    with Session(engine) as db:
        rows = db.exec(select(Outbox).where(col(Outbox.status).in_(("queued", "failed")))).all()
        for row in rows:
            _due_now(row)
            db.add(row)
        db.commit()
        return len(rows)
