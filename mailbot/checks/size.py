"""Refuse a mail larger than the configured maximum, which IMAP intake cannot refuse earlier.

SMTP intake already answers 552 for these; the rule keeps one limit for every way in. For a
huge mail IMAP fetches only the header, so the size the server declared counts as well.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Reject


def _human(size: int) -> str:
    return f"{size / 1024 ** 2:.1f} MB" if size >= 1024 ** 2 else f"{size / 1024:.0f} KB"


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    limit = settings.smtp.max_message_size
    size = max(mail.shape.raw_size, envelope.declared_size or 0)
    if size > limit:
        return Reject("too_large", (f"{_human(size)} > {_human(limit)}",))
    return None
