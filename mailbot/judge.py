"""The pure verdict on one mail: raw pre-checks, parse, content rules. No database, no files.

`judge` is the single entry the judge pool runs in its worker processes (mailbot/judgepool.py),
so everything in here must stay a function of (bytes, envelope, settings) returning plain,
picklable values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailbot import auth, checks, rawcheck
from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.parse import ParseError, parse
from mailbot.verdicts import Accept, Decision, Ignore, Quarantine, Reject


@dataclass(frozen=True)
class Judgement:
    """What the content rules say about a mail; pure, so it is worked out before any lock."""

    mail: ParsedMail | None
    decision: Decision
    trace: list[str]


def judge(raw: bytes, envelope: Envelope, settings: Settings, dnsfunc: auth.DnsFunc = auth.dns_txt) -> Judgement:
    """Pre-check the raw bytes, parse, authenticate the sender, and run the content rules; the
    network only for a DKIM key (bounded in time; `dnsfunc` stands in for DNS in tests).

    Mail whose From domain says "not from us" is quarantined (`auth_failed`) whatever the rules
    say: it is never attached to a case and never answered, since the answer would go to
    someone who did not write it.
    """
    problem = rawcheck.problem(raw, settings.limits)
    if problem is not None:
        return Judgement(None, Quarantine(problem), ["precheck"])
    try:
        mail = parse(raw)
    except ParseError as exc:
        return Judgement(None, Quarantine(f"unparseable: {exc}"), ["parse"])
    mail = replace(mail, auth=auth.verdict(raw, mail, envelope, settings, dnsfunc))
    decision, trace = checks.run(mail, envelope, settings)
    trace = ["parse", f"auth_{mail.auth.result}", *trace]
    if mail.unreadable is not None and not isinstance(decision, Ignore):
        # Robots are still known by their header; a person's mail needs its body read by a human.
        return Judgement(None, Quarantine(f"unparseable body: {mail.unreadable}"), trace)
    if mail.auth.result == "fail" and isinstance(decision, Accept | Reject):
        decision = Quarantine("auth_failed")
        trace.append("auth_failed")
    # The MIME tree stays here: the rules are done with it, and it would double what travels back.
    return Judgement(replace(mail, message=None), decision, trace)
