"""Case actions: open a case, add a reply, refuse a mail — each with its notices, in one transaction.

The receipt is rendered and queued in the same transaction that opens the case, so a case
never exists without its receipt, and a receipt never goes out for a case that rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlmodel import Session, col, select

from mailbot import casetoken, hours, language, outbox, priority, quotes, subjects
from mailbot.config import Language, Settings
from mailbot.files import FileStore
from mailbot.logs import event
from mailbot.mail import Envelope, ParsedMail, Part
from mailbot.models import Attachment, Case, Message, Participant, key, utcnow
from mailbot.notices import Notices
from mailbot.parse import valid_address
from mailbot.verdicts import Dropped
from mailbot.web import links

NUMBER_BASE = 10000
NO_SUBJECT = {"de": "(ohne Betreff)", "en": "(no subject)"}
MAX_DETAILS = 10  # offending files a notice lists; more are counted, not named
MAX_DETAIL_LENGTH = 160  # a cleaned file name (100) and libmagic's type


@dataclass
class Context:
    """What one message's processing works with; `queued` collects the notices it queued."""

    db: Session
    settings: Settings
    notices: Notices
    files: FileStore
    spool_id: int | None
    dry_run: bool = False
    queued: list[dict[str, str]] = field(default_factory=list)
    dropped: tuple[Dropped, ...] = ()  # files left out of the mail (drop_file), for its receipt
    envelope: Envelope | None = None  # None for the CLI's own actions


def _aware(moment: datetime) -> datetime:
    """Mail dates without a zone (`-0000`) are taken as UTC."""
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def _addresses(values: tuple[str, ...]) -> str:
    return ",".join(values)


def body_text(message: EmailMessage) -> str:
    """The plain-text body of a mail we compose, with or without attachments."""
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


def own_addresses(settings: Settings) -> set[str]:
    return {*settings.service.addresses, settings.service.noreply.lower()}


def customer_side(ctx: Context, case: Case) -> list[str]:
    """Requester and CC participants: the people who get the case's outgoing mail."""
    query = select(Participant.address).where(Participant.case_id == case.id, Participant.role != "agent")
    return list(ctx.db.exec(query).all())


def add_participants(ctx: Context, case: Case, addresses: list[str], role: str) -> None:
    """Add new addresses to the case, at most `[policy] max_participants` in all; an agent CC'd
    by a customer joins as an agent, so the customer-side mail (receipts, status mails, relayed
    answers) never goes back to staff."""
    known = set(ctx.db.exec(select(Participant.address).where(Participant.case_id == case.id)).all())
    limit = ctx.settings.policy.max_participants
    for address in dict.fromkeys(addresses):
        if address and address not in known and address not in own_addresses(ctx.settings):
            if len(known) >= limit:
                event("participants-capped", case=case.number, limit=limit, left_out=address, spool=ctx.spool_id)
                break
            as_role = "agent" if ctx.settings.agents.covers(address) else role
            ctx.db.add(Participant(case_id=key(case), address=address, role=as_role))
            known.add(address)
    ctx.db.flush()


def _unless_same(part: str, whole: str) -> str:
    """The new part of a text, or "" where that is all of it: a mail's text is stored once
    (readers take `text_new or text`). The HTML stays in the spooled raw mail only."""
    return "" if part == whole else part


def copied(ctx: Context, mail: ParsedMail, *, opening: bool) -> list[str]:
    """The To/Cc addresses this mail may add to its case (`[policy] cc_participants`).

    Anyone can write a Cc, so a forged reply must not make a spy a participant, and a mail
    with more recipients than `max_recipients_considered` is a mailing, not a conversation.
    """
    policy = ctx.settings.policy
    addresses = [*mail.to, *mail.cc]
    if len(addresses) > policy.max_recipients_considered or policy.cc_participants == "never":
        return []
    if mail.auth.result == "pass" or (opening and policy.cc_participants == "opening_mail"):
        return addresses
    return []


def requester(ctx: Context, mail: ParsedMail) -> list[str]:
    """Who gets the receipt for `mail`: its From if authenticated, else only if the envelope
    sender is that same address (a forged From on someone else's envelope gets nothing)."""
    envelope = ctx.envelope
    if mail.auth.result == "pass" or envelope is None or envelope.mail_from.lower() == mail.from_addr:
        return [mail.from_addr]
    return []


def record_message(ctx: Context, case: Case, mail: ParsedMail, *, kind: str = "mail") -> Message:
    """Store an incoming mail on the case with its attachments (files by content hash)."""
    row = Message(
        case_id=key(case),
        spool_id=ctx.spool_id,
        direction="in",
        message_id=mail.message_id,
        from_addr=mail.from_addr,
        to_addrs=_addresses(mail.to),
        cc_addrs=_addresses(mail.cc),
        subject=mail.subject,
        text=mail.text,
        text_new=_unless_same(quotes.new_part(mail.text), mail.text),
        date=_aware(mail.date) if mail.date else utcnow(),
        kind=kind,
    )
    ctx.db.add(row)
    ctx.db.flush()
    for part in mail.attachments:
        digest = ctx.files.put(part.payload)
        ctx.db.add(
            Attachment(
                message_row_id=key(row),
                filename=part.filename,
                detected_type=part.detected_type,
                size=part.size,
                sha256=digest,
            )
        )
    case.updated = utcnow()
    ctx.db.add(case)
    return row


def thread_of(ctx: Context, case: Case | None) -> tuple[str | None, tuple[str, ...]]:
    """(In-Reply-To, References) for case mail that answers no one mail (agent answers, status
    mail): the customers' own mails on the case, so their clients file it in the conversation."""
    if case is None:
        return None, ()
    query = select(Message.message_id).where(
        Message.case_id == case.id, Message.direction == "in", Message.kind == "mail",
        col(Message.message_id).is_not(None),
    ).order_by(col(Message.id))
    ids = [message_id for message_id in ctx.db.exec(query).all() if message_id]
    return (ids[-1], tuple(ids[:-1])) if ids else (None, ())


