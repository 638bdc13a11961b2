"""Raw bytes -> ParsedMail: mail-parser for the fields, libmagic for every attachment's type.

Nothing here trusts a declared Content-Type or a file name: `Part.detected_type` comes from
the bytes. Parsing never raises for a broken mail; only an unusable one raises ParseError,
which the pipeline turns into a quarantine with the reason.
"""

from __future__ import annotations

import email
import email.utils
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from html.parser import HTMLParser

import magic
import mailparser

from mailbot.headertext import decode as _decode
from mailbot.headertext import getaddresses, storable
from mailbot.mail import ParsedMail, Part, Shape

MAGIC_SAMPLE = 64 * 1024

# mail-parser logs a warning for every part type it does not extract (that is our job) and an
# error, with the raw header across many lines, for every broken encoded word (we decode those
# with replacement): neither belongs in a one-line-per-event log.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)


class ParseError(Exception):
    """The bytes cannot be read as a mail at all."""


def detect_type(payload: bytes) -> str:
    """The MIME type libmagic finds in the content (sampled; the head decides)."""
    if not payload:
        return "application/x-empty"
    return str(magic.from_buffer(payload[:MAGIC_SAMPLE], mime=True))


class _HtmlText(HTMLParser):
    """The readable text of an HTML body, for mail that has no text/plain part."""

    BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
    HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BREAKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BREAKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chunks.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def valid_address(address: str) -> bool:
    """Whether `address` is a plain addr-spec we can safely write into an outgoing header."""
    if not 3 <= len(address) <= 254 or not address.isprintable() or any(c.isspace() for c in address):
        return False
    try:
        parsed = Address(addr_spec=address)
    except Exception:  # the header parser raises a zoo of defect types for garbage
        return False
    return parsed.addr_spec == address and bool(parsed.username) and bool(parsed.domain)


