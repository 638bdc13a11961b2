"""Every policy rejection reason has a plain-text notice in each language, in the notice format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
REASONS = ("rich_text", "attachment_type", "too_large", "encrypted")
LANGUAGES = ("de", "en")
NO_REPLY = {"de": "Antworten auf diese E-Mail werden nicht gelesen.", "en": "Replies to this email are not read."}


@dataclass(frozen=True)
class Case:
    number: str
    token: str
    subject: str
    status: str


def render(language: str, reason: str, case: Case | None) -> tuple[str, str]:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False)
    template = env.get_template(f"{language}/{reason}.txt.j2")
    context = template.new_context({
        "company": "Beispiel GmbH", "portal_url": "https://portal.example", "business_hours": "Mo-Fr 9-16",
        "original_subject": "Drucker <defekt> & mehr", "details": ["urlaub.jpg: application/x-dosexec"],
        "case": case,
    })
    return "".join(template.blocks["subject"](context)), "".join(template.blocks["body"](context))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reason", REASONS)
def test_notice_names_the_mail_the_problem_and_the_way_out(language: str, reason: str) -> None:
    subject, body = render(language, reason, None)
    assert subject.endswith(": Drucker <defekt> & mehr")  # plain text: nothing escaped
    assert "\n" not in subject
    assert "urlaub.jpg: application/x-dosexec" in body
    assert "https://portal.example" in body and "Beispiel GmbH" in body
    assert NO_REPLY[language] in body
    assert "SVC-10042" not in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reason", REASONS)
def test_notice_mentions_the_case_when_there_is_one(language: str, reason: str) -> None:
    _, body = render(language, reason, Case("SVC-10042", "[#SVC-10042-K7]", "Drucker", "open"))
    assert "SVC-10042" in body


def test_every_reject_reason_of_the_rules_has_a_template() -> None:
    for language in LANGUAGES:
        assert {p.name.removesuffix(".txt.j2") for p in (TEMPLATES / language).glob("*.txt.j2")} >= set(REASONS)
