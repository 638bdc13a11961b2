"""Cheap measures of the raw bytes, taken before any parser sees them.

The standard library's header and MIME parsers are quadratic in places: a Cc of 50,000
addresses took 45 s, a Content-Type with 200,000 parameters over a minute, 25 MB of empty
MIME parts almost five minutes (issue 10). Counting commas, semicolons and delimiter lines
with `bytes.count` and literal-prefix searches is linear and fast, so a mail over a limit is
quarantined with the measure that failed and the quadratic paths are never entered. The
reasons read like the shape rule's (`part_count 1000001 > 200`).
"""

from __future__ import annotations

import re

from mailbot.config import LimitsSettings

ADDRESS_HEADERS = frozenset({b"from", b"to", b"cc", b"bcc", b"reply-to", b"sender", b"resent-to", b"resent-cc"})
# Searched in the lower-cased copy, so each pattern starts with a literal and `re` finds it fast.
_PARAMETER_FIELD = re.compile(rb"\ncontent-(?:type|disposition)[ \t]*:")
_BOUNDARY = re.compile(rb'boundary[ \t]*=[ \t]*"?')
_BOUNDARY_VALUE = re.compile(rb'[^"\r\n;]{1,200}')
_DELIMITER = re.compile(rb"\n--([^\r\n]{1,200})")


def header_block(raw: bytes) -> bytes:
    """The top-level header section: everything before the first empty line."""
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    return raw[: min(ends) + 1] if ends else raw


def _fields(block: bytes) -> list[bytes]:
    """Header fields with their continuation lines joined (still folded, as they came)."""
    fields: list[list[bytes]] = []
    for line in block.splitlines():
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        elif line:
            fields.append([line])
    return [b"".join(lines) for lines in fields]


def _over(name: str, value: int, limit: int) -> str | None:
    return f"{name} {value} > {limit}" if value > limit else None


def _header_problem(raw: bytes, limits: LimitsSettings) -> str | None:
    fields = _fields(header_block(raw))
    if problem := _over("header_count", len(fields), limits.header_count):
        return problem
    for field in fields:
        name = field.partition(b":")[0].strip().lower()
        if name in ADDRESS_HEADERS:
            count = max(field.count(b","), field.count(b"@") - 1) + 1
            if problem := _over(f"address_count ({name.decode()})", count, limits.address_count):
                return problem
    return _over("header_length", max(map(len, fields), default=0), limits.header_length)


def _field_at(raw: bytes, start: int) -> bytes:
    """One folded header field starting at `start`, with its continuation lines."""
    end = raw.find(b"\n", start)
    while end >= 0 and raw[end + 1 : end + 2] in (b" ", b"\t"):
        end = raw.find(b"\n", end + 1)
    return raw[start:] if end < 0 else raw[start:end]


def _parameter_problem(raw: bytes, lower: bytes, limits: LimitsSettings) -> str | None:
    """Content-Type and Content-Disposition fields anywhere (top level and every part)."""
    for match in _PARAMETER_FIELD.finditer(lower):
        count = _field_at(raw, match.start() + 1).count(b";")
        if problem := _over("header_parameters", count, limits.header_parameters):
            return problem
    return None


def _mime_problem(raw: bytes, lower: bytes, limits: LimitsSettings) -> str | None:
    """Parts (delimiter lines of declared boundaries) and nesting (boundaries open at once)."""
    if raw.count(b"\n--") <= min(limits.part_count, limits.mime_depth):
        return None  # too few delimiter lines to break either limit: the common case
    declared: list[tuple[int, bytes]] = []
    for match in _BOUNDARY.finditer(lower):
        value = _BOUNDARY_VALUE.match(raw, match.end())
        if value is not None:
            declared.append((match.start(), value.group().rstrip()))
    boundaries = {value for _, value in declared}
    parts = 0
    open_: list[bytes] = []
    depth = 1
    pending = iter(declared)
    upcoming = next(pending, None)
    for match in _DELIMITER.finditer(raw):
        while upcoming is not None and upcoming[0] < match.start():
            open_.append(upcoming[1])
            depth = max(depth, len(open_) + 1)
            upcoming = next(pending, None)
        line = match.group(1).rstrip()
        closing = line.endswith(b"--") and line[:-2] in boundaries
        name = line[:-2] if closing else line
        if name not in open_:
            continue
        del open_[open_.index(name) + (0 if closing else 1):]
        if not closing:
            parts += 1
            if problem := _over("part_count", parts, limits.part_count):
                return f"{problem} (counted in the raw mail, stopped there)"
        if problem := _over("mime_depth", depth, limits.mime_depth):
            return problem
    return None


def problem(raw: bytes, limits: LimitsSettings) -> str | None:
    """The first limit the raw mail breaks, or None; linear in the size of the mail."""
    if found := _header_problem(raw, limits):
        return found
    raw = b"\n" + raw  # so a field on the very first line starts with a newline like the others
    lower = raw.lower()
    return _parameter_problem(raw, lower, limits) or _mime_problem(raw, lower, limits)