def reverse_path(raw: bytes) -> str:
    """What stands in for MAIL FROM where no SMTP envelope exists (IMAP, replay): the delivering
    server's Return-Path (empty for a bounce's `<>`), else the first From address."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return_path = headers.get("Return-Path")
    if return_path is not None:
        found = getaddresses([str(return_path)])
        return storable(found[0][1]) if found else ""
    senders = getaddresses([str(v) for v in headers.get_all("From", [])])
    return storable(senders[0][1]) if senders else ""


def _addresses(message: Message, *names: str) -> tuple[str, ...]:
    """The valid addresses in these headers, lower-cased, in order; garbage is left out."""
    values = [str(v) for name in names for v in message.get_all(name, [])]
    found: list[str] = []
    for _, addr in getaddresses(values):
        addr = addr.strip().lower()
        if valid_address(addr) and addr not in found:
            found.append(addr)
    return tuple(found)


# Printable ASCII only: an id goes back out in In-Reply-To and References, which must encode.
_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+>")


def _message_ids(value: str | None) -> tuple[str, ...]:
    return tuple(_MESSAGE_ID.findall(value or ""))


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _shape(raw: bytes, message: Message) -> Shape:
    header_count = len(message.keys())
    longest_header = max((len(str(k)) + 2 + len(str(v)) for k, v in message.items()), default=0)
    # bytes.splitlines (C) is 5x faster than a regex split, and a lone CR (old Mac mail) ends a line too.
    longest_line = max(map(len, raw.splitlines()), default=0)
    depth = part_count = 0
    stack: list[tuple[Message, int]] = [(message, 1)]
    while stack:
        part, level = stack.pop()
        part_count += 1
        depth = max(depth, level)
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend((child, level + 1) for child in payload if isinstance(child, Message))
    return Shape(len(raw), header_count, longest_header, longest_line, depth, part_count)


BODY_TYPES = ("text/plain", "text/html")


def _is_body(part: Message, parent_type: str) -> bool:
    """Text the sender wrote in the mail itself, not a file: unnamed, not marked attachment, and
    plain or HTML, or another text alternative of them (text/enriched beside text/plain)."""
    if part.get_filename() or (part.get_content_disposition() or "inline") != "inline":
        return False
    kind = part.get_content_type()
    alternative = parent_type == "multipart/alternative" and kind.startswith("text/") and "rtf" not in kind
    return kind in BODY_TYPES or alternative


def _content(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    if part.get_content_type() == "message/delivery-status":  # header blocks: keep them readable
        return b"\n".join(block.as_bytes() for block in part.get_payload() if isinstance(block, Message))
    return b""


def _files(message: Message) -> tuple[Part, ...]:
    """Every MIME leaf that is not a body text, named or not.

    Built from the MIME tree itself rather than mail-parser's attachment list, which leaves out
    unnamed parts (a nameless EXE or winmail.dat would otherwise reach no rule at all).
    """
    files: list[Part] = []
    stack: list[tuple[Message, str]] = [(message, "")]
    while stack:
        part, parent_type = stack.pop()
        kind = part.get_content_type()
        children = part.get_payload()
        if part.is_multipart() and kind != "message/delivery-status" and isinstance(children, list):
            stack.extend((child, kind) for child in reversed(children) if isinstance(child, Message))
            continue
        if _is_body(part, parent_type):
            continue
        data = _content(part)
        filename = part.get_filename()
        files.append(
            Part(
                index=len(files),
                declared_type=kind,
                detected_type=detect_type(data),
                filename=_decode(filename) if filename else None,
                disposition=part.get_content_disposition(),
                content_id=storable(str(part.get("Content-ID") or "").strip("<> ")) or None,
                payload=data,
            )
        )
    return tuple(files)


@dataclass(frozen=True)
class _Reading:
    """What one parser made of the mail: the MIME tree, its body texts and what it complained about."""

    message: Message
    plain: list[str]
    html: list[str]
    defects: tuple[str, ...]
    unreadable: str | None = None  # why only the header could be read


def _by_mailparser(raw: bytes) -> _Reading:
    parsed = mailparser.parse_from_bytes(raw)
    defects = tuple(str(detail) for entry in parsed.defects for details in entry.values() for detail in details)
    return _Reading(parsed.message, parsed.text_plain, parsed.text_html, defects)


def _text_of(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    try:
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _by_stdlib(raw: bytes) -> _Reading:
    message = email.message_from_bytes(raw, policy=compat32)
    plain: list[str] = []
    html: list[str] = []
    for part in message.walk():
        if not part.is_multipart() and _is_body(part, ""):
            (html if part.get_content_type() == "text/html" else plain).append(_text_of(part))
    defects = tuple(str(defect) for part in message.walk() for defect in part.defects)
    return _Reading(message, plain, html, defects)


def _headers_only(raw: bytes, why: str) -> _Reading:
    message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    message.set_payload("")
    return _Reading(message, [], [], (), unreadable=why)


def parse(raw: bytes) -> ParsedMail:
    """Parse one RFC 5322 message. Raises ParseError only when not even a header is there.

    mail-parser first; where it fails (its internals raise AttributeError on real mail, and
    RecursionError on hostile mail) the standard library's parser; where that fails too, the
    header alone, so robots are still recognised and a person's mail is quarantined with the
    reason (`unreadable`) instead of being lost.
    """
    failures: list[str] = []
    for read in (_by_mailparser, _by_stdlib):
        try:
            return _build(raw, read(raw), failures)
        except ParseError:
            raise
        except Exception as exc:  # any parser failure: try the next, simpler one
            failures.append(f"{read.__name__.lstrip('_')}: {type(exc).__name__}: {exc}"[:300])
    try:
        return _build(raw, _headers_only(raw, "; ".join(failures)), failures)
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"{type(exc).__name__}: {exc}") from exc


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value)


def _build(raw: bytes, reading: _Reading, failures: list[str]) -> ParsedMail:
    message = reading.message
    if message is None or not message.keys():
        raise ParseError("no header fields found")
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in message.items():
        key = str(name).lower()
        headers[key] = (*headers.get(key, ()), _decode(str(value)))
    from_pairs = getaddresses([str(v) for v in message.get_all("From", [])])
    from_name, from_addr = from_pairs[0] if from_pairs else ("", "")
    return ParsedMail(
        message_id=(_message_ids(_header(message, "Message-ID")) or (None,))[0],
        subject=_decode(_header(message, "Subject")),
        from_addr=storable(from_addr.strip().lower()),
        from_name=_decode(from_name),
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        reply_to=_addresses(message, "Reply-To"),
        date=_date(_header(message, "Date")),
        in_reply_to=_message_ids(_header(message, "In-Reply-To")),
        references=_message_ids(_header(message, "References")),
        headers=headers,
        text=storable("\n".join(reading.plain) or html_text("\n".join(reading.html))),
        html=storable("\n".join(reading.html)),
        content_types=tuple(part.get_content_type() for part in message.walk()),
        attachments=_files(message),
        shape=_shape(raw, message),
        defects=tuple(storable(defect) for defect in (*failures, *reading.defects)),
        unreadable=reading.unreadable,
        message=message,
    )
