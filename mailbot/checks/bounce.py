"""Ignore bounces and reports: answering one is how mail loops start (RFC 3834 section 2).

A bounce is recognised by any machine marker: the null reverse path (or a `From: <>`, which
DragonFly and McAfee gateways write), a MAILER-DAEMON or postmaster sender, or a
multipart/report body (DSN, MDN, ARF). Only the top-level type counts,
so a person forwarding a bounce to ask about it still reaches a human.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Ignore

ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})


def _local_part(address: str) -> str:
    return address.rpartition("@")[0].lower() if "@" in address else address.lower()


def _null_reverse_path(mail: ParsedMail, envelope: Envelope) -> bool:
    # IMAP and replay have no envelope; the delivering MTA's Return-Path header stands in for it.
    return_path = mail.header("return-path")
    from_header = mail.header("from") or ""
    return (
        envelope.mail_from == ""
        or (return_path is not None and return_path.strip() == "<>")
        or from_header.rstrip().endswith("<>")
    )


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    senders = (mail.from_addr, envelope.mail_from, mail.from_name)
    if (
        _null_reverse_path(mail, envelope)
        or any(_local_part(sender) in ROBOT_LOCAL_PARTS for sender in senders)
        or mail.content_types[:1] == ("multipart/report",)
    ):
        return Ignore("bounce")
    return None
