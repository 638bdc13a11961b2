"""The pure verdict on one mail: raw pre-checks, parse, content rules. No database, no files.

`judge` is the single entry the judge pool runs in its worker processes (mailbot/judgepool.py),
so everything in here must stay a function of (bytes, envelope, settings) returning plain,
picklable values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailbot import checks, rawcheck
from mailbot.config import Settings
from mailbot.mail import Envelope, ParsedMail
from mailbot.parse import ParseError, parse
from mailbot.verdicts import Decision, Ignore, Quarantine


@dataclass(frozen=True)
class Judgement:
    """What the content rules say about a mail; pure, so it is worked out before any lock."""

    mail: ParsedMail | None
    decision: Decision
    trace: list[str]


def judge(raw: bytes, envelope: Envelope, settings: Settings) -> Judgement:
    """Pre-check the raw bytes, parse, and run the content rules."""
    problem = rawcheck.problem(raw, settings.limits)
    if problem is not None:
        return Judgement(None, Quarantine(problem), ["precheck"])
    try:
        mail = parse(raw)
    except ParseError as exc:
        return Judgement(None, Quarantine(f"unparseable: {exc}"), ["parse"])
    decision, trace = checks.run(mail, envelope, settings)
    if mail.unreadable is not None and not isinstance(decision, Ignore):
        # Robots are still known by their header; a person's mail needs its body read by a human.
        return Judgement(None, Quarantine(f"unparseable body: {mail.unreadable}"), ["parse", *trace])
    # The MIME tree stays here: the rules are done with it, and it would double what travels back.
    return Judgement(replace(mail, message=None), decision, ["parse", *trace])
