"""Refuse content that cannot be read: PGP/MIME, inline PGP, S/MIME enveloped or opaque-signed.

A support case needs the words; the sender is asked to send the mail again unencrypted. A
detached signature leaves the mail readable and is no reason to refuse it.
"""

from __future__ import annotations

from mailbot.checks.crypto import PGP_MESSAGE_ARMOR, is_unreadable
from mailbot.checks.describe import describe
from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Reject


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    details = [describe(part) for part in mail.attachments if is_unreadable(part)]
    if "multipart/encrypted" in mail.content_types and not details:
        details.append("multipart/encrypted")
    if any(line.strip() == PGP_MESSAGE_ARMOR for line in mail.text.splitlines()):
        details.append("inline PGP message")
    return Reject("encrypted", tuple(details)) if details else None
