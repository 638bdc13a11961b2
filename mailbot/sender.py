"""Deliver outgoing mail through the relay: an SMTP smarthost, or a local Maildir.

Failures are typed the way SMTP means them: 4xx and connection trouble are temporary (retry
with backoff), 5xx is permanent (mark failed, log, stop trying).
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from mailbot.config import RelaySettings


class TemporaryFailure(Exception):
    """Try again later (4xx, connection refused, timeout)."""


class PermanentFailure(Exception):
    """The relay refused for good (5xx)."""


class Delivery(Protocol):
    def __call__(self, raw: bytes, mail_from: str, rcpts: list[str]) -> None: ...


def _classify(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = all(code >= 500 for code in codes)
        return (PermanentFailure if permanent else TemporaryFailure)(f"recipients refused: {exc.recipients}")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentFailure if exc.smtp_code >= 500 else TemporaryFailure
        message = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return kind(f"{exc.smtp_code} {message}")
    return TemporaryFailure(f"{type(exc).__name__}: {exc}")


@contextmanager
def _smtp_session(relay: RelaySettings) -> Iterator[Delivery]:
    try:
        client = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds)
    except (OSError, smtplib.SMTPException) as exc:
        raise _classify(exc) from exc
    try:
        if relay.starttls:
            client.starttls(context=ssl.create_default_context())
        if relay.username:
            client.login(relay.username, relay.password)

        def deliver(raw: bytes, mail_from: str, rcpts: list[str]) -> None:
            try:
                client.sendmail(mail_from, rcpts, raw)
            except (OSError, smtplib.SMTPException) as exc:
                raise _classify(exc) from exc

        yield deliver
    except (OSError, smtplib.SMTPException) as exc:
        raise _classify(exc) from exc
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


@contextmanager
def _maildir_session(relay: RelaySettings) -> Iterator[Delivery]:
    box = mailbox.Maildir(relay.maildir, create=True)

    def deliver(raw: bytes, mail_from: str, rcpts: list[str]) -> None:
        try:
            box.add(raw)
        except OSError as exc:
            raise TemporaryFailure(f"maildir: {exc}") from exc

    yield deliver


def session(relay: RelaySettings) -> AbstractContextManager[Delivery]:
    """One relay connection for a batch of deliveries."""
    return _smtp_session(relay) if relay.mode == "smtp" else _maildir_session(relay)


def check(relay: RelaySettings) -> str | None:
    """None when the relay answers (used by `check-config --connect`), else what went wrong."""
    if relay.mode == "maildir":
        return None
    try:
        with _smtp_session(relay):
            return None
    except (OSError, TemporaryFailure, PermanentFailure) as exc:
        return str(exc)
