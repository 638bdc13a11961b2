"""Quarantine a mail whose structure is beyond sane limits; a human looks at it instead.

Such a mail is either broken or built to exhaust a parser, and its sender may be a robot, so
neither a case nor a notice is right.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Quarantine


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    limits = settings.limits
    shape = mail.shape
    measures = (
        ("header_count", shape.header_count, limits.header_count),
        ("header_length", shape.longest_header, limits.header_length),
        ("line_length", shape.longest_line, limits.line_length),
        ("mime_depth", shape.mime_depth, limits.mime_depth),
        ("part_count", shape.part_count, limits.part_count),
    )
    for name, value, limit in measures:
        if value > limit:
            return Quarantine(f"{name} {value} > {limit}")
    return None
