"""Header text from hostile mail, read without failing and made fit to store and to send.

Three field reports (issue 10) forced these: a bad encoded word (`=?utf-8?B?QUJDR?=`) made
the standard decoder raise and quarantined real customers' mail; a From with 500 nested
parentheses sent the standard address parser into RecursionError (SMTP answered 451 for
ever); a NUL in a Message-ID or body cannot be stored in a PostgreSQL text column, and
undecodable 8-bit header bytes (surrogates) can be stored nowhere and sent nowhere.
"""

from __future__ import annotations

import binascii
import email.utils
import quopri
import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?)")  # RFC 2047: whitespace between words goes
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_NOT_ESCAPED_BYTES = re.compile(r"[\ud800-\udc7f\udd00-\udfff]")  # surrogateescape uses U+DC80..U+DCFF


def _as_bytes(text: str) -> bytes:
    """Text that came from bytes with surrogateescape, as those bytes again."""
    return _NOT_ESCAPED_BYTES.sub("\ufffd", text).encode("utf-8", "surrogateescape")
# Comments nest, and the standard parser recurses once per level; real names never nest deeply.
MAX_COMMENT_DEPTH = 8


def storable(text: str) -> str:
    """`text` as any text column can hold it: NUL and undecodable bytes written as escapes."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if _SURROGATES.search(text):
        text = _as_bytes(text).decode("utf-8", "backslashreplace")
    return text


def _word(match: re.Match[str]) -> str:
    charset, encoding, text = match.groups()
    if encoding in "bB":
        usable = text.rstrip("=")
        usable = usable[: len(usable) - len(usable) % 4] if len(usable) % 4 == 1 else usable
        try:
            data = binascii.a2b_base64(usable + "=" * (-len(usable) % 4))
        except binascii.Error:
            return "\ufffd"
    else:
        data = quopri.decodestring(text.encode("ascii", "replace"), header=True)
    try:
        return data.decode(charset.split("*")[0], "replace")
    except LookupError:  # an unknown charset: UTF-8 is the best guess today
        return data.decode("utf-8", "replace")


def decode(value: str | None) -> str:
    """RFC 2047 words -> text, broken words decoded with replacement; folding becomes one space."""
    if not value:
        return ""
    if _SURROGATES.search(value):  # raw 8-bit bytes in the header: UTF-8 if it is, else replaced
        value = _as_bytes(value).decode("utf-8", "replace")
    try:
        text = str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError, binascii.Error, HeaderParseError):
        text = _ENCODED_WORD.sub(_word, _BETWEEN_WORDS.sub("", value))
    return storable(" ".join(text.split()))


def _comment_depth(value: str) -> int:
    depth = deepest = 0
    for char in value:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(0, depth - 1)
    return deepest


def _without_comments(value: str) -> str:
    """`value` with every (comment) removed, in one pass that keeps quoted strings."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
        elif char == '"' and depth == 0:
            quoted = not quoted
        elif char == "(" and not quoted:
            depth += 1
            continue
        elif char == ")" and not quoted and depth:
            depth -= 1
            continue
        if depth == 0:
            out.append(char)
    return "".join(out)


def getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """email.utils.getaddresses that cannot recurse: deeply nested comments are dropped first."""
    safe = [_without_comments(v) if _comment_depth(v) > MAX_COMMENT_DEPTH else v for v in values]
    return email.utils.getaddresses(safe)
