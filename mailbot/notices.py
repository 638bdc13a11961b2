"""jinja2 templates -> outgoing EmailMessage with loop-safe headers.

Every automatic mail comes From the no-reply address, carries `Auto-Submitted: auto-replied`
(RFC 3834) and `X-Mailbot-Notice` (so our own mail coming back is recognised as a loop), and is
built from typed header objects only: a customer's CR/LF can never become a header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mailbot import hours, subjects
from mailbot.config import Language, Settings
from mailbot.mail import Part


class Notices:
    """Renders `templates/<language>/<kind>.txt.j2` (blocks `subject` and `body`) into mail."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = Environment(
            loader=FileSystemLoader(settings.templates.dir),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, context: Mapping[str, Any], language: Language | None = None) -> tuple[str, str]:
        """(subject, body) for one notice kind, in `language` (else the configured default)."""
        language = language or self.settings.templates.default
        template = self.env.get_template(f"{language}/{kind}.txt.j2")
        service = self.settings.service
        variables = {
            "company": service.company,
            "portal_url": service.portal_url,
            "business_hours": hours.opening_hours(self.settings.hours, language),
            "allowed_files": allowed_files(self.settings, language),
            "dropped": (),
            "language": language,
            "case_link": None,
            **context,
        }
        rendered = template.new_context(variables)
        subject = "".join(template.blocks["subject"](rendered))
        body = "".join(template.blocks["body"](rendered))
        return subjects.clean(subject), body.strip() + "\n"

    def compose(
        self,
        kind: str,
        to: Sequence[str],
        context: Mapping[str, Any],
        *,
        replies_to_service: bool,
        in_reply_to: str | None = None,
        references: Sequence[str] = (),
        language: Language | None = None,
        sender: str | None = None,
        files: Sequence[Part] = (),
    ) -> EmailMessage:
        """A complete message with a fresh, stable Message-ID (stored with the outbox row).

        `sender` relays a person's words (an agent's answer) From that address instead of the
        no-reply one, so the customer's answer comes back to the case, and without
        Auto-Submitted, so the customer's systems treat it as the human mail it is. `files` go
        along as attachments, typed by their content and named only by a cleaned base name.
        """
        subject, body = self.render(kind, context, language)
        service = self.settings.service
        message = EmailMessage(policy=SMTP)
        message["From"] = Address(display_name=service.company, addr_spec=sender or service.noreply)
        message["To"] = [Address(addr_spec=address) for address in to]
        if replies_to_service:
            # Case mail: the customer may answer it to add information. Refusal notices never
            # point back to mailbot, so an auto-responder cannot start a loop through them.
            message["Reply-To"] = Address(addr_spec=service.addresses[0])
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=service.noreply.rsplit("@", 1)[1])
        if in_reply_to:
            message["In-Reply-To"] = in_reply_to
            message["References"] = " ".join([*references, in_reply_to][-10:])
        if sender is None:
            message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
        message["X-Mailbot-Notice"] = kind
        message.set_content(body)
        for number, part in enumerate(files, 1):
            maintype, _, subtype = part.detected_type.partition("/")
            message.add_attachment(part.payload, maintype=maintype, subtype=subtype or "octet-stream",
                                   filename=attachment_name(part.filename, number))
        # Last: set_content and add_attachment move or drop Content-* fields of the top level.
        message["Content-Language"] = language or self.settings.templates.default
        return message


_TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF", "text/plain": "Text"}


def allowed_files(settings: Settings, language: Language) -> str:
    """What a customer may attach, in words: 'JPEG, PNG, PDF oder eine ZIP-Datei'."""
    names = [_TYPE_NAMES.get(kind, kind) for kind in settings.attachments.allowed_types]
    zips = settings.attachments.max_zip_files
    if zips:
        one = {"de": "eine ZIP-Datei", "en": "one ZIP file"}[language]
        many = {"de": f"bis zu {zips} ZIP-Dateien", "en": f"up to {zips} ZIP files"}[language]
        names.append(one if zips == 1 else many)
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} {'oder' if language == 'de' else 'or'} {names[-1]}"


def attachment_name(claimed: str | None, number: int) -> str:
    """A sender's file name made harmless: the base name only, printable, at most 100 characters."""
    base = (claimed or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip(" .")
    return cleaned[:100] or f"attachment-{number}"
