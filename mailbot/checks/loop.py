"""Ignore mailbot's own notices coming back, so two robots can never talk to each other forever.

Every notice carries X-Mailbot-Notice and comes From the noreply address; a mail From one of
the service's own addresses is either such an echo or forged, and never worth an answer.
"""

from __future__ import annotations

from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.verdicts import Decision, Ignore

NOTICE_HEADER = "X-Mailbot-Notice"


def check(mail: ParsedMail, envelope: Envelope, settings: Settings) -> Decision | None:
    own = {settings.service.noreply.lower(), *settings.service.addresses}
    if mail.header(NOTICE_HEADER) is not None or mail.from_addr in own or envelope.mail_from.lower() in own:
        return Ignore("loop")
    return None
