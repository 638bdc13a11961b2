"""Ignore mailing-list and bulk mail: a list must never receive a ticket receipt (RFC 3834 2).

A list is known by its RFC 2369/2919 fields or by ezmlm's older Mailing-List field; no person's
own mail client writes any of them. A notification service's subscription mail is bulk too:
Amazon SNS marks its mail (SES bounce and complaint reports among it) with x-amz-sns-* fields.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Ignore

BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "mailing-list", "x-amz-sns-message-id")


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    precedence = (mail.header("precedence") or "").strip().lower()
    if precedence in BULK_PRECEDENCE or any(mail.header(name) is not None for name in LIST_HEADERS):
        return Ignore("bulk")
    return None
