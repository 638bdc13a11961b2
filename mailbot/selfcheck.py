"""What `check-config` (and every reload) checks beyond the file itself: folders exist or can
be made, templates render, and (with --connect) the relay and every IMAP account answer.

A template error found here is a notice that would otherwise fail at 3 a.m. for a customer.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from jinja2 import TemplateError

from mailbot import sender, storage
from mailbot.config import Settings
from mailbot.models import Case
from mailbot.notices import Notices
from mailbot.verdicts import Dropped
from mailbot.web import app, page

# Every kind of mail mailbot sends: case mail, then one notice per refusal reason.
KINDS = (
    "receipt", "reply_receipt", "status_changed", "agent_reply", "agent_unverified",
    "rich_text", "attachment_type", "too_large", "encrypted",
    "case_closed", "no_new_cases", "unknown_token", "callback_requested",
)


def _sample() -> dict[str, object]:
    case = SimpleNamespace(number=10042, token="SVC-10042-K7MQ", subject="Drucker druckt nicht", status="open")
    return {
        "case": case, "tag": "[#SVC-10042-K7MQ]", "original_subject": "Drucker druckt nicht",
        "answer_due": "Dienstag, 24.11.2026, 09:30 Uhr", "status": "resolved", "previous_status": "open",
        "details": ["rechnung.jpg: application/x-dosexec"], "text": "Bitte starten Sie den Drucker neu.",
        "dropped": [Dropped(1, "rechnung.exe", "application/x-dosexec", reason, "path traversal: ../x")
                    for reason in ("type", "zip_count", "zip")],
        "why": "no dkim signature of the from domain",
        "case_link": "https://support.example.com/c/10042/HfK2aiG91-kUcYQ2nhOeRHp6",
        "phone": "+49 30 1234567", "note": "Bitte ab 14 Uhr.",
    }


def _writable_problem(name: str, key: str, path: Path) -> str | None:
    """Why mailbot could not create or write to the folder `path`, if it could not."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"{name}: {key}: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{name}: {key}: {existing} is not writable" + ("" if existing == path else f" (to create {path})")
    return None


def path_problems(settings: Settings) -> list[str]:
    """One line per configured folder that is missing (templates) or cannot be written to."""
    name = Path(settings.source).name
    problems = []
    if not Path(settings.templates.dir).is_dir():
        problems.append(f"{name}: templates.dir: {settings.templates.dir} is not a folder")
    folders = [("storage.attachments_dir", Path(settings.storage.attachments_dir))]
    if settings.relay.mode == "maildir":
        folders.append(("relay.maildir", Path(settings.relay.maildir)))
    database = storage.sqlite_folder(settings)
    if database is not None:
        folders.append(("database.url", database))
    problems += [problem for key, path in folders if (problem := _writable_problem(name, key, path))]
    return problems


def problems(settings: Settings) -> list[str]:
    """Everything `check-config` (and a reload) checks without connecting anywhere."""
    found = path_problems(settings)
    if not any(": templates.dir: " in problem for problem in found):
        found += template_problems(settings)
    return found


def _sample_page(callback: bool) -> dict[str, object]:
    """A case page with one of everything it can show (the callback form, or the open request)."""
    now = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    case = Case(number=10042, token="SVC-10042-K7MQ", subject="Drucker", requester="kunde@example.org",
                status="open", answer_due=now, estimate_minutes=2880, estimate_at=now,
                callback_requested_at=now if callback else None)
    files = (page.File(1, "foto.png", "image/png", 2048),)
    history = tuple(page.Entry(now, who, "Kora", "Text", "Text\n> alt", files, action)
                    for who, action in (("customer", None), ("participant", None), ("support", None),
                                        ("page", "callback_requested"), ("page", "solved")))
    arrivals = tuple(page.Arrival(now, "customer", "", "Betreff", verdict, reason) for verdict, reason in (
        ("new_case", None), ("reply", None), ("ignored", "auto_reply"), ("quarantined", "unparseable"),
        ("rejected", "rich_text"), ("rejected", "attachment_type"), ("rejected", "too_large"),
        ("rejected", "encrypted"), ("rejected", "case_closed"), ("rejected", "not_participant"),
        ("rejected", "unknown"),
    ))
    view = page.CaseView(case, now, history, arrivals)
    return {"view": view, "case": case, "due": "Dienstag, 24.11.2026, 10:30 Uhr", "signature": "x",
            "mailto": "mailto:service@example.com", "static": "../..",
            "csrf": "x", "done": "callback", "refused": "phone"}


def _page_problems(settings: Settings) -> list[str]:
    env = app.environment(settings.templates.dir)
    found = []
    for language in settings.templates.languages:
        for name, callback in (("case.html.j2", True), ("case.html.j2", False), ("not_found.html.j2", False)):
            try:
                app.render(env, settings, name, language, **_sample_page(callback))
            except TemplateError as exc:
                found.append(f"{Path(settings.templates.dir) / 'web' / name} ({language}): "
                             f"{type(exc).__name__}: {exc}")
    return found


def template_problems(settings: Settings) -> list[str]:
    """One line per template that is missing or does not render with sample data."""
    notices = Notices(settings)
    problems = []
    for language in settings.templates.languages:
        for kind in KINDS:
            path = Path(settings.templates.dir) / language / f"{kind}.txt.j2"
            try:
                subject, body = notices.render(kind, _sample(), language)
            except TemplateError as exc:
                problems.append(f"{path}: {type(exc).__name__}: {exc}")
                continue
            if not subject or not body.strip():
                problems.append(f"{path}: renders an empty subject or body")
    return problems + _page_problems(settings)


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
