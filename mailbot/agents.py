"""Agent mail: a support agent's answer on a case, relayed to the customer side.

Agents are the configured `[agents]` addresses and domains. Anyone can write such an address
into From, so only mail whose authentication verdict (`mailbot.auth`) is `pass` acts as an
agent's; anything else claiming an agent's address is a stranger's mail (trace step
`agent_untrusted`, reason `agent_unverified`): nothing is relayed, no command runs. Its one
automatic mail is a warning to the real agent, at most one per notice window: the forger never
sees it, and an agent whose own server does not sign learns why their answer went nowhere.
The first lines of an agent's new text may carry commands, which never reach the customer:

    #internal                                   keep this mail an internal note
    #status new|open|waiting|resolved|closed    change the status (and mail the customer)
    #status waiting silent                      ... without the status mail
    #priority urgent|high|normal|low            set the priority (moves the answer target)
    #estimate 4h|2d|1w|30m                      the time to fix, shown on the customer's case page
    #callback done                              the customer's callback request is dealt with

Everything else the agent wrote is relayed to the customer side From the service address,
threaded into the case, with the case tag in the subject, so the customer's answer comes back
to the case. A malformed command refuses the whole mail (notice `agent_command`): a typo must
neither reach the customer nor be dropped without the agent knowing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from sqlalchemy import func
from sqlmodel import select

from mailbot import priority, quotes, subjects
from mailbot.cases import Context, add_participants, customer_side, record_message, refuse, send
from mailbot.checks.crypto import is_signature
from mailbot.config import Settings
from mailbot.logs import event
from mailbot.mail import ParsedMail
from mailbot.models import Case, Outbox, utcnow
from mailbot.parse import parse
from mailbot.status import STATUSES, change_status
from mailbot.verdicts import VerdictKind

_COMMAND = re.compile(r"#(internal|status|priority|estimate|callback)\b(.*)", re.IGNORECASE)
_DURATION = re.compile(r"([1-9][0-9]{0,3})(m|h|d|w)")
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}


WARNING = "agent_unverified"


class CommandError(ValueError):
    """A command line at the top of an agent's text that cannot be carried out."""


@dataclass(frozen=True)
class Commands:
    internal: bool = False
    status: str | None = None
    silent: bool = False
    priority: str | None = None
    estimate_minutes: int | None = None
    callback_done: bool = False


def on_case(ctx: Context, case: Case, mail: ParsedMail, trace: list[str]) -> tuple[VerdictKind, str | None, int | None]:
    """Mail From an agent's address on `case`: the agent's answer if it passed authentication,
    else a stranger's mail that only warns the agent."""
    if mail.auth.result == "pass":
        trace.append("agent")
        return handle(ctx, case, mail, trace)
    trace.append("agent_untrusted")
    warn_if_claimed(ctx, mail, trace)
    return "rejected", WARNING, case.number


def warn_if_claimed(ctx: Context, mail: ParsedMail, trace: list[str]) -> None:
    """Tell the agent whose address an unauthenticated mail claims, once per notice window."""
    if not ctx.settings.agents.covers(mail.from_addr):
        return
    since = utcnow() - timedelta(minutes=ctx.settings.policy.notice_window_minutes)
    query = select(func.count()).where(Outbox.kind == WARNING, Outbox.recipient == mail.from_addr,
                                       Outbox.created >= since)
    if ctx.db.exec(query).one():
        event("notice-suppressed", kind=WARNING, to=mail.from_addr, reason="warned_recently", spool=ctx.spool_id)
        return
    send(ctx, WARNING, [mail.from_addr], {"original_subject": subjects.clean(mail.subject), "why": mail.auth.why},
         case=None, answering=None)
    trace.append("agent_warned")


def _apply(commands: Commands, line: str, keyword: str, words: list[str]) -> Commands:
    if keyword == "internal" and not words:
        return replace(commands, internal=True)
    if keyword == "status" and words and words[0] in STATUSES and words[1:] in ([], ["silent"]):
        return replace(commands, status=words[0], silent=len(words) == 2)
    if keyword == "priority" and len(words) == 1 and words[0] in priority.LEVELS:
        return replace(commands, priority=words[0])
    duration = _DURATION.fullmatch(words[0]) if keyword == "estimate" and len(words) == 1 else None
    if duration is not None:
        return replace(commands, estimate_minutes=int(duration[1]) * _MINUTES[duration[2]])
    if keyword == "callback" and words == ["done"]:
        return replace(commands, callback_done=True)
    raise CommandError(f"cannot read the command line {line!r}")


