"""Value types the pipeline steps see: the envelope and the parsed mail.

Steps (`checks`, `match`) read these and nothing else, so each step can be tested with an
`.eml` file alone, without a database or a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from typing import Literal


@dataclass(frozen=True)
class Envelope:
    """What the transport told us: SMTP MAIL FROM / RCPT TO, or the IMAP account."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    source: str  # "smtp", "imap:<account>", "replay"
    declared_size: int | None = None  # RFC822.SIZE when IMAP fetched only the header of a huge mail
    peer: str | None = None  # the SMTP client's IP address


@dataclass(frozen=True)
class AuthVerdict:
    """Whether the From domain vouched for a mail (`mailbot.auth`), and a short why for the trace."""

    result: Literal["pass", "fail", "none"]
    why: str

    def __str__(self) -> str:
        return f"{self.result}: {self.why}"


@dataclass(frozen=True)
class Part:
    """One MIME leaf that is not a body text: an attachment or an inline file.

    `filename` is what the sender claimed and is only ever metadata; `detected_type` is what
    libmagic says the bytes are, and is the only type any rule may trust.
    """

    index: int
    declared_type: str
    detected_type: str
    filename: str | None
    disposition: str | None
    content_id: str | None
    payload: bytes

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(frozen=True)
class Shape:
    """Structural measures of the raw mail, for the size-and-shape limits."""

    raw_size: int
    header_count: int
    longest_header: int
    longest_line: int
    mime_depth: int
    part_count: int


@dataclass(frozen=True)
class ParsedMail:
    """A mail as the rules see it; addresses are lower-cased bare addresses."""

    message_id: str | None
    subject: str
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: dict[str, tuple[str, ...]]  # lower-cased name -> every value, in order
    text: str
    html: str
    content_types: tuple[str, ...]  # declared Content-Type of every MIME part, in walk order
    attachments: tuple[Part, ...]
    shape: Shape
    defects: tuple[str, ...] = field(default=())
    unreadable: str | None = None  # set when only the header could be parsed: why the body could not
    # The MIME tree the fields came from, for rules that read a whole report (flufl.bounce).
    message: Message | None = field(default=None, compare=False, repr=False)
    auth: AuthVerdict = AuthVerdict("none", "not checked")  # set by the judge step

    def header(self, name: str) -> str | None:
        """First value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None
