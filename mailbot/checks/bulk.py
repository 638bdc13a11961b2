"""Ignore mailing-list and bulk mail: a list must never receive a ticket receipt (RFC 3834 2)."""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Ignore

BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
LIST_HEADERS = ("list-id", "list-unsubscribe")


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    precedence = (mail.header("precedence") or "").strip().lower()
    if precedence in BULK_PRECEDENCE or any(mail.header(name) is not None for name in LIST_HEADERS):
        return Ignore("bulk")
    return None
