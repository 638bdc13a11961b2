"""SMTP limits: connections (in all and per address), mails per address and minute, bytes per
DATA, idle time; and a file-descriptor shortage that pauses accepting instead of flooding the log.

Issue 10: 8,276 connections from one address were all accepted, then EMFILE wrote 253,299 log
lines in a minute and normal clients timed out; a DATA line without a newline was buffered past
`max_message_size`; idle clients were dropped after 300 s without a 421. Every refusal here is a
4xx or 5xx a real MTA understands, and logged once per limit and address per minute.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP

from mailbot.config import Settings, SmtpSettings
from mailbot.logs import event

LOG_INTERVAL = 60.0
RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class OncePer:
    """Lets a kind of line through once per interval, counting the ones held back meanwhile."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self.last: dict[str, float] = {}
        self.held: Counter[str] = Counter()

    def due(self, key: str) -> int | None:
        """None: stay quiet; else log now, with this many held back since the last line."""
        now = time.monotonic()
        if now - self.last.get(key, -self.interval) < self.interval:
            self.held[key] += 1
            return None
        if len(self.last) > 10_000:  # many addresses: forget the old ones rather than grow
            self.last = {k: t for k, t in self.last.items() if now - t < self.interval}
        self.last[key] = now
        return self.held.pop(key, 0)


class Limits:
    """Counts open connections and recent mails per client address; `settings` is re-read each
    time, so a reload changes the limits at once."""

    def __init__(self, settings: Callable[[], Settings]) -> None:
        self.settings = settings
        self.open: Counter[str] = Counter()
        self.mails: dict[str, deque[float]] = {}
        self.log = OncePer()

    def refused(self, limit: str, ip: str, answer: str) -> str:
        held = self.log.due(f"{limit}:{ip}")
        if held is not None:
            event("smtp-limit", logging.WARNING, limit=limit, peer=ip, answer=answer, held_back=held or None)
        return answer

    def admit(self, ip: str) -> str | None:
        """Count a new connection, or return the 421 that refuses it."""
        smtp = self.settings().smtp
        if sum(self.open.values()) >= smtp.max_connections:
            return self.refused("max_connections", ip, "421 4.3.2 Too many connections, try again later")
        if self.open[ip] >= smtp.max_connections_per_ip:
            return self.refused("max_connections_per_ip", ip,
                                "421 4.7.0 Too many connections from your address, try again later")
        self.open[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]

    def mail_refused(self, ip: str) -> str | None:
        """Count a new mail (MAIL FROM) from `ip`, or return the 451 over its rate."""
        per_minute = self.settings().smtp.max_mails_per_ip_per_minute
        if not per_minute:
            return None
        now = time.monotonic()
        recent = self.mails.setdefault(ip, deque())
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= per_minute:
            return self.refused("max_mails_per_ip_per_minute", ip,
                                "451 4.7.1 Too many mails from your address, try again later")
        recent.append(now)
        if len(self.mails) > 10_000:  # forget addresses that went quiet
            self.mails = {k: v for k, v in self.mails.items() if v and now - v[-1] <= 60}
        return None


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext | None:
    """The STARTTLS context for the configured certificate and key, or None without them."""
    if not smtp.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(smtp.tls_cert, smtp.tls_key)
    return context


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP with the connection limits, a byte cap on DATA and an idle timeout that
    says 421 before it closes. (`line_length_limit` is set per connection by a subclass.)"""

    def __init__(self, handler: Any, limits: Limits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.ip = ""
        self.admitted = self.shut_out = False
        self.data_bytes: int | None = None  # bytes received in the current DATA, None outside one

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.admitted:  # (called again after STARTTLS, for the same client)
            peer = transport.get_extra_info("peername")
            self.ip = str(peer[0]) if peer else "unknown"
            refusal = self.limits.admit(self.ip)
            if refusal is not None:
                self.shut_out = True
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(refusal.encode() + b"\r\n")
                transport.close()
                return
            self.admitted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self.shut_out:
            asyncio.StreamReaderProtocol.connection_lost(self, error)
            return
        if self.admitted:
            self.admitted = False
            self.limits.release(self.ip)
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self.shut_out:
            return
        # Any bytes reset the idle timer (aiosmtpd only resets it per command, which would cut
        # a slow but moving upload).
        self._reset_timeout()
        if self.data_bytes is not None and self.data_size_limit:
            self.data_bytes += len(data)
            if self.data_bytes > self.data_size_limit + 1024:  # the final dot and a pipelined QUIT
                # Past the limit and still no end: aiosmtpd would keep the unfinished line in memory.
                self.limits.refused("max_message_size", self.ip, "552")
                self._say_and_close(b"552 5.3.4 Message too big for system")
                return
        super().data_received(data)

    async def smtp_DATA(self, arg: str) -> None:
        self.data_bytes = 0
        try:
            await super().smtp_DATA(arg)
        finally:
            self.data_bytes = None

    async def smtp_MAIL(self, arg: str | None) -> None:
        refusal = self.limits.mail_refused(self.ip)
        if refusal is not None:
            await self.push(refusal)
            return
        await super().smtp_MAIL(arg)

    def _timeout_cb(self) -> None:
        self.limits.refused("idle_timeout_seconds", self.ip, "421")
        self._say_and_close(b"421 4.4.2 Idle too long, closing connection")

    def _say_and_close(self, answer: bytes) -> None:
        if isinstance(self.transport, asyncio.WriteTransport) and not self.transport.is_closing():
            self.transport.write(answer + b"\r\n")
            self.transport.close()


def pause_on_resource_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Out of file descriptors (EMFILE): asyncio already stops accepting for a second and tries
    again; log that once a minute instead of once per failed accept."""
    log = OncePer()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in RESOURCE_ERRORS:
            held = log.due("accept")
            if held is not None:
                event("accept-paused", logging.ERROR, error=f"{type(error).__name__}: {error}", held_back=held or None,
                      hint="raise LimitNOFILE or lower smtp.max_connections")
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
