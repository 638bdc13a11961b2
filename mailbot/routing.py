"""What an accepted mail does to the cases: open one, add a reply, or refuse with a reason.

The case-lifecycle rules live here, after matching, because they need the matched case:
strangers quoting a token are not added to someone's case, closed cases are not silently
reopened, and a site that takes no new cases by mail says so instead of opening one.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from mailbot import agents, casetoken
from mailbot.cases import Context, add_reply, open_case, refuse
from mailbot.mail import ParsedMail
from mailbot.match import find_case
from mailbot.models import Case, Participant, utcnow
from mailbot.verdicts import VerdictKind


def is_participant(ctx: Context, case: Case, address: str) -> bool:
    query = select(Participant.id).where(Participant.case_id == case.id, Participant.address == address)
    return ctx.db.exec(query).first() is not None


def may_open_case(ctx: Context, sender: str) -> bool:
    policy = ctx.settings.policy
    if not policy.new_cases_by_email:
        return False
    allowed = policy.new_case_senders
    return not allowed or sender in allowed or sender.rsplit("@", 1)[-1] in allowed


def _reopenable(ctx: Context, case: Case) -> bool:
    policy = ctx.settings.policy
    if policy.closed_case_reply != "reopen" or case.closed_at is None:
        return False
    return utcnow() - case.closed_at <= timedelta(days=policy.reopen_window_days)


def _new_case(ctx: Context, mail: ParsedMail, trace: list[str]) -> tuple[VerdictKind, str | None, int | None]:
    if not may_open_case(ctx, mail.from_addr):
        trace.append("new_case_policy")
        refuse(ctx, mail, "no_new_cases", ())
        return "rejected", "no_new_cases", None
    if casetoken.mentions(mail.subject, ctx.settings.tokens) and ctx.settings.policy.unknown_token == "reject":
        trace.append("unknown_token")
        refuse(ctx, mail, "unknown_token", ())
        return "rejected", "unknown_token", None
    return "new_case", None, open_case(ctx, mail).number


def route(ctx: Context, mail: ParsedMail, trace: list[str]) -> tuple[VerdictKind, str | None, int | None]:
    """(verdict, reason, case number) for a mail the content rules accepted."""
    case, rule = find_case(ctx.db, mail, ctx.settings)
    trace.append(rule)
    if case is None:
        return _new_case(ctx, mail, trace)
    if agents.is_agent(mail, ctx.settings, trace):
        return agents.handle(ctx, case, mail, trace)
    trace.append("participant")
    if not is_participant(ctx, case, mail.from_addr):
        if ctx.settings.policy.stranger_reply == "new_case":
            return _new_case(ctx, mail, trace)
        refuse(ctx, mail, "not_participant", ())
        return "rejected", "not_participant", case.number
    trace.append("case_open")
    if case.status == "closed":
        if not _reopenable(ctx, case):
            refuse(ctx, mail, "case_closed", (), case)
            return "rejected", "case_closed", case.number
        case.status, case.closed_at = "open", None
        trace.append("reopened")
    add_reply(ctx, case, mail)
    return "reply", None, case.number
