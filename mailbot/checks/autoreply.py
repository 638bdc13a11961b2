"""Ignore auto-replies (out of office, vacation, robots): RFC 3834 says never answer them.

Auto-Submitted other than "no" is the standard marker. Older responders have their own:
Sieve and Postfix vacation write X-Autoreply or X-Autorespond, others Precedence: auto_reply,
and iCloud X-Apple-Action: VACATION (all seen in the corpus' out-of-office replies).

X-Auto-Response-Suppress is deliberately no marker: it asks *us* not to auto-reply, and
Exchange puts it on people's own mail too (mail to distribution lists, some Outlook setups),
so honouring it silently drops customers (osTicket #726, Discourse #21367, GLPI #2170,
Redmine #19558). Exchange's own out-of-office replies come with a null return path, which the
bounce rule already catches.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Ignore

VENDOR_MARKERS = ("x-autoreply", "x-autorespond")


def _token(value: str | None) -> str:
    """The keyword of a structured header, without parameters or comments."""
    return (value or "").split(";")[0].split("(")[0].strip().lower()


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    submitted = _token(mail.header("auto-submitted"))
    if (
        submitted not in ("", "no")
        or any(mail.header(name) is not None for name in VENDOR_MARKERS)
        or _token(mail.header("precedence")) == "auto_reply"
        or _token(mail.header("x-apple-action")) == "vacation"
    ):
        return Ignore("auto_reply")
    return None
