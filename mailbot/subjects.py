"""Subject text in both directions: strip reply/forward chains, make a subject safe to send.

`strip_prefixes` gives the subject the customer meant ("Drucker defekt" from
"AW: WG: [intern] Re[2]: Drucker defekt"), for receipts ("Ihre Anfrage: ...") and for
comparing subjects. `clean` is the last step before any text becomes an outgoing Subject
header: a CR or LF there would let a sender inject header fields into our mail.
"""

from __future__ import annotations

import re

MAX_LENGTH = 200

# Reply and forward markers of German, English and Nordic/Dutch clients ("Re", "AW" = Antwort,
# "WG" = Weitergeleitet, "SV"/"VS" = svar/vidersendt, "Antw"), with Outlook's and old Eudora's
# counters ("Re[2]:", "Re(2):", "Re^2:") and the space some clients put before the colon.
_MARKER = r"(?:re|aw|wg|fwd?|sv|vs|antw(?:ort)?)(?:\s*(?:\[\d+\]|\(\d+\)|\^\d+))?\s*:"
# A list or gateway tag such as "[support-list]" or "[EXTERN]"; one starting with "#" is a
# ticket reference ("[#SVC-10042-K7MQ]") and stays, because it is how replies find their case.
_LIST_TAG = r"\[[^\[\]#][^\[\]]{0,60}\]"
_CHAIN = re.compile(rf"(?:\s*(?:{_MARKER}|{_LIST_TAG}))*", re.IGNORECASE)

# Controls (CR, LF, NUL, ...: Unicode Cc), line/paragraph separators, lone surrogates (which no
# charset can encode) become spaces; bidi overrides and isolates, which make a subject display
# differently from what it says, are dropped.
_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# The email package decodes "=?charset?Q?...?=" in any header value it is given, so a sender's
# text that looks like an encoded word would be decoded again on the way out, and one with a
# broken gb2312 sequence crashed the receipt with UnicodeEncodeError (issue 10). An invisible
# word joiner after "=" keeps the text as the sender wrote it and the header always encodable.
_ENCODED_WORD_START = "=?"
_INERT_START = "=\u2060?"


def strip_prefixes(subject: str) -> str:
    """`subject` without its leading chain of reply/forward markers and list tags."""
    chain = _CHAIN.match(subject)
    return subject[chain.end() if chain else 0 :].strip()


def clean(subject: str, limit: int = MAX_LENGTH) -> str:
    """`subject` as a safe header value: one line, printable, at most `limit` characters.

    Control characters become spaces, whitespace runs one space; a longer subject is cut at a
    word boundary (if one is in its second half) and ends in "…".
    """
    text = " ".join(_BREAKING.sub(" ", _BIDI.sub("", subject)).split()).replace(_ENCODED_WORD_START, _INERT_START)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"
