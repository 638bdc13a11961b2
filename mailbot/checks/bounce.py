"""Ignore bounces and reports: answering one is how mail loops start (RFC 3834 section 2).

A bounce is recognised by any machine marker: the null reverse path (or a `From: <>`, which
DragonFly and McAfee gateways write), a MAILER-DAEMON or postmaster sender, or a
multipart/report body (DSN, MDN, ARF). Only the top-level type counts,
so a person forwarding a bounce to ask about it still reaches a human.

Bounces without such a marker (delay warnings in plain text, list managers' error mail, some
carriers' and Java servers' formats) are found by Mailman's maintained detectors in
flufl.bounce, less two: DSN's, which also finds the report inside a bounce a person forwards
(a real RFC 3464 report is multipart/report, caught above), and LLNL's, whose loose pattern took
uuencoded text and a person's reply for bounces on the real-world corpus. A detector counts
only when it names a failed recipient that looks like an address.
"""

from __future__ import annotations

import re

from flufl.bounce._detectors.dsn import DSN
from flufl.bounce._detectors.llnl import LLNL
from flufl.bounce._scan import _DETECTORS

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Ignore

ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
DETECTORS = tuple(detector for detector in _DETECTORS if detector not in (DSN, LLNL))
# Bounces without a report part are small; reading 256 KB costs the detectors up to 0.2 s,
# 2 MB a second (measured on the corpus), so larger mail is left to the markers above.
DETECTOR_MAX_BYTES = 256 * 1024
_ADDRESS = re.compile(rb"^[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


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


def _detected(mail: ParsedMail) -> bool:
    """Whether one of flufl.bounce's detectors names a failed recipient."""
    if mail.message is None or mail.shape.raw_size > DETECTOR_MAX_BYTES:
        return False
    for detector in DETECTORS:
        try:
            temporary, permanent = detector().process(mail.message)
        except Exception:  # a detector tripping over a malformed mail has found nothing
            continue
        if any(_ADDRESS.match(address) for address in (*temporary, *permanent)):
            return True
    return False


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    senders = (mail.from_addr, envelope.mail_from, mail.from_name)
    if (
        _null_reverse_path(mail, envelope)
        or any(_local_part(sender) in ROBOT_LOCAL_PARTS for sender in senders)
        or mail.content_types[:1] == ("multipart/report",)
        or _detected(mail)
    ):
        return Ignore("bounce")
    return None
