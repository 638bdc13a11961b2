"""What `check-config` checks beyond the file itself: templates render, and (with --connect)
the relay and every IMAP account answer.

A template error found here is a notice that would otherwise fail at 3 a.m. for a customer.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from jinja2 import TemplateError

from mailbot import sender
from mailbot.config import Settings
from mailbot.notices import Notices

# Every kind of mail mailbot sends: case mail, then one notice per refusal reason.
KINDS = (
    "receipt", "reply_receipt", "status_changed", "agent_reply",
    "rich_text", "attachment_type", "too_large", "encrypted",
    "case_closed", "not_participant", "no_new_cases", "unknown_token",
)
LANGUAGES = ("de", "en")


def _sample() -> dict[str, object]:
    case = SimpleNamespace(number=10042, token="SVC-10042-K7MQ", subject="Drucker druckt nicht", status="open")
    return {
        "case": case, "tag": "[#SVC-10042-K7MQ]", "original_subject": "Drucker druckt nicht",
        "answer_due": "Dienstag, 24.11.2026, 09:30 Uhr", "status": "resolved", "previous_status": "open",
        "details": ["rechnung.jpg: application/x-dosexec"], "text": "Bitte starten Sie den Drucker neu.",
    }


def template_problems(settings: Settings) -> list[str]:
    """One line per template that is missing or does not render with sample data."""
    notices = Notices(settings)
    problems = []
    for language in LANGUAGES:
        for kind in KINDS:
            path = Path(settings.templates.dir) / language / f"{kind}.txt.j2"
            try:
                subject, body = notices.render(kind, _sample(), language)
            except TemplateError as exc:
                problems.append(f"{path}: {type(exc).__name__}: {exc}")
                continue
            if not subject or not body.strip():
                problems.append(f"{path}: renders an empty subject or body")
    return problems


def connection_problems(settings: Settings) -> list[str]:
    """Log in to the relay and every IMAP account; one line per one that does not work."""
    from mailbot.intake_imap import check_login

    problems = []
    relay = sender.check(settings.relay)
    if relay is not None:
        problems.append(f"relay {settings.relay.host}:{settings.relay.port}: {relay}")
    for account in settings.imap.accounts:
        error = check_login(account)
        if error is not None:
            problems.append(f"imap account {account.name} ({account.host}:{account.port}): {error}")
    return problems
