"""The new part of a reply: its text without the quoted history and the signature.

A case shows each reply once; repeating the whole thread under every reply buries what the
customer just wrote. The markers are those of the clients customers use (Outlook in German and
English, Gmail, Apple Mail, Thunderbird, mobile mail): "> " quoting with its attribution line,
unquoted history under a separator or an Outlook header block, "-- " signatures, "Sent from my
iPhone". Nothing is lost by a wrong guess: with no new text left, the whole text is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_QUOTED = re.compile(r"\s*>")
_SIG_DASHES = re.compile(r"--\s*")  # RFC 3676 "-- "; many clients drop the trailing space
_MOBILE = re.compile(
    r"(?:Sent from|Gesendet von) (?:my|meinem|Outlook|Mail)\b.{0,50}"
    r"|Von meinem .{1,40} gesendet|Get Outlook for .{1,50}",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"\s*-{2,}\s*(?:Original Message|Original-Nachricht|Urspr(?:ü|ue)ngliche Nachricht)\s*-{2,}\s*",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"\s*_{10,}\s*")  # Outlook's rule above its header block
_HEADER = re.compile(
    r"\s*\*?(from|von|sent|gesendet|date|datum|to|an|cc|subject|betreff)\s*:\*?(?:\s|$)",
    re.IGNORECASE,
)
_HEADER_KEY = {"von": "from", "sent": "date", "gesendet": "date", "datum": "date", "an": "to",
               "betreff": "subject"}  # fmt: skip
_HEADER_WINDOW = 8  # lines an Outlook header block spans, long To: lines wrapped
# "On Mon, 3 Jun 2024 at 10:15, Name <a@b> wrote:" / "Am 03.06.2024 um 10:15 schrieb Name:";
# Yahoo puts "--- " in front.
_ATTRIBUTION = re.compile(r"(?:-+\s*)?(?:On\s.*\swrote|Am\s.*\sschrieb(?:\s.*)?)\s*:")
# "bob wrote:" and its translations: only taken as an attribution right above a "> " quote.
_LOOSE_ATTRIBUTION = re.compile(
    r".{0,120}\b(?:wrote|schrieb|a écrit|escribió|schreef|skrev)\b[^:]{0,80}:", re.IGNORECASE
)
_MAX_ATTRIBUTION = 300


def _next_content(lines: Sequence[str], start: int) -> int | None:
    return next((i for i in range(start, len(lines)) if lines[i].strip()), None)


def _quote_follows(lines: Sequence[str], start: int) -> bool:
    found = _next_content(lines, start)
    return found is not None and bool(_QUOTED.match(lines[found]))


def _attribution(lines: Sequence[str], i: int) -> tuple[int, bool]:
    """(lines it spans, strict) for an attribution at line i; (0, False) if there is none.

    Strict ones (a date, "On ... wrote:" / "Am ... schrieb ...:") also introduce unquoted
    history; Gmail wraps them over two lines.
    """
    for span in (1, 2):
        chunk = lines[i : i + span]
        if len(chunk) < span or not chunk[-1].strip() or _QUOTED.match(chunk[-1]):
            break
        text = " ".join(line.strip() for line in chunk)
        if len(text) > _MAX_ATTRIBUTION:
            break
        if _ATTRIBUTION.fullmatch(text) and any(c.isdigit() for c in text):
            return span, True
        if span == 1 and _LOOSE_ATTRIBUTION.fullmatch(text):
            return 1, False
    return 0, False


def _header_block(lines: Sequence[str], i: int) -> bool:
    """An Outlook/webmail header block ("Von: ... Gesendet: ... An: ... Betreff: ...") at i."""
    if not _HEADER.match(lines[i]):
        return False
    keys = set()
    for line in lines[i : i + _HEADER_WINDOW]:
        found = _HEADER.match(line)
        if found:
            key = found[1].lower()
            keys.add(_HEADER_KEY.get(key, key))
    return {"from", "subject"} <= keys and len(keys) >= 3


def _history_starts(lines: Sequence[str], i: int) -> bool:
    """Everything from line i on is signature or quoted history."""
    line = lines[i]
    if _SIG_DASHES.fullmatch(line) or _MOBILE.fullmatch(line.strip()) or _SEPARATOR.fullmatch(line):
        return True
    if _UNDERSCORES.fullmatch(line):
        following = _next_content(lines, i + 1)
        return following is not None and _header_block(lines, following)
    return _header_block(lines, i)


def _tidy(lines: Sequence[str]) -> str:
    kept: list[str] = []
    for line in (line.rstrip() for line in lines):
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")


def new_part(text: str) -> str:
    """The text the sender wrote in this reply; the whole (tidied) text if none is found."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        if _QUOTED.match(lines[i]):
            i += 1
            continue
        span, strict = _attribution(lines, i)
        if span and _quote_follows(lines, i + span):
            i += span
            continue
        if (span and strict) or _history_starts(lines, i):
            break
        kept.append(lines[i])
        i += 1
    return _tidy(kept) or _tidy(lines)
