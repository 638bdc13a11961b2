"""Spooled mails' way: parse -> checks -> match -> act, a batch in one transaction.

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
from mailbot.models import InboundSpool, key, utcnow
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


def _claim(db: Session, spool_ids: list[int]) -> set[int]:
    """Lock the rows for this transaction; those another worker finished meanwhile are left out.

    It is the transaction's first statement, so on SQLite the savepoints come inside it.
    """
    claimed = db.connection().execute(
        update(InboundSpool)
        .where(col(InboundSpool.id).in_(spool_ids), col(InboundSpool.status) == "pending")
        .values(processed_at=utcnow())
        .returning(col(InboundSpool.id))
    )
    return {int(spool_id) for spool_id in claimed.scalars() if spool_id is not None}


Result = tuple[str, Outcome | None]  # the row's state, and the outcome when this call decided it
# Mails per transaction: enough to share the commit, few enough that SQLite's write lock is
# never held long against SMTP intake, and IMAP moves a fetch batch soon after its commits.
MAX_BATCH = 25


def _state(outcome: Outcome) -> str:
    return "quarantined" if outcome.verdict in ("quarantined", "rejected") else "done"


def _record(db: Session, spool_id: int, outcome: Outcome, judged: Judgement) -> None:
    db.connection().execute(update(InboundSpool).where(col(InboundSpool.id) == spool_id).values(
        verdict=outcome.verdict, reason=None if outcome.reason is None else storable(outcome.reason),
        case_number=outcome.case, trace=",".join(outcome.trace), status=_state(outcome),
        auth=str(judged.mail.auth) if judged.mail else None,
    ))


def _act_all(engine: Engine, settings: Settings, notices: Notices, rows: list[tuple[int, Envelope, Judgement]]
             ) -> tuple[dict[int, Outcome], dict[int, str], set[int]]:
    """One transaction, a SAVEPOINT per mail: (decided, failed with their errors, not claimed)."""
    decided: dict[int, Outcome] = {}
    failed: dict[int, str] = {}
    files = FileStore(settings.storage.attachments_dir)
    with Session(engine, expire_on_commit=False) as db:
        claimed = _claim(db, [spool_id for spool_id, _, _ in rows])
        for spool_id, envelope, judged in rows:
            if spool_id not in claimed:
                continue
            try:
                with db.begin_nested():
                    ctx = Context(db, settings, notices, files, spool_id, envelope=envelope)
                    decided[spool_id] = act(ctx, judged)
                    _record(db, spool_id, decided[spool_id], judged)
            except Exception as exc:  # this mail alone rolls back; the others go on
                decided.pop(spool_id, None)
                failed[spool_id] = storable(f"{type(exc).__name__}: {exc}")
        db.commit()
    return decided, failed, {spool_id for spool_id, _, _ in rows} - claimed


def process_batch(engine: Engine, settings: Settings, spool_ids: list[int], notices: Notices | None = None,
                  judges: JudgePool | None = None) -> dict[int, Result]:
    """Process these spool rows together; safe to call from any thread.

    Attempts are counted first (one commit), the mails judged in parallel in the pool, outside
    any transaction (on SQLite the transaction holds the write lock, and SMTP intake must not
    wait for libmagic), then acted on in spool order in one transaction, one SAVEPOINT each:
    a mail that fails rolls back alone and is retried (quarantined after `max_attempts`), and
    a reply never overtakes the mail that opens its case. `judges` is the daemon's pool;
    without one, this process's shared pool judges.
    """
    pending = inbox.begin_attempts(engine, spool_ids, settings.policy.max_attempts)
    attempts = {key(row): row.attempts for row in pending}
    sources = {key(row): row.source for row in pending}
    results: dict[int, Result] = {}
    envelopes = [inbox.envelope_of(row) for row in pending]
    try:
        judged = (judges or judgepool.shared()).judge_many(
            [(row.raw, envelope) for row, envelope in zip(pending, envelopes, strict=True)], settings)
        work = [(key(row), envelope, judgement)
                for row, envelope, judgement in zip(pending, envelopes, judged, strict=True)]
        decided, failed, lost = _act_all(engine, settings, notices or Notices(settings), work)
    except JudgeUnavailable:  # shutting down: the mails stay pending for the next start
        for row in pending:
            inbox.undo_attempt(engine, key(row))  # an ordered stop is no crash: it does not count
        return {key(row): ("pending", None) for row in pending}
    except Exception as exc:  # the batch's transaction failed as a whole (e.g. the database went away)
        error = storable(f"{type(exc).__name__}: {exc}")
        decided, failed, lost = {}, {key(row): error for row in pending}, set()
    retry = timedelta(seconds=settings.policy.retry_base_seconds)
    for spool_id, error in failed.items():
        state = inbox.record_failure(engine, spool_id, error, settings.policy.max_attempts, retry)
        event("processing-failed", logging.ERROR, spool=spool_id, attempt=attempts[spool_id], error=error,
              state=state, source=sources[spool_id])
        results[spool_id] = (state, None)
    for spool_id, outcome in decided.items():
        event(
            VERDICT_EVENTS[outcome.verdict],
            spool=spool_id, message_id=outcome.message_id, case=outcome.case, verdict=outcome.verdict,
            reason=outcome.reason, auth=outcome.auth["result"] if outcome.auth else None,
            trace=",".join(outcome.trace), source=sources[spool_id],
        )
        results[spool_id] = (_state(outcome), outcome)
    for spool_id in set(spool_ids) - set(results) | lost:
        results[spool_id] = (inbox.status(engine, spool_id), None)
    return results


def process(engine: Engine, settings: Settings, spool_id: int, notices: Notices | None = None,
            judges: JudgePool | None = None) -> str:
    """Process one spooled mail now; safe to call from any thread. Returns the row's state."""
    return run(engine, settings, spool_id, notices, judges)[0]


def run(engine: Engine, settings: Settings, spool_id: int, notices: Notices | None = None,
        judges: JudgePool | None = None) -> Result:
    """Like `process`, also returning the outcome (None when this call did not decide it)."""
    return process_batch(engine, settings, [spool_id], notices, judges)[spool_id]


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
    """Process due spool rows (see `process_in_order`); returns how many were looked at."""
    due = inbox.due_with_attempts(engine, utcnow(), limit)
    if not due or should_stop():
        return 0
    process_in_order(engine, settings, due, notices, judges)
    return len(due)


def process_in_order(engine: Engine, settings: Settings, due: list[tuple[int, int]],
                     notices: Notices | None = None, judges: JudgePool | None = None) -> dict[int, Result]:
    """(spool id, attempts so far), oldest first: runs of fresh mails in batches, a mail tried
    before alone (it failed, or it was in hand when the process died: in a batch it would spend
    the attempts of the innocent mails beside it, and the crash-loop cap must quarantine the mail
    that kills the process, not its neighbours)."""
    results: dict[int, Result] = {}
    batch: list[int] = []
    for spool_id, attempts in due:
        if batch and (attempts > 0 or len(batch) == MAX_BATCH):
            results.update(process_batch(engine, settings, batch, notices, judges))
            batch = []
        if attempts > 0:
            results.update(process_batch(engine, settings, [spool_id], notices, judges))
        else:
            batch.append(spool_id)
    if batch:
        results.update(process_batch(engine, settings, batch, notices, judges))
    return results
