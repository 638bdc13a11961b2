"""Read models for the CLI: cases, one case with its messages, spool and outbox rows, as plain dicts.

The dict shapes are the `--json` contract, so they live in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailbot import overdue
from mailbot.models import Attachment, Case, InboundSpool, Message, Outbox, Participant, WorkerState, utcnow

# "open" means every case not closed (new, open, waiting, resolved); the others are one status each.
CASE_FILTERS = ("open", "closed", "all", "new", "waiting", "resolved")
OUTBOX_FILTERS = ("queued", "sent", "failed", "all")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _case_dict(db: Session, case: Case) -> dict[str, Any]:
    participants = db.exec(select(Participant).where(Participant.case_id == case.id)).all()
    return {
        "number": case.number,
        "token": case.token,
        "subject": case.subject,
        "status": case.status,
        "requester": case.requester,
        "language": case.language,
        "participants": [{"address": p.address, "role": p.role} for p in participants],
        "created": case.created.isoformat(),
        "updated": case.updated.isoformat(),
        "answer_due": _iso(case.answer_due),
        "answered_at": _iso(case.answered_at),
        "priority": case.priority,
        "estimate_minutes": case.estimate_minutes,
        "callback_requested_at": _iso(case.callback_requested_at),
        "callback_phone": case.callback_phone,
    }


def list_cases(engine: Engine, status: str = "open", *, overdue_only: bool = False,
               priority: str | None = None) -> list[dict[str, Any]]:
    """Cases by `status` (one of CASE_FILTERS); `overdue_only` keeps those past their answer target,
    `priority` those of one priority."""
    with Session(engine) as db:
        query = select(Case).order_by(col(Case.number))
        if status == "open":
            query = query.where(Case.status != "closed")
        elif status != "all":
            query = query.where(Case.status == status)
        if overdue_only:
            query = query.where(overdue.condition(utcnow()))
        if priority is not None:
            query = query.where(Case.priority == priority)
        return [_case_dict(db, case) for case in db.exec(query).all()]


def show_case(engine: Engine, number: int, *, full: bool = False) -> dict[str, Any] | None:
    with Session(engine) as db:
        case = db.exec(select(Case).where(Case.number == number)).first()
        if case is None:
            return None
        data = _case_dict(db, case)
        messages = db.exec(select(Message).where(Message.case_id == case.id).order_by(col(Message.id))).all()
        data["messages"] = []
        for m in messages:
            files = db.exec(select(Attachment).where(Attachment.message_row_id == m.id)).all()
            spooled = db.get(InboundSpool, m.spool_id) if m.spool_id is not None else None
            data["messages"].append({
                "direction": m.direction,
                "kind": m.kind,
                "from": m.from_addr,
                "to": m.to_addrs,
                "subject": m.subject,
                "message_id": m.message_id,
                "date": m.date.isoformat(),
                "text": m.text if full or not m.text_new else m.text_new,
                "internal": m.internal,
                "auth": spooled.auth if spooled is not None and m.direction == "in" else None,
                "attachments": [
                    {"filename": f.filename, "detected_type": f.detected_type, "size": f.size, "sha256": f.sha256}
                    for f in files
                ],
            })
        return data


def render_case(data: dict[str, Any]) -> str:
    lines = [
        f"Case {data['number']}  [{data['token']}]  {data['status']}  priority {data['priority']}",
        f"Subject:      {data['subject']}",
        f"Requester:    {data['requester']}",
        f"Language:     {data['language']}",
        "Participants: " + ", ".join(f"{p['address']} ({p['role']})" for p in data["participants"]),
        f"Created:      {data['created']}   Updated: {data['updated']}",
    ]
    for m in data["messages"]:
        arrow = "<-" if m["direction"] == "in" else "->"
        lines += ["", f"{arrow} {m['date']}  {m['from']}  {m['subject']}"]
        lines += [f"   [auth] {m['auth']}"] if m["auth"] else []
        lines += [m["text"].rstrip()]
        lines += [f"   [attachment] {a['filename'] or '(unnamed)'}  {a['detected_type']}  {a['size']} B"
                  for a in m["attachments"]]
    return "\n".join(lines)


def spool_summary(row: InboundSpool) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": row.received_at.isoformat(),
        "source": row.source,
        "mail_from": row.mail_from,
        "message_id": row.message_id,
        "verdict": row.verdict,
        "reason": row.reason,
        "auth": row.auth,
        "peer": row.peer,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "size": len(row.raw),
    }


def render_spool(row: InboundSpool) -> str:
    """A quarantined mail for a human: why and whence first, then the mail as text."""
    lines = [
        f"Spool {row.id}  {row.status}  {row.verdict or '-'}: {row.reason or '-'}",
        f"Received:   {row.received_at.isoformat()}  via {row.source}",
        f"Envelope:   from {row.mail_from or '<>'} to {row.rcpt_to}",
        f"Message-ID: {row.message_id or '-'}",
        f"Attempts:   {row.attempts}" + (f"  last error: {row.last_error}" if row.last_error else ""),
    ]
    return "\n".join(lines) + "\n\n" + row.raw.decode("utf-8", "replace").replace("\r\n", "\n")


def outbox_summary(row: Outbox, case_number: int | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "case": case_number,
        "kind": row.kind,
        "recipient": row.recipient,
        "status": row.status,
        "attempts": row.attempts,
        "created": row.created.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "sent_at": _iso(row.sent_at),
        "last_error": row.last_error,
        "message_id": row.message_id,
    }


def list_outbox(engine: Engine, status: str = "queued") -> list[dict[str, Any]]:
    """Outgoing mail by `status` (one of OUTBOX_FILTERS), oldest first."""
    with Session(engine) as db:
        query = select(Outbox, Case.number).join(Case, col(Case.id) == Outbox.case_id, isouter=True)
        if status != "all":
            query = query.where(Outbox.status == status)
        return [outbox_summary(row, number) for row, number in db.exec(query.order_by(col(Outbox.id))).all()]


STALE_SECONDS = 30.0  # a heartbeat older than this: the daemon is gone or its database hangs


def _age(moment: datetime | None, now: datetime) -> float | None:
    """Seconds since `moment` (SQLite hands datetimes back without their zone: they are UTC)."""
    if moment is None:
        return None
    return round((now - (moment if moment.tzinfo else moment.replace(tzinfo=UTC))).total_seconds(), 1)


def status(engine: Engine, stall_seconds: float) -> dict[str, Any]:
    """Queue depths and each worker's state, for `mailbot status`; `healthy` is False when a
    worker is stalled or failing, or its heartbeat is stale."""
    now = utcnow()
    with Session(engine) as db:
        def count(model: type[InboundSpool] | type[Outbox], state: str) -> int:
            return int(db.exec(select(func.count()).select_from(model).where(model.status == state)).one())

        oldest = db.exec(select(func.min(Outbox.created)).where(
            Outbox.status == "queued", col(Outbox.deadline_at).is_not(None))).one()
        rows = db.exec(select(WorkerState).order_by(col(WorkerState.instance), col(WorkerState.worker))).all()
        workers = []
        for row in rows:
            heartbeat_age = _age(row.heartbeat, now) or 0.0
            state = row.state
            if state == "busy" and row.busy_seconds > stall_seconds:
                state = "stalled"
            if state != "stopped" and heartbeat_age > STALE_SECONDS:
                state = "no-heartbeat"
            workers.append({
                "instance": row.instance, "worker": row.worker, "host": row.host, "pid": row.pid, "state": state,
                "since": _iso(row.since), "heartbeat_age_seconds": heartbeat_age, "busy_seconds": row.busy_seconds,
                "last_progress": _iso(row.last_progress), "failures": row.failures, "last_error": row.last_error,
            })
        return {
            "spool": {"pending": count(InboundSpool, "pending"), "quarantined": count(InboundSpool, "quarantined")},
            "outbox": {"queued": count(Outbox, "queued"), "failed": count(Outbox, "failed"),
                       "oldest_unsent_receipt_seconds": _age(oldest, now)},
            "workers": workers,
            "healthy": all(w["state"] in ("starting", "idle", "busy", "stopped") for w in workers),
        }


def render_status(data: dict[str, Any]) -> str:
    spool, out = data["spool"], data["outbox"]
    oldest = out["oldest_unsent_receipt_seconds"]
    lines = [
        f"spool:   {spool['pending']} pending, {spool['quarantined']} quarantined",
        f"outbox:  {out['queued']} queued, {out['failed']} failed"
        + (f"; oldest unsent receipt {oldest:.0f} s old" if oldest is not None else ""),
    ]
    if not data["workers"]:
        lines.append("workers: none recorded (has `mailbot run` started on this database?)")
    for w in data["workers"]:
        detail = {"busy": f" for {w['busy_seconds']:.0f} s", "stalled": f" for {w['busy_seconds']:.0f} s",
                  "failing": f", {w['failures']} failures: {w['last_error']}",
                  "no-heartbeat": f" (last {w['heartbeat_age_seconds']:.0f} s ago)"}.get(w["state"], "")
        lines.append(f"{w['instance']}/{w['worker']}: {w['state']}{detail}  (pid {w['pid']}, since {w['since']})")
    return "\n".join(lines)
