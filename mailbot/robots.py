"""What mailbot keeps of machine mail it never answers.

An out-of-office reply to a case mail is worth seeing on the case (the customer is away), but
must not reopen or touch its status. A delivery status notification about a mail we sent is
recorded on that outbox row, so an operator can see that a receipt never arrived.
"""

from __future__ import annotations

import re

from sqlmodel import col, select

from mailbot.cases import Context, record_message
from mailbot.mail import ParsedMail
from mailbot.match import find_case
from mailbot.models import Outbox, utcnow

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(rb"^Status:\s*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)
_DIAGNOSTIC = re.compile(rb"^Diagnostic-Code:\s*([^\r\n]{1,300})", re.IGNORECASE | re.MULTILINE)


def record_auto_reply(ctx: Context, mail: ParsedMail, trace: list[str]) -> int | None:
    """Note an auto-reply on the case it answers, if any; returns that case's number."""
    case, rule = find_case(ctx.db, mail, ctx.settings)
    if case is None:
        return None
    trace.append(rule)
    status = case.status
    record_message(ctx, case, mail, kind="auto_reply")
    case.status = status
    return case.number


def _referenced_ids(mail: ParsedMail) -> list[bytes]:
    """Message-IDs the report is about: its returned headers, then its threading headers."""
    found: list[bytes] = []
    for part in mail.attachments:
        found.extend(_MESSAGE_ID.findall(part.payload))
    found.extend(_MESSAGE_ID.findall(mail.text.encode("utf-8", "replace")))
    found.extend(i.encode() for i in (*mail.in_reply_to, *mail.references))
    return list(dict.fromkeys(found))


def record_bounce(ctx: Context, mail: ParsedMail, trace: list[str]) -> int | None:
    """Attach a DSN to the outbox row of the mail it reports on; returns that row's id."""
    ids = [i.decode("ascii", "replace") for i in _referenced_ids(mail)]
    if not ids:
        return None
    row = ctx.db.exec(select(Outbox).where(col(Outbox.message_id).in_(ids))).first()
    if row is None:
        return None
    blob = b"\n".join(part.payload for part in mail.attachments) + mail.text.encode("utf-8", "replace")
    status = _STATUS.search(blob)
    diagnostic = _DIAGNOSTIC.search(blob)
    row.bounced_at = utcnow()
    row.bounce_info = " ".join(
        m.group(1).decode("utf-8", "replace").strip() for m in (status, diagnostic) if m is not None
    ) or mail.subject[:300]
    ctx.db.add(row)
    trace.append("bounce_recorded")
    return row.id
