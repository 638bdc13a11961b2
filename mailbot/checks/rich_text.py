"""Refuse Outlook rich text (TNEF winmail.dat) and RTF or enriched bodies: they cannot be read here.

TNEF and RTF are found by libmagic in the content, under any name or declared type; a part
that only claims to be winmail.dat or text/rtf is judged by what it really is (the corpus has
Outlook mail declaring text/rtf around a PNG). text/enriched and text/richtext have no magic
bytes, so for those the declared type is all there is; and they count only when the mail has
no plain or HTML text besides, since old mailers sent them as a mere alternative to plain text.
"""

from __future__ import annotations

from mailbot.checks.describe import describe
from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Reject

RICH_CONTENT = frozenset({"application/vnd.ms-tnef", "application/ms-tnef", "text/rtf", "application/rtf"})
RICH_DECLARED = frozenset({"text/enriched", "text/richtext"})


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    details = [describe(part) for part in mail.attachments if part.detected_type in RICH_CONTENT]
    if not (mail.text.strip() or mail.html.strip()):
        details.extend(sorted(RICH_DECLARED.intersection(mail.content_types)))
    return Reject("rich_text", tuple(details)) if details else None
