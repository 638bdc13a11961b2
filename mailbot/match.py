"""Which case a mail belongs to: the token in the subject, else the thread headers.

The token wins because customers are asked to keep the subject; In-Reply-To/References catch
clients that dropped it. The rule that matched goes into the decision trace.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from mailbot import casetoken
from mailbot.config import Settings
from mailbot.mail import ParsedMail
from mailbot.models import Case, Message


def by_token(db: Session, mail: ParsedMail, settings: Settings) -> Case | None:
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


def find_case(db: Session, mail: ParsedMail, settings: Settings) -> tuple[Case | None, str]:
    """(case or None, name of the rule that decided)."""
    case = by_token(db, mail, settings)
    if case is not None:
        return case, "match_token"
    case = by_headers(db, mail)
    if case is not None:
        return case, "match_headers"
    return None, "match_none"
