"""Which case a mail belongs to: the token in the subject, else the thread headers, else
(where configured) the subject of a recent open case of the sender's.

The token wins because customers are asked to keep the subject; In-Reply-To/References catch
clients that dropped it. Customers also start a new mail with "Re: <old subject>" and neither
(Roundup threads those by title): `[policy] subject_followup_days` lets such a mail join the
sender's own open case with the same subject. The rule that matched goes into the trace.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from mailbot import casetoken, subjects
from mailbot.config import Settings
from mailbot.mail import ParsedMail
from mailbot.models import Case, Message, Participant, utcnow


def token_case(db: Session, mail: ParsedMail, settings: Settings) -> Case | None:
    number = casetoken.find(mail.subject, settings.tokens)
    if number is None:
        return None
    return db.exec(select(Case).where(Case.number == number)).first()


def by_headers(db: Session, mail: ParsedMail) -> Case | None:
    """The newest case holding a message this mail answers or references."""
    ids = list(dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)]))
    if not ids:
        return None
    query = select(Message.case_id).where(col(Message.message_id).in_(ids)).order_by(col(Message.id).desc())
    case_id = db.exec(query).first()
    return db.get(Case, case_id) if case_id is not None else None


def _topic(subject: str, settings: Settings) -> str:
    """A subject as compared: no token, no reply markers or list tags, case and spacing ignored."""
    return " ".join(subjects.strip_prefixes(casetoken.strip(subject, settings.tokens)).split()).casefold()


def by_subject(db: Session, mail: ParsedMail, settings: Settings) -> Case | None:
    """The sender's most recently active open case with the same subject, active within
    `subject_followup_days`; never a closed case, never a case the sender is not on."""
    days = settings.policy.subject_followup_days
    topic = _topic(mail.subject, settings)
    if not days or not topic:
        return None
    query = (
        select(Case)
        .join(Participant, col(Participant.case_id) == Case.id)
        .where(Participant.address == mail.from_addr, Case.status != "closed",
               Case.updated >= utcnow() - timedelta(days=days))
        .order_by(col(Case.updated).desc())
    )
    return next((case for case in db.exec(query).all() if _topic(case.subject, settings) == topic), None)


def find_case(db: Session, mail: ParsedMail, settings: Settings, *, by_token: bool = True) -> tuple[Case | None, str]:
    """(case or None, name of the rule that decided); `by_token=False` skips the token (for a
    sender past the guessing limit)."""
    case = token_case(db, mail, settings) if by_token else None
    if case is not None:
        return case, "match_token"
    case = by_headers(db, mail)
    if case is not None:
        return case, "match_headers"
    case = by_subject(db, mail, settings)
    if case is not None:
        return case, "match_subject"
    return None, "match_none"
