"""What the case page shows, read from the database in one go (called in a worker thread).

Only what the customer side may see: their own and their CC'd participants' mails, the agents'
relayed answers without command lines, and the page's own actions. Internal notes, automatic
notices and agents' refused mails never appear. "Was my mail processed?" lists every mail the
spool matched to this case, refused ones included, so a customer whose mail "got lost" sees
that it arrived and why it was not added, instead of phoning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailbot import agents
from mailbot.checks.attachments import ZIP
from mailbot.config import Settings
from mailbot.headertext import decode, getaddresses
from mailbot.models import Attachment, Case, InboundSpool, Message, Participant
from mailbot.notices import attachment_name
from mailbot.overdue import OWED_STATUSES
from mailbot.web import links

HEADER_BYTES = 16384  # enough for the From and Subject of any sane mail; never the whole body
SHOWN_KINDS = ("mail", "agent", "web")


@dataclass(frozen=True)
class File:
    id: int
    name: str
    type: str
    size: int


@dataclass(frozen=True)
class Entry:
    """One message in the history; `author` is customer | participant | support | page."""

    date: datetime
    author: str
    name: str
    text: str
    full: str | None  # the whole text, when quoted history was folded away
    files: tuple[File, ...]
    action: str | None = None  # for the page's own entries: callback_requested | solved


@dataclass(frozen=True)
class Arrival:
    """One mail that arrived for the case, with what became of it."""

    date: datetime
    author: str  # customer | participant | other
    name: str
    subject: str
    verdict: str | None
    reason: str | None


@dataclass(frozen=True)
class CaseView:
    case: Case
    answer_due: datetime | None
    history: tuple[Entry, ...]
    arrivals: tuple[Arrival, ...]


def find(engine: Engine, settings: Settings, number: int, signature: str) -> Case | None:
    """The case if `signature` is its link's; None for a missing case and a wrong link alike."""
    with Session(engine) as db:
        case = db.exec(select(Case).where(Case.number == number)).first()
    if case is None or not links.verify(number, case.link_salt, signature, settings.tokens):
        return None
    return case


def _headers(head: bytes) -> tuple[str, str, str]:
    """(address, display name, subject) of a mail's header, read the forgiving way intake reads it
    (compat32 and mailbot.headertext: fast, and a hostile header cannot raise)."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(head)
    found = getaddresses([str(value) for value in parsed.get_all("From", [])])
    name, address = found[0] if found else ("", "")
    return address.strip().lower(), decode(name), decode(str(parsed["Subject"] or ""))


def offered_types(settings: Settings) -> tuple[str, ...]:
    """The file types offered for download: those the policy lets in (not signatures or reports)."""
    return (ZIP, *settings.attachments.allowed_types)


def _files(db: Session, settings: Settings, message_ids: list[int]) -> dict[int, list[File]]:
    found: dict[int, list[File]] = {}
    if not message_ids:
        return found
    query = select(Attachment).where(col(Attachment.message_row_id).in_(message_ids),
                                     col(Attachment.detected_type).in_(offered_types(settings)))
    query = query.order_by(col(Attachment.id))
    for row in db.exec(query).all():
        assert row.id is not None
        name = attachment_name(row.filename, row.id)
        found.setdefault(row.message_row_id, []).append(File(row.id, name, row.detected_type, row.size))
    return found


def _shown_text(row: Message) -> str:
    """The new text of a message as the customer side saw it: an agent's without its command lines."""
    text = row.text_new or row.text
    if row.kind == "agent":
        try:
            return agents.read_commands(text)[1]
        except agents.CommandError:
            return ""
    return text.strip()


def load(engine: Engine, settings: Settings, case: Case) -> CaseView:
    """Everything the page shows for `case`."""
    with Session(engine) as db:
        roles = dict(db.exec(select(Participant.address, Participant.role)
                             .where(Participant.case_id == case.id)).all())
        spool = db.execute(
            select_columns(col(InboundSpool.id), col(InboundSpool.received_at), col(InboundSpool.verdict),
                           col(InboundSpool.reason), func.substr(InboundSpool.raw, 1, HEADER_BYTES))
            .where(col(InboundSpool.case_number) == case.number, col(InboundSpool.status) != "pending")
            .order_by(col(InboundSpool.id))
        ).all()
        senders = {spool_id: _headers(bytes(head)) for spool_id, _, _, _, head in spool}
        messages = db.exec(
            select(Message).where(Message.case_id == case.id, Message.direction == "in",
                                  col(Message.internal).is_(False), col(Message.kind).in_(SHOWN_KINDS))
            .order_by(col(Message.id))
        ).all()
        files = _files(db, settings, [m.id for m in messages if m.id is not None])

    def author(address: str) -> str:
        role = roles.get(address)
        if address == case.requester:
            return "customer"
        if role == "agent" or settings.agents.covers(address):
            return "support"
        return "participant" if role == "cc" else "other"

    history = []
    for row in messages:
        text = _shown_text(row)
        if not text and not files.get(row.id or 0) and row.kind != "web":
            continue  # an agent's mail that only carried commands
        name = senders.get(row.spool_id or 0, ("", "", ""))[1] or row.from_addr
        folded = row.kind == "mail" and row.text_new and row.text.split() != text.split()
        full = row.text.strip() if folded else None
        who = "page" if row.kind == "web" else "support" if row.kind == "agent" else author(row.from_addr)
        action = row.subject if row.kind == "web" else None
        history.append(Entry(row.date, who, name, text, full, tuple(files.get(row.id or 0, ())), action))
    arrivals = []
    for spool_id, received, verdict, reason, _ in spool:
        address, name, subject = senders[spool_id]
        who = author(address)
        if who == "support":
            continue  # agents' mail is not the customer's to check
        arrivals.append(Arrival(received, who, name or address, subject if who != "other" else "",
                                verdict, reason))
    due = case.answer_due if case.answered_at is None and case.status in OWED_STATUSES else None
    return CaseView(case, due, tuple(history), tuple(arrivals))


def attachment(engine: Engine, settings: Settings, case: Case, attachment_id: int) -> Attachment | None:
    """An offered attachment of a customer-visible message of `case`, or None."""
    with Session(engine) as db:
        query = (
            select(Attachment)
            .join(Message, col(Message.id) == Attachment.message_row_id)
            .where(col(Attachment.id) == attachment_id, Message.case_id == case.id,
                   col(Attachment.detected_type).in_(offered_types(settings)),
                   col(Message.internal).is_(False), col(Message.kind).in_(SHOWN_KINDS))
        )
        return db.exec(query).first()
