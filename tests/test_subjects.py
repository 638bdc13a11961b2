"""Subjects: reply chains stripped for receipts and comparison, and made safe as a header."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.subjects import MAX_LENGTH, clean, strip_prefixes

CI = settings(derandomize=True, max_examples=200, deadline=None, database=None)
MARKERS = ("Re:", "RE:", "AW:", "Aw:", "WG:", "Fwd:", "FW:", "Fw:", "SV:", "Antw:", "Antwort:",
           "Re[2]:", "Re(2):", "Re :", "re:", "[support-list]", "[EXTERN]")  # fmt: skip


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Drucker defekt", "Drucker defekt"),
        ("Re: Drucker defekt", "Drucker defekt"),
        ("RE: AW: WG: Drucker defekt", "Drucker defekt"),
        ("Re[2]: Re(3): Re^2: Drucker defekt", "Drucker defekt"),
        ("Re : AW:Fwd:FW: Drucker defekt", "Drucker defekt"),
        ("SV: Antw: Antwort: Drucker defekt", "Drucker defekt"),
        ("[EXTERN] AW: [support-list] WG: Drucker defekt", "Drucker defekt"),
        ("AW: [#SVC-10042-K7MQ] Drucker defekt", "[#SVC-10042-K7MQ] Drucker defekt"),
        ("AW: [# SVC-10042-K7MQ ] Drucker defekt", "[# SVC-10042-K7MQ ] Drucker defekt"),
        ("Reklamation: Drucker defekt", "Reklamation: Drucker defekt"),
        ("Antrag: Urlaub", "Antrag: Urlaub"),
        ("Drucker defekt, Re: gestern", "Drucker defekt, Re: gestern"),
        ("  Re:  ", ""),
    ],
)
def test_strip_prefixes(subject: str, expected: str) -> None:
    assert strip_prefixes(subject) == expected


@CI
@given(st.lists(st.sampled_from(MARKERS), max_size=8), st.sampled_from(["", " ", "  "]), st.text(max_size=60))
def test_any_chain_strips_to_the_same_subject(chain: list[str], gap: str, subject: str) -> None:
    base = strip_prefixes(subject)
    assert strip_prefixes(gap.join([*chain, base])) == base
    assert strip_prefixes(base) == base


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Drucker\r\nBcc: alle@example.com", "Drucker Bcc: alle@example.com"),
        ("Drucker\nX-Injected: 1", "Drucker X-Injected: 1"),
        ("Null\x00byte\x1b[31m", "Null byte [31m"),
        ("Zeile\u2028Trenner\u0085", "Zeile Trenner"),
        ("gespiegelt \u202etxt.exe", "gespiegelt txt.exe"),
        ("  viele   Leer\t zeichen  ", "viele Leer zeichen"),
        ("Ümläute und Emoji 🖨️ bleiben", "Ümläute und Emoji 🖨️ bleiben"),
    ],
)
def test_clean_makes_one_printable_line(subject: str, expected: str) -> None:
    assert clean(subject) == expected


def test_clean_cuts_long_subjects_on_a_word_boundary() -> None:
    subject = " ".join(["Wort"] * 100)
    cleaned = clean(subject)
    assert len(cleaned) <= MAX_LENGTH
    assert cleaned.endswith("Wort…")
    assert clean("x" * MAX_LENGTH) == "x" * MAX_LENGTH
    assert clean("x" * (MAX_LENGTH + 1)) == "x" * (MAX_LENGTH - 1) + "…"


@CI
@given(st.text(max_size=400))
def test_cleaned_subject_is_exactly_one_header_field(subject: str) -> None:
    cleaned = clean(subject)
    assert len(cleaned) <= MAX_LENGTH
    assert clean(cleaned) == cleaned
    message = EmailMessage()
    message["Subject"] = cleaned
    message.set_content("Text")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.keys() == message.keys()
    assert " ".join(str(parsed["Subject"]).split()) == cleaned