def read_commands(text: str) -> tuple[Commands, str]:
    """The commands on the first lines of `text`, and the text below them.

    Lines starting with `#` that are not commands ("#1 priority") end the commands and are text.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    commands, taken = Commands(), 0
    for line in (line.strip() for line in lines):
        found = _COMMAND.fullmatch(line)
        if line and found is None:
            break
        if found is not None:
            commands = _apply(commands, line, found[1].lower(), found[2].lower().split())
        taken += 1
    return commands, "\n".join(lines[taken:]).strip()


def handle(ctx: Context, case: Case, mail: ParsedMail, trace: list[str]) -> tuple[VerdictKind, str | None, int | None]:
    """An agent's mail on `case`: carry out its commands and relay its new text, or refuse it."""
    try:
        reply(ctx, case, mail, quotes.new_part(mail.text), trace)
    except CommandError as exc:
        trace.append("agent_command")
        refuse(ctx, mail, "agent_command", (str(exc),), case)
        return "rejected", "agent_command", case.number
    return "reply", None, case.number


def reply(ctx: Context, case: Case, mail: ParsedMail, text: str, trace: list[str], *, internal: bool = False) -> None:
    """Record the agent's `mail` on the case, relay `text` unless internal, then change the status.

    Raises CommandError, before anything is written, if `text` starts with a malformed command;
    `internal` keeps the answer internal whatever its first lines say (`case reply --internal`).
    """
    commands, text = read_commands(text)
    if internal:
        commands = replace(commands, internal=True)
    row = record_message(ctx, case, mail, kind="agent")
    row.internal = commands.internal
    add_participants(ctx, case, [mail.from_addr], "agent")
    if commands.internal:
        trace.append("agent_note")
    elif text:
        # Not back to the agent, nor to anyone the agent already wrote to directly.
        directly = {mail.from_addr, *mail.to, *mail.cc}
        recipients = [address for address in customer_side(ctx, case) if address not in directly]
        files = [part for part in mail.attachments if not is_signature(part)]  # the rules passed them
        send(ctx, "agent_reply", recipients, {"text": text}, case=case, answering=None,
             sender=ctx.settings.service.addresses[0], files=files)
        case.answered_at = case.answered_at or utcnow()
        trace.append("agent_relayed")
    status, silent = commands.status, commands.silent
    if status is None and text and not commands.internal and case.status == "new":
        # The first answer means someone is on it; the answer itself tells the customer so.
        status, silent = "open", True
    if status and change_status(ctx, case, status, silent=silent, actor=mail.from_addr):
        trace.append("status_changed")
    _record_assessment(ctx, case, commands, mail.from_addr, trace)
    ctx.db.add(case)


def _record_assessment(ctx: Context, case: Case, commands: Commands, agent: str, trace: list[str]) -> None:
    """Priority, estimate and callback lines: shown on the case page, never mailed by themselves."""
    if commands.priority and priority.change_priority(ctx, case, commands.priority, actor=agent):
        trace.append("priority_changed")
    if commands.estimate_minutes is not None:
        case.estimate_minutes, case.estimate_at = commands.estimate_minutes, utcnow()
        trace.append("estimate_set")
    if commands.callback_done and case.callback_requested_at is not None:
        case.callback_requested_at = case.callback_phone = None
        if not ctx.dry_run:
            event("callback-done", case=case.number, actor=agent, spool=ctx.spool_id)
        trace.append("callback_done")


def as_mail(settings: Settings, case: Case, agent: str, text: str) -> ParsedMail:
    """An operator's answer (`mailbot case reply`) as the mail the agent would have sent."""
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(addr_spec=agent)
    message["To"] = Address(addr_spec=settings.service.addresses[0])
    message["Subject"] = case.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=agent.rsplit("@", 1)[-1])
    message.set_content(text)
    return parse(message.as_bytes())