def speaks(ctx: Context, case: Case | None, mail: ParsedMail | None) -> Language:
    """The language to write in: the case's; for mail without a case, the mail's own."""
    templates = ctx.settings.templates
    if case is not None and case.language in templates.languages:
        return case.language
    return language.of_mail(mail, templates) if mail is not None else templates.default


def send(
    ctx: Context,
    kind: str,
    recipients: list[str],
    context: dict[str, object],
    *,
    case: Case | None,
    answering: ParsedMail | None,
    deadline_minutes: int | None = None,
    sender: str | None = None,
    files: Sequence[Part] = (),
    about: Case | None = None,
) -> None:
    """Render and queue one mail per recipient, threaded to the mail it answers (else to the
    case); `sender` sends From that address instead of no-reply (see Notices.compose). `about`
    is a case a refusal concerns: the outbox row names it, the mail does not join it."""
    deadline = utcnow() + timedelta(minutes=deadline_minutes) if deadline_minutes else None
    in_reply_to, references = (answering.message_id, answering.references) if answering else thread_of(ctx, case)
    concerns = case or about
    lang = speaks(ctx, concerns, answering)
    for recipient in dict.fromkeys(recipients):
        if not valid_address(recipient) or recipient in own_addresses(ctx.settings):
            continue  # nobody to answer (a garbage From), or ourselves
        message = ctx.notices.compose(
            kind,
            [recipient],
            {"case": case, "tag": casetoken.tag(case.token) if case and case.token else "",
             "case_link": links.in_mail(ctx.settings, case), **context},
            replies_to_service=case is not None,
            in_reply_to=in_reply_to,
            references=references,
            sender=sender,
            files=files,
            language=lang,
        )
        row = outbox.queue(
            ctx.db, message, kind=kind, recipient=recipient, settings=ctx.settings,
            case_id=concerns.id if concerns else None, deadline=deadline,
        )
        if row is None:
            continue
        if not ctx.dry_run:
            event("notice-queued", kind=kind, to=recipient, case=case.number if case else None,
                  message_id=row.message_id, spool=ctx.spool_id)
        ctx.queued.append({"kind": kind, "to": recipient})
        if case is not None:
            ctx.db.add(
                Message(
                    case_id=key(case), direction="out", message_id=row.message_id,
                    from_addr=sender or ctx.settings.service.noreply, to_addrs=recipient,
                    subject=str(message["Subject"]), text=body_text(message), kind="notice",
                )
            )


def open_case(ctx: Context, mail: ParsedMail) -> Case:
    """A new case from a customer's mail; its receipt is queued in the same transaction."""
    lang = language.of_mail(mail, ctx.settings.templates)
    subject = subjects.strip_prefixes(casetoken.strip(mail.subject, ctx.settings.tokens)) or NO_SUBJECT[lang]
    subject = subjects.clean(subject)  # it is quoted in every mail of the case: one line, 200 characters
    case = Case(subject=subject, requester=mail.from_addr, status="new", language=lang)
    ctx.db.add(case)
    ctx.db.flush()
    assert case.id is not None
    case.number = NUMBER_BASE + case.id
    case.token = casetoken.make(case.number, ctx.settings.tokens)
    case.link_salt = links.new_salt()
    ctx.db.add(case)
    add_participants(ctx, case, [mail.from_addr], "requester")
    add_participants(ctx, case, copied(ctx, mail, opening=True), "cc")
    record_message(ctx, case, mail)
    case.priority = priority.from_mail(mail, ctx.settings)
    case.answer_due = priority.due_for(case, ctx.settings)
    send(
        ctx, "receipt", requester(ctx, mail),
        {"original_subject": subject, "answer_due": hours.describe(case.answer_due, lang),
         "dropped": ctx.dropped},
        case=case, answering=mail, deadline_minutes=ctx.settings.policy.receipt_window_minutes,
    )
    return case


def add_reply(ctx: Context, case: Case, mail: ParsedMail) -> Message:
    """Append a participant's reply and confirm it with a short receipt to its sender."""
    row = record_message(ctx, case, mail)
    add_participants(ctx, case, copied(ctx, mail, opening=False), "cc")
    send(
        ctx, "reply_receipt", requester(ctx, mail),
        {"original_subject": case.subject, "answer_due": None, "dropped": ctx.dropped},
        case=case, answering=mail, deadline_minutes=ctx.settings.policy.receipt_window_minutes,
    )
    return row


def _listed(details: tuple[str, ...]) -> list[str]:
    """At most MAX_DETAILS lines of sender-named things, each cut short: a notice never
    carries more than a line of what the sender wrote."""
    shown = [subjects.clean(detail, MAX_DETAIL_LENGTH) for detail in details[:MAX_DETAILS]]
    return shown + ([f"(+{len(details) - MAX_DETAILS})"] if len(details) > MAX_DETAILS else [])


def refuse(ctx: Context, mail: ParsedMail, reason: str, details: tuple[str, ...], case: Case | None = None) -> None:
    """Tell the sender why their mail was not taken (one template per reason), quoting at most
    200 characters of the subject and nothing of the body. (Mail from a null envelope sender
    is a bounce and never gets here; mail known to fail authentication is quarantined.)
    """
    send(
        ctx, reason, [mail.from_addr],
        {"original_subject": subjects.clean(mail.subject), "details": _listed(details), "case": case},
        case=None, answering=mail, about=case,
    )
