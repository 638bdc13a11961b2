"""Every notice template renders cleanly in every language, the way mailbot/notices.py renders it
(blocks `subject` and `body`, StrictUndefined); the receipt and status texts say what they promise."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined, UndefinedError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("de", "en")
STATUSES = ("new", "open", "waiting", "resolved", "closed")
FILES = sorted(path.relative_to(TEMPLATES).as_posix() for path in TEMPLATES.glob("*/*.txt.j2"))

ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False,
                  keep_trailing_newline=True)
DUE = {"de": "Dienstag, 24.11.2026, 10:30 Uhr", "en": "Tuesday, 24 Nov 2026, 10:30"}


@dataclass(frozen=True)
class SampleCase:
    number: int = 10042
    token: str = "SVC-10042-K7"
    subject: str = "Drucker druckt nur leere Seiten"
    status: str = "open"


def context(language: str, **overrides: Any) -> dict[str, Any]:
    return {
        "company": "Beispiel GmbH",
        "portal_url": "https://support.example.com",
        "business_hours": "Mo-Fr 09:00-16:00",
        "case": SampleCase(),
        "tag": "[#SVC-10042-K7]",
        "original_subject": "Drucker druckt nur leere Seiten",
        "answer_due": DUE[language],
        "status": "open",
        "previous_status": "new",
        "language": language,
        "details": ["Anhang „rechnung.exe“: Dateityp application/x-dosexec ist nicht erlaubt"],
        "text": "Guten Tag,\n\nbitte starten Sie den Drucker neu.\n\nViele Grüße\nAnna",
        "dropped": (),
        "allowed_files": "JPEG, PNG oder eine ZIP-Datei",
        "why": "no dkim signature of the from domain",
        "case_link": "https://support.example.com/c/10042/HfK2aiG91-kUcYQ2nhOeRHp6",
        "phone": "+49 30 1234567",
        "note": "Bitte ab 14 Uhr.",
    } | overrides


def render(name: str, variables: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) exactly as notices.Notices.render assembles them, before cleaning."""
    template = ENV.get_template(name)
    rendered = template.new_context(variables)
    return "".join(template.blocks["subject"](rendered)), "".join(template.blocks["body"](rendered))


def assert_clean(subject: str, body: str) -> None:
    assert subject.strip(), "empty subject"
    assert "\n" not in subject.strip() and "\r" not in subject, f"subject is not one line: {subject!r}"
    assert body.strip(), "empty body"
    for text in (subject, body):
        for leftover in ("{{", "}}", "{%", "%}", "{#", "None"):
            assert leftover not in text, f"{leftover!r} left in {text!r}"


def test_templates_exist_in_every_language() -> None:
    kinds = {language: {Path(name).name for name in FILES if name.startswith(f"{language}/")}
             for language in LANGUAGES}
    assert kinds["de"] and kinds["de"] == kinds["en"]
    assert {"receipt.txt.j2", "reply_receipt.txt.j2", "status_changed.txt.j2"} <= kinds["de"]


@pytest.mark.parametrize("name", FILES)
def test_renders_with_every_status_and_due(name: str) -> None:
    language = name.split("/")[0]
    for status, previous, due in itertools.product(STATUSES, (None, "new"), (DUE[language], None)):
        subject, body = render(name, context(language, status=status, previous_status=previous, answer_due=due))
        assert_clean(subject, body)


# Mail about a case is only ever sent with one; every other notice may have no case at all.
CASE_MAIL = ("receipt.txt.j2", "reply_receipt.txt.j2", "status_changed.txt.j2", "agent_reply.txt.j2",
             "callback_requested.txt.j2")


@pytest.mark.parametrize("name", [name for name in FILES if Path(name).name not in CASE_MAIL])
def test_refusals_render_without_a_case(name: str) -> None:
    assert_clean(*render(name, context(name.split("/")[0], case=None, tag="")))


@pytest.mark.parametrize("name", [name for name in FILES if name.startswith("de/")])
def test_german_texts_address_the_customer_formally(name: str) -> None:
    subject, body = render(name, context("de"))
    assert not re.search(r"\b(du|dich|dir|dein\w*)\b", subject + body, re.IGNORECASE)


