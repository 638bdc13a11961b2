"""Subject text in both directions: strip reply/forward chains, make a subject safe to send.

`strip_prefixes` gives the subject the customer meant ("Drucker defekt" from
"AW: WG: [intern] Re[2]: Drucker defekt"), for receipts ("Ihre Anfrage: ...") and for
comparing subjects. `clean` is the last step before any text becomes an outgoing Subject
header: a CR or LF there would let a sender inject header fields into our mail.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 200

# Reply and forward markers of German, English and Nordic/Dutch clients ("Re", "AW" = Antwort,
# "WG" = Weitergeleitet, "SV"/"VS" = svar/vidersendt, "Antw"), with Outlook's and old Eudora's
# counters ("Re[2]:", "Re(2):", "Re^2:") and the space some clients put before the colon.
_MARKER = r"(?:re|aw|wg|fwd?|sv|vs|antw(?:ort)?)(?:\s*(?:\[\d+\]|\(\d+\)|\^\d+))?\s*:"
# A list or gateway tag such as "[support-list]" or "[EXTERN]"; one starting with "#" is a
# ticket reference ("[#SVC-10042-K7MQ]") and stays, because it is how replies find their case.
_LIST_TAG = r"\[[^\[\]#][^\[\]]{0,60}\]"
_CHAIN = re.compile(rf"\A(?:\s*(?:{_MARKER}|{_LIST_TAG}))*", re.IGNORECASE)

# Bidi overrides and isolates can make a subject display differently from what it says.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_BREAKING = {"Cc", "Cs", "Zl", "Zp"}  # controls (CR, LF, NUL, ...), lone surrogates, line breaks


def strip_prefixes(subject: str) -> str:
    """`subject` without its leading chain of reply/forward markers and list tags."""
    return _CHAIN.sub("", subject, count=1).strip()


def clean(subject: str, limit: int = MAX_LENGTH) -> str:
    """`subject` as a safe header value: one line, printable, at most `limit` characters.

    Control characters become spaces, whitespace runs one space; a longer subject is cut at a
    word boundary (if one is in its second half) and ends in "…".
    """
    text = subject.translate(_BIDI)
    text = "".join(" " if unicodedata.category(c) in _BREAKING else c for c in text)
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"
