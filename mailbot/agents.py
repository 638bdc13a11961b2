"""Agent mail: a support agent's answer on a case, relayed to the customer side."""

from __future__ import annotations

from mailbot.cases import Context, add_reply
from mailbot.mail import ParsedMail
from mailbot.models import Case
from mailbot.verdicts import VerdictKind


def is_agent(mail: ParsedMail, ctx: Context) -> bool:
    return ctx.settings.agents.covers(mail.from_addr)


def handle(ctx: Context, case: Case, mail: ParsedMail, trace: list[str]) -> tuple[VerdictKind, str | None, int | None]:
    add_reply(ctx, case, mail)
    return "reply", None, case.number
