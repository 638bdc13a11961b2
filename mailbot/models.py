"""The tables. One row type per thing an operator can point at: a spooled mail, a case,
a message on it, a stored attachment, a participant, a queued outgoing mail.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def key(row: SQLModel) -> int:
    """The primary key of a row that has been flushed (so the database has given it one)."""
    value = getattr(row, "id", None)
    if not isinstance(value, int):
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return value


class InboundSpool(SQLModel, table=True):
    """Raw mail exactly as received, stored before SMTP says 250 or IMAP moves it.

    `dedupe_key` (sender + Message-ID, or a hash of the bytes) makes MTA retries and the same
    mail arriving by two routes land once; `source_key` is the IMAP (account, folder,
    UIDVALIDITY, UID). A row is `pending` until processed, then `done` or `quarantined`.
    """

    __tablename__ = "inbound_spool"
    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow)
    source: str
    source_key: str | None = Field(default=None, unique=True)
    dedupe_key: str = Field(unique=True)
    mail_from: str
    rcpt_to: str
    declared_size: int | None = None
    message_id: str | None = Field(default=None, index=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    last_error: str | None = None
    verdict: str | None = None
    reason: str | None = None
    trace: str | None = None  # the rules that ran, comma-separated, last one decided
    auth: str | None = None  # the authentication verdict and why, e.g. "pass: dkim=pass d=example.com"
    peer: str | None = None  # the SMTP client's IP address (none for IMAP and replay)
    case_number: int | None = None
    processed_at: datetime | None = None


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    id: int | None = Field(default=None, primary_key=True)
    number: int | None = Field(default=None, unique=True)
    token: str | None = Field(default=None, unique=True)
    subject: str
    status: str = Field(default="new", index=True)
    requester: str = Field(index=True)
    language: str = "de"  # what the case's mail and page are written in (config [templates] languages)
    created: datetime = Field(default_factory=utcnow)
    updated: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    answer_due: datetime | None = None
    answered_at: datetime | None = None
    overdue_logged: bool = False
    # Part of the case page link's signature; `case relink` replaces it.
    link_salt: str = Field(default="", sa_column_kwargs={"server_default": ""})
    priority: str = Field(default="normal", index=True, sa_column_kwargs={"server_default": "normal"})
    estimate_minutes: int | None = None  # the agent's estimate of the time to fix (#estimate)
    estimate_at: datetime | None = None
    callback_requested_at: datetime | None = None  # an open callback request from the case page
    callback_phone: str | None = None


class Participant(SQLModel, table=True):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("case_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    address: str
    role: str  # requester | cc | agent


class Message(SQLModel, table=True):
    # (message_id, case_id) covers the thread-header lookup: In-Reply-To -> case, no table read.
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_thread", "message_id", "case_id"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    spool_id: int | None = Field(default=None, foreign_key="inbound_spool.id")
    direction: str  # in | out
    message_id: str | None = None
    from_addr: str
    to_addrs: str = ""
    cc_addrs: str = ""
    subject: str = ""
    text: str = ""
    text_new: str = ""  # the text without quoted history; "" when that is the whole text
    date: datetime = Field(default_factory=utcnow)
    internal: bool = False
    kind: str = "mail"  # mail | auto_reply | notice


class Attachment(SQLModel, table=True):
    """A file stored on disk under its content hash; `filename` is only the sender's label."""

    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    message_row_id: int = Field(foreign_key="messages.id", index=True)
    filename: str | None = None
    detected_type: str
    size: int
    sha256: str = Field(index=True)


class Outbox(SQLModel, table=True):
    """An outgoing mail, rendered when queued so every retry sends the same bytes and Message-ID."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    kind: str
    recipient: str = Field(index=True)
    recipient_domain: str = Field(default="", index=True)  # for the per-domain hourly cap
    message_id: str = Field(unique=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="queued", index=True)  # queued | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    created: datetime = Field(default_factory=utcnow, index=True)
    deadline_at: datetime | None = None
    breach_logged: bool = False
    sent_at: datetime | None = None
    last_error: str | None = None
    bounced_at: datetime | None = None
    bounce_info: str | None = None


class ImapCursor(SQLModel, table=True):
    """Where an IMAP account's watcher stands: UIDVALIDITY and the last UID already handled."""

    __tablename__ = "imap_cursors"
    account: str = Field(primary_key=True)
    folder: str
    uidvalidity: int
    last_uid: int = 0


class WorkerState(SQLModel, table=True):
    """What one worker of one daemon instance was doing at its last heartbeat (`mailbot status`).

    Keyed by (instance, worker), so several instances on one database each keep their own rows.
    `state` is starting, idle, busy, failing (retrying after an error), stalled (busy without
    progress for `[daemon] stall_seconds`) or stopped.
    """

    __tablename__ = "worker_states"
    instance: str = Field(primary_key=True)
    worker: str = Field(primary_key=True)
    host: str
    pid: int
    state: str
    since: datetime
    heartbeat: datetime
    busy_seconds: float = 0.0
    last_progress: datetime | None = None
    last_error: str | None = None
    failures: int = 0


class TokenFailure(SQLModel, table=True):
    """A subject token that did not open its case to this sender: wrong, or not theirs to use.
    Counted per sender and per client IP, so guessing tokens runs into a limit (`mailbot.guesses`)."""

    __tablename__ = "token_failures"
    id: int | None = Field(default=None, primary_key=True)
    sender: str = Field(index=True)
    peer: str | None = Field(default=None, index=True)
    created: datetime = Field(default_factory=utcnow, index=True)
