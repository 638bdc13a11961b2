"""What an accepted mail does to the cases: open one, add a reply, or refuse with a reason.

The case-lifecycle rules live here, after matching, because they need the matched case:
strangers quoting a token are not added to someone's case, closed cases are not silently
reopened, and a site that takes no new cases by mail says so instead of opening one.

A stranger quoting a real token gets exactly what a wrong token gets (`[policy] unknown_token`:
a case of their own, or the unknown_token notice): were the answers different, every mail
would tell a guesser whether the token was right. Both count as a failed token check
(`mailbot.guesses`); past the limit only the thread headers match that sender's mail.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from mailbot import agents, casetoken, guesses
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
    tokened = casetoken.mentions(mail.subject, ctx.settings.tokens)
    by_token = not (tokened and guesses.limited(ctx, mail))
    if not by_token:
        trace.append("token_limited")
    case, rule = find_case(ctx.db, mail, ctx.settings, by_token=by_token)
    trace.append(rule)
    if case is None:
        if tokened and by_token:
            guesses.record_failure(ctx, mail, trace)
        return _new_case(ctx, mail, trace)
    if ctx.settings.agents.covers(mail.from_addr):
        return agents.on_case(ctx, case, mail, trace)
    trace.append("participant")
    if not is_participant(ctx, case, mail.from_addr):
        trace.append("stranger")
        if rule == "match_token":
            guesses.record_failure(ctx, mail, trace)
        return _new_case(ctx, mail, trace)
    trace.append("case_open")
    if case.status == "closed":
        if not _reopenable(ctx, case):
            refuse(ctx, mail, "case_closed", (), case)
            return "rejected", "case_closed", case.number
        case.status, case.closed_at = "open", None
        trace.append("reopened")
    add_reply(ctx, case, mail)
    return "reply", None, case.number
