"""One spooled mail's way: parse -> checks -> match -> act, in one transaction.

`decide` is the whole pipeline for one mail and is shared by the daemon, the IMAP watcher and
`mailbot replay` (which rolls the transaction back for --dry-run), so what replay shows is
exactly what intake does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from mailbot import agents, inbox, judgepool, robots
from mailbot.cases import Context, refuse
from mailbot.checks.attachments import allowed as attachment_allowed
from mailbot.config import Settings
from mailbot.files import FileStore
from mailbot.headertext import storable
from mailbot.judge import Judgement
from mailbot.judgepool import JudgePool, JudgeUnavailable
from mailbot.logs import event
from mailbot.mail import Envelope
from mailbot.match import find_case
from mailbot.models import InboundSpool, utcnow
from mailbot.notices import Notices
from mailbot.routing import route
from mailbot.verdicts import Accept, Ignore, Quarantine, Reject, VerdictKind

VERDICT_EVENTS: dict[str, str] = {
    "new_case": "case-opened",
    "reply": "reply-added",
    "rejected": "rejected",
    "ignored": "ignored",
    "quarantined": "quarantined",
}


@dataclass
class Outcome:
    verdict: VerdictKind
    reason: str | None = None
    case: int | None = None
    message_id: str | None = None
    notices: list[dict[str, str]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    auth: dict[str, str] | None = None  # {"result": pass|fail|none, "why": ...}

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("message_id")
        return data


def act(ctx: Context, judged: Judgement) -> Outcome:
    """Carry out a judgement inside the caller's transaction: cases, messages, notices."""
    mail, decision = judged.mail, judged.decision
    outcome = Outcome("ignored", trace=list(judged.trace))
    if mail is None:
        assert isinstance(decision, Quarantine)
        outcome.verdict, outcome.reason = "quarantined", decision.reason
        return outcome
    outcome.message_id = mail.message_id
    outcome.auth = {"result": mail.auth.result, "why": mail.auth.why}
    outcome.attachments = [
        {"filename": p.filename, "detected_type": p.detected_type, "allowed": attachment_allowed(p, ctx.settings)}
        for p in mail.attachments
    ]
    if isinstance(decision, Ignore):
        outcome.reason = decision.reason
        if decision.reason == "auto_reply":
            outcome.case = robots.record_auto_reply(ctx, mail, outcome.trace)
        elif decision.reason == "bounce":
            robots.record_bounce(ctx, mail, outcome.trace)
    elif isinstance(decision, Quarantine):
        outcome.verdict, outcome.reason = "quarantined", decision.reason
        if decision.reason == "auth_failed":
            agents.warn_if_claimed(ctx, mail, outcome.trace)
    elif isinstance(decision, Reject):
        outcome.verdict, outcome.reason = "rejected", decision.reason
        case, _ = find_case(ctx.db, mail, ctx.settings)
        outcome.case = case.number if case else None  # its case page tells the customer why
        refuse(ctx, mail, decision.reason, decision.details)
    else:
        assert isinstance(decision, Accept)
        if decision.dropped:  # drop_file: the mail goes on without them; its receipt names them
            left_out = {file.index for file in decision.dropped}
            mail = replace(mail, attachments=tuple(p for p in mail.attachments if p.index not in left_out))
            ctx.dropped = decision.dropped
            outcome.trace.append("drop_file")
        outcome.verdict, outcome.reason, outcome.case = route(ctx, mail, outcome.trace)
    outcome.notices = ctx.queued
    return outcome


def decide(ctx: Context, raw: bytes, envelope: Envelope, judges: JudgePool) -> Outcome:
    """The whole pipeline for one mail, inside the caller's transaction."""
    return act(ctx, judges.judge(raw, envelope, ctx.settings))


