"""Refuse a mail larger than the configured maximum, which IMAP intake cannot refuse earlier.

SMTP intake already answers 552 for these; the rule keeps one limit for every way in. For a
huge mail IMAP fetches only the header, so the size the server declared counts as well.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Reject

MB = 1024 * 1024


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    limit = settings.smtp.max_message_size
    size = max(mail.shape.raw_size, envelope.declared_size or 0)
    if size > limit:
        return Reject("too_large", (f"{size / MB:.1f} MB > {limit / MB:.1f} MB",))
    return None
