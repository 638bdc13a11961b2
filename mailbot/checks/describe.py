"""How a notice names an offending part: "<file name>: <what libmagic found>".

The sender knows their files by name, and the detected type tells them why it was refused
(a "rechnung.pdf" that is really "application/x-dosexec" explains itself). A name is cut at
100 characters: a notice echoes no more of the sender's text than that.
"""

from __future__ import annotations

from mailbot.mail import Part


def describe(part: Part) -> str:
    return f"{(part.filename or f'part {part.index + 1}')[:100]}: {part.detected_type}"
