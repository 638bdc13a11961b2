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
from dataclasses import dataclass

_SIG_DASHES = "--"  # RFC 3676 "-- "; many clients drop the trailing space
_MOBILE = re.compile(
    r"(?:Sent from|Gesendet von) (?:my|meinem|Outlook|Mail)\b.{0,50}"
    r"|Von meinem .{1,40} gesendet|Get Outlook for .{1,50}",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"-{2,}\s*(?:Original Message|Original-Nachricht|Urspr(?:ü|ue)ngliche Nachricht)\s*-{2,}",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"_{10,}")  # Outlook's rule above its header block
_HEADER = re.compile(
    r"\*?(from|von|sent|gesendet|date|datum|to|an|cc|subject|betreff)\s*:\*?(?:\s|$)",
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


@dataclass(frozen=True)
class _Lines:
    """The text's lines, stripped, with what is known of each line computed once."""

    bare: Sequence[str]
    header_keys: Sequence[str | None]  # "from", "date", "to", "cc", "subject" or None

    @classmethod
    def of(cls, lines: Sequence[str]) -> _Lines:
        bare = [line.strip() for line in lines]
        keys = []
        for line in bare:
            found = _HEADER.match(line)
            key = found[1].lower() if found else None
            keys.append(_HEADER_KEY.get(key, key) if key else None)
        return cls(bare, keys)

    def quoted(self, i: int) -> bool:
        return self.bare[i].startswith(">")

    def next_content(self, start: int) -> int | None:
        return next((i for i in range(start, len(self.bare)) if self.bare[i]), None)

    def quote_follows(self, start: int) -> bool:
        found = self.next_content(start)
        return found is not None and self.quoted(found)

    def attribution(self, i: int) -> tuple[int, bool]:
        """(lines it spans, strict) for an attribution at line i; (0, False) if there is none.

        Strict ones (a date, "On ... wrote:" / "Am ... schrieb ...:") also introduce unquoted
        history; Gmail wraps them over two lines.
        """
        for span in (1, 2):
            chunk = self.bare[i : i + span]
            if len(chunk) < span or not chunk[-1] or chunk[-1].startswith(">"):
                break
            text = " ".join(chunk)
            if len(text) > _MAX_ATTRIBUTION:
                break
            if not text.endswith(":"):
                continue
            if _ATTRIBUTION.fullmatch(text) and any(c.isdigit() for c in text):
                return span, True
            if span == 1 and _LOOSE_ATTRIBUTION.fullmatch(text):
                return 1, False
        return 0, False

    def header_block(self, i: int) -> bool:
        """An Outlook/webmail header block ("Von: ... Gesendet: ... An: ... Betreff: ...") at i."""
        if self.header_keys[i] is None:
            return False
        keys = {key for key in self.header_keys[i : i + _HEADER_WINDOW] if key}
        return {"from", "subject"} <= keys and len(keys) >= 3

    def history_starts(self, i: int) -> bool:
        """Everything from line i on is signature or quoted history."""
        line = self.bare[i]
        if line == _SIG_DASHES or _MOBILE.fullmatch(line) or _SEPARATOR.fullmatch(line):
            return True
        if _UNDERSCORES.fullmatch(line):
            following = self.next_content(i + 1)
            return following is not None and self.header_block(following)
        return self.header_block(i)


def _tidy(lines: Sequence[str]) -> str:
    kept: list[str] = []
    for line in (line.rstrip() for line in lines):
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")


def new_part(text: str) -> str:
    """The text the sender wrote in this reply; the whole (tidied) text if none is found."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _Lines.of(raw)
    kept: list[str] = []
    i = 0
    while i < len(raw):
        if not lines.bare[i]:
            kept.append("")
            i += 1
            continue
        if lines.quoted(i):
            i += 1
            continue
        span, strict = lines.attribution(i)
        if span and lines.quote_follows(i + span):
            i += span
            continue
        if (span and strict) or lines.history_starts(i):
            break
        kept.append(raw[i])
        i += 1
    return _tidy(kept) or _tidy(raw)
