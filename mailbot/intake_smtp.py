"""SMTP intake (aiosmtpd): only configured recipients, size via SIZE, 250 only once stored.

Answers: 550 5.1.1 for any recipient that is not a service address (no open relay), 552 for
mail over the limit (aiosmtpd, advertised through SIZE), 451 when storing fails or the database
does not answer within `store_timeout_seconds` (never aiosmtpd's default 500 that shows the
exception), 452 when the disk is full or below its reserve, 452 4.5.3 beyond `max_recipients`
(RFC 5321's 100 by default), 421 while shutting down. Connection, rate, size and idle limits
and STARTTLS: smtp_limits.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy.engine import Engine

from mailbot import judgepool, storage
from mailbot.config import Settings
from mailbot.judgepool import JudgePool, JudgeUnavailable
from mailbot.logs import event
from mailbot.mail import Envelope
from mailbot.smtp_limits import GuardedSMTP, Limits, tls_context
from mailbot.spool_writer import SpoolWriter
from mailbot.verdicts import Reject


def refusal_at_data(raw: bytes, envelope: Envelope, settings: Settings, judges: JudgePool) -> str | None:
    """The content rule that refuses this mail, if any, so SMTP can say 550 instead of a notice.

    Answering in the session means the sending server bounces to the real sender, and no
    notice of ours can go to a forged one. Robots still get 250 (and are ignored later), and
    mail that cannot be parsed is stored to be quarantined: neither is refused here. The mail
    is judged in the pool like any other, so a hostile one costs the session its time limit.
    """
    try:
        decision = judges.judge(raw, envelope, settings).decision
    except JudgeUnavailable:  # shutting down: store it, the pipeline judges it later
        return None
    return decision.reason if isinstance(decision, Reject) else None


class SmtpIntake:
    """The aiosmtpd handler; `settings` is re-read on every use so a reload takes effect at once."""

    def __init__(self, engine: Engine, settings: Callable[[], Settings], on_stored: Callable[[int], None],
                 judges: JudgePool | None = None, writer: SpoolWriter | None = None) -> None:
        self.engine = engine
        self.writer = writer or SpoolWriter(engine)
        self.judges = judges or judgepool.shared()
        self.settings = settings
        self.on_stored = on_stored
        self.draining = False
        self.in_flight = 0

    async def handle_MAIL(
        self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope, address: str, mail_options: list[str]
    ) -> str:
        if self.draining:
            return "421 4.3.2 Service shutting down, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings().smtp.max_recipients:
            return "452 4.5.3 Too many recipients"
        if address.lower() not in self.settings().service.addresses:
            event("rcpt-refused", logging.WARNING, rcpt=address, peer=session.peer[0] if session.peer else None)
            return f"550 5.1.1 <{address}>: no such service address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or b""
        mail = Envelope(
            mail_from=envelope.mail_from or "",
            rcpt_to=tuple(a.lower() for a in envelope.rcpt_tos),
            source="smtp",
            peer=str(session.peer[0]) if isinstance(session.peer, tuple) and session.peer else None,
        )
        if self.settings().policy.reject_at_smtp:
            refusal = await asyncio.to_thread(refusal_at_data, raw, mail, self.settings(), self.judges)
            if refusal is not None:
                event("refused-at-smtp", message_id=None, mail_from=mail.mail_from, reason=refusal)
                return f"550 5.7.1 Message refused ({refusal}); see {self.settings().service.portal_url}"
        settings = self.settings()
        short = storage.shortfall(settings)
        if short is not None:
            event("store-refused", logging.WARNING, reason="min_free_mb", detail=short, mail_from=mail.mail_from)
            return storage.FULL
        timeout = settings.database.store_timeout_seconds
        self.in_flight += 1
        try:
            # Group commit: the writer stores this mail with whatever else arrived meanwhile, and
            # answers once that transaction committed. A hung database is bounded here; a store
            # that commits after all is found by the client's retry as a duplicate.
            stored = await asyncio.wait_for(asyncio.wrap_future(self.writer.submit(raw, mail)), timeout)
        except TimeoutError:
            event("store-failed", logging.ERROR, error=f"no answer from the database within {timeout} s",
                  mail_from=mail.mail_from)
            return "451 4.3.0 Message not stored, please try again later"
        except Exception as exc:
            event("store-failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}", mail_from=mail.mail_from)
            return storage.FULL if storage.disk_full(exc) else "451 4.3.0 Message not stored, please try again later"
        finally:
            self.in_flight -= 1
        event("stored", spool=stored.spool_id, source="smtp", size=len(raw), duplicate=stored.duplicate or None,
              mail_from=mail.mail_from)
        # Also for a duplicate: a store that outlived its timeout (and got 451) may have committed
        # unseen, and the client's retry is the first news of it.
        self.on_stored(stored.spool_id)
        return f"250 2.0.0 Queued as {stored.spool_id}"

    async def handle_exception(self, error: Exception) -> str:
        event("smtp-error", logging.ERROR, error=f"{type(error).__name__}: {error}")
        return "451 4.3.0 Temporary server error, please try again later"


def factory(intake: SmtpIntake) -> Callable[[], Any]:
    """Protocol factory for loop.create_server: one aiosmtpd SMTP per connection, built from the
    settings in force when the connection arrives (so a reload changes limits for new sessions)."""
    limits = Limits(intake.settings)
    tls: dict[tuple[str, str], ssl.SSLContext | None] = {}

    def make() -> SMTP:
        settings = intake.settings()
        smtp = settings.smtp

        class Server(GuardedSMTP):
            # RFC 5321 allows 1,000 octets a line, but real mail (unwrapped HTML) breaks that daily;
            # the shape rule quarantines what exceeds the configured limit instead of losing it.
            # (A class attribute: aiosmtpd sizes its stream reader from it in __init__.)
            line_length_limit = settings.limits.line_length

        key = (smtp.tls_cert, smtp.tls_key)
        if key not in tls:  # loaded once per certificate, not per connection
            tls.clear()
            tls[key] = tls_context(smtp)
        return Server(
            intake,
            limits,
            data_size_limit=smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=smtp.hostname,
            ident="mailbot",
            timeout=smtp.idle_timeout_seconds,
            tls_context=tls[key],
            require_starttls=smtp.require_tls,
        )

    return make
