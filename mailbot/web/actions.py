"""What the case page's forms do, each in one transaction with the mail it causes.

"Escalate the ticket in critical situations by activating the call-back service" (nexato): a
callback request makes the case urgent, mails the agents at once and stays open until an agent
writes `#callback done`; one request at a time, so a double click or a refreshed form cannot
mail the agents twice. "My problem is solved" moves the case to resolved with the usual status
mail. Both are recorded on the case as a message of kind `web` (its subject names the action),
so agents see them in `case show`.
"""

from __future__ import annotations

import re

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from mailbot import db, priority
from mailbot.cases import Context, send
from mailbot.config import Settings
from mailbot.files import FileStore
from mailbot.models import Case, Message, Participant, key, utcnow
from mailbot.notices import Notices
from mailbot.status import change_status

PHONE = re.compile(r"\+?[0-9][0-9 ()/.-]{4,28}[0-9]")
NOTE_LIMIT = 500
OPEN_STATUSES = ("new", "open", "waiting")


class Refused(ValueError):
    """A form that cannot be carried out; `reason` names the page's message for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_note(text: str) -> str:
    """The customer's note: printable, lines kept, at most NOTE_LIMIT characters."""
    lines = ("".join(c for c in line if c.isprintable()).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)[:NOTE_LIMIT]


def _record(ctx: Context, case: Case, action: str, text: str) -> None:
    ctx.db.add(Message(case_id=key(case), direction="in", from_addr=case.requester, subject=action,
                       text=text, text_new=text, kind="web"))


def _agents(ctx: Context, case: Case) -> list[str]:
    """Who hears of a callback request: the configured agent addresses and the case's agents."""
    on_case = ctx.db.exec(select(Participant.address).where(Participant.case_id == case.id,
                                                            Participant.role == "agent")).all()
    return list(dict.fromkeys([*ctx.settings.agents.addresses, *on_case]))


def request_callback(engine: Engine, settings: Settings, case_id: int, phone: str, note: str) -> list[str]:
    """Record the request, make the case urgent and mail the agents; returns who was mailed."""
    phone = " ".join(phone.split())
    if PHONE.fullmatch(phone) is None:
        raise Refused("phone")
    with db.session(engine) as session:
        # One open request at a time, decided by the row itself: two clicks cannot both pass.
        claimed = session.execute(
            update(Case).where(col(Case.id) == case_id, col(Case.callback_requested_at).is_(None),
                               col(Case.status) != "closed")
            .values(callback_requested_at=utcnow(), callback_phone=phone)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            raise Refused("callback_open")
        case = session.get(Case, case_id)
        assert case is not None
        ctx = Context(session, settings, Notices(settings), FileStore(settings.storage.attachments_dir), None)
        priority.change_priority(ctx, case, "urgent", actor="case-page")
        _record(ctx, case, "callback_requested", note)
        recipients = _agents(ctx, case)
        send(ctx, "callback_requested", recipients, {"phone": phone, "note": note}, case=case, answering=None)
    return [notice["to"] for notice in ctx.queued]


def mark_solved(engine: Engine, settings: Settings, case_id: int) -> None:
    """Move the case to resolved (the status mail goes to the customer side as always)."""
    with db.session(engine) as session:
        case = session.get(Case, case_id)
        if case is None or case.status not in OPEN_STATUSES:
            raise Refused("not_open")
        ctx = Context(session, settings, Notices(settings), FileStore(settings.storage.attachments_dir), None)
        _record(ctx, case, "solved", "")
        change_status(ctx, case, "resolved", actor="case-page")