def _claim(db: Session, spool_id: int) -> InboundSpool | None:
    """Lock the row for this transaction; None if another worker finished it meanwhile."""
    result = db.execute(
        update(InboundSpool)
        .where(col(InboundSpool.id) == spool_id, col(InboundSpool.status) == "pending")
        .values(processed_at=utcnow())
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return db.get(InboundSpool, spool_id)


def process(engine: Engine, settings: Settings, spool_id: int, notices: Notices | None = None,
            judges: JudgePool | None = None) -> str:
    """Process one spooled mail now; safe to call from any thread. Returns the row's state."""
    return run(engine, settings, spool_id, notices, judges)[0]


def run(
    engine: Engine, settings: Settings, spool_id: int, notices: Notices | None = None,
    judges: JudgePool | None = None,
) -> tuple[str, Outcome | None]:
    """Like `process`, also returning the outcome (None when this call did not decide it).

    `judges` is the daemon's pool; without one, this process's shared pool judges the mail.
    """
    pending = inbox.begin_attempt(engine, spool_id, settings.policy.max_attempts)
    if pending is None:
        return inbox.status(engine, spool_id), None
    attempt = pending.attempts
    try:
        # Parsing and the content rules run before the transaction: on SQLite the transaction
        # holds the write lock, and SMTP intake must not wait for libmagic to say 250.
        envelope = inbox.envelope_of(pending)
        judged = (judges or judgepool.shared()).judge(pending.raw, envelope, settings)
        with Session(engine, expire_on_commit=False) as db:
            row = _claim(db, spool_id)
            if row is None:
                db.rollback()
                return inbox.status(engine, spool_id), None
            files = FileStore(settings.storage.attachments_dir)
            outcome = act(Context(db, settings, notices or Notices(settings), files, spool_id, envelope=envelope),
                          judged)
            row.verdict, row.case_number = outcome.verdict, outcome.case
            row.reason = None if outcome.reason is None else storable(outcome.reason)
            row.trace = ",".join(outcome.trace)
            row.auth = str(judged.mail.auth) if judged.mail else None
            row.status = "quarantined" if outcome.verdict in ("quarantined", "rejected") else "done"
            db.add(row)
            db.commit()
    except JudgeUnavailable:  # shutting down: the mail stays pending for the next start
        inbox.undo_attempt(engine, spool_id)  # an ordered stop is no crash: it does not count
        return "pending", None
    except Exception as exc:
        error = storable(f"{type(exc).__name__}: {exc}")
        retry = timedelta(seconds=settings.policy.retry_base_seconds)
        state = inbox.record_failure(engine, spool_id, error, settings.policy.max_attempts, retry)
        event("processing-failed", logging.ERROR, spool=spool_id, attempt=attempt, error=error, state=state,
              source=pending.source)
        return state, None
    event(
        VERDICT_EVENTS[outcome.verdict],
        spool=spool_id, message_id=outcome.message_id, case=outcome.case, verdict=outcome.verdict,
        reason=outcome.reason, auth=outcome.auth["result"] if outcome.auth else None, trace=",".join(outcome.trace),
        source=pending.source,
    )
    return row.status, outcome


def dry_run(engine: Engine, settings: Settings, raw: bytes, envelope: Envelope,
            judges: JudgePool | None = None) -> Outcome:
    """The same decision as intake would make, with every write rolled back."""
    with Session(engine) as db:
        files = FileStore(settings.storage.attachments_dir, dry_run=True)
        ctx = Context(db, settings, Notices(settings), files, None, dry_run=True, envelope=envelope)
        try:
            return decide(ctx, raw, envelope, judges or judgepool.shared())
        except Exception as exc:  # intake would retry, then quarantine it with this reason
            return Outcome("quarantined", reason=f"processing failed: {type(exc).__name__}: {exc}", trace=["error"])
        finally:
            db.rollback()


def process_pending(
    engine: Engine,
    settings: Settings,
    limit: int = 50,
    notices: Notices | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    judges: JudgePool | None = None,
) -> int:
    """Process due spool rows, oldest first; returns how many were looked at."""
    ids = inbox.due(engine, utcnow(), limit)
    notices = notices or Notices(settings)
    for done, spool_id in enumerate(ids):
        if should_stop():
            return done
        process(engine, settings, spool_id, notices, judges)
    return len(ids)