@pytest.mark.parametrize(
    ("language", "subject"),
    [("de", "[#SVC-10042-K7] Ihre Anfrage: Drucker druckt nur leere Seiten"),
     ("en", "[#SVC-10042-K7] Your request: Drucker druckt nur leere Seiten")],
)
def test_receipt(language: str, subject: str) -> None:
    rendered_subject, body = render(f"{language}/receipt.txt.j2", context(language))
    assert rendered_subject == subject
    for promise in ("10042", "[#SVC-10042-K7]", DUE[language], "Mo-Fr 09:00-16:00",
                    "https://support.example.com", "Beispiel GmbH"):
        assert promise in body
    assert ("automatisch" if language == "de" else "automatically") in body
    assert ("den Betreff dabei unverändert" if language == "de" else "leave the subject unchanged") in body


@pytest.mark.parametrize(("language", "fallback"), [("de", "so bald wie möglich"), ("en", "as soon as")])
def test_receipt_without_answer_due(language: str, fallback: str) -> None:
    _, body = render(f"{language}/receipt.txt.j2", context(language, answer_due=None))
    assert fallback in body
    assert ("voraussichtlich" if language == "de" else "expect an answer") not in body


@pytest.mark.parametrize("language", LANGUAGES)
def test_reply_receipt(language: str) -> None:
    subject, body = render(f"{language}/reply_receipt.txt.j2", context(language))
    assert subject.startswith("[#SVC-10042-K7] ") and subject.endswith(": Drucker druckt nur leere Seiten")
    assert "10042" in body and DUE[language] in body
    _, without_due = render(f"{language}/reply_receipt.txt.j2", context(language, answer_due=None))
    assert DUE[language] not in without_due and "\n\n\n" not in without_due


@pytest.mark.parametrize(
    ("language", "status", "headline", "label"),
    [
        ("de", "new", "Ihre Anfrage ist eingegangen", "Neuer Status: eingegangen"),
        ("de", "open", "Ihre Anfrage ist in Bearbeitung", "Neuer Status: in Bearbeitung"),
        ("de", "waiting", "Wir benötigen Ihre Rückmeldung", "Neuer Status: wartet auf Ihre Rückmeldung"),
        ("de", "resolved", "Ihre Anfrage ist gelöst", "Neuer Status: gelöst"),
        ("de", "closed", "Ihre Anfrage ist abgeschlossen", "Neuer Status: abgeschlossen"),
        ("en", "new", "Your request has been received", "New status: received"),
        ("en", "open", "Your request is in progress", "New status: in progress"),
        ("en", "waiting", "We need your reply", "New status: waiting for your reply"),
        ("en", "resolved", "Your request has been resolved", "New status: resolved"),
        ("en", "closed", "Your request has been closed", "New status: closed"),
    ],
)
def test_status_changed_speaks_human_words(language: str, status: str, headline: str, label: str) -> None:
    name = f"{language}/status_changed.txt.j2"
    subject, body = render(name, context(language, status=status, previous_status="new"))
    assert subject == f"[#SVC-10042-K7] {headline}: Drucker druckt nur leere Seiten"
    previously = {"de": "(bisher: eingegangen)", "en": "(previously: received)"}[language]
    assert f"{label} {previously}" in body
    _, first = render(name, context(language, status=status, previous_status=None))
    assert f"{label}\n" in first


def test_status_changed_refuses_an_unknown_status() -> None:
    with pytest.raises(UndefinedError):
        render("de/status_changed.txt.j2", context("de", status="archived"))


@pytest.mark.parametrize(("kind", "language"), list(itertools.product(
    ("receipt", "reply_receipt", "status_changed", "agent_reply"), LANGUAGES)))
def test_case_mail_carries_the_case_page_link_when_one_is_served(kind: str, language: str) -> None:
    with_link = render(f"{language}/{kind}.txt.j2", context(language))[1]
    without = render(f"{language}/{kind}.txt.j2", context(language, case_link=None))[1]
    assert context(language)["case_link"] in with_link
    assert "/c/10042" not in without and "None" not in without
