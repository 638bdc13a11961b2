"""Case tokens: their format, where they are found, and that wrong ones are never found."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot import casetoken
from mailbot.config import TokenSettings
from mailbot.parse import parse

TOKENS = TokenSettings(prefix="SVC", secret="test-secret-0123456789")
ROTATED = TokenSettings(prefix="SVC", secret="next-secret-9876543210", previous_secrets=(TOKENS.secret,))
FORGOTTEN = TokenSettings(prefix="SVC", secret=ROTATED.secret)

CI = settings(derandomize=True, max_examples=200, deadline=None, database=None)

REPLY_PREFIXES = ("Re:", "RE:", "AW:", "Aw:", "WG:", "Fwd:", "FW:", "Fw:", "SV:", "Antw:", "Antwort:",
                  "Re[2]:", "Re(2):", "Re :")  # fmt: skip
numbers = st.integers(min_value=1, max_value=10**12)


def test_token_reads_prefix_number_check() -> None:
    token = casetoken.make(10042, TOKENS)
    assert re.fullmatch(r"SVC-10042-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}", token)
    assert casetoken.tag(token) == f"[#{token}]"


def test_token_is_stable_and_depends_on_the_secret() -> None:
    assert casetoken.make(10042, TOKENS) == casetoken.make(10042, TOKENS)
    checks = {n: casetoken.make(n, TOKENS)[-4:] for n in range(10000, 10020)}
    assert checks != {n: casetoken.make(n, FORGOTTEN)[-4:] for n in range(10000, 10020)}


@pytest.mark.parametrize("number", [0, -1, 10**18, True])
def test_make_refuses_numbers_that_are_no_case(number: int) -> None:
    with pytest.raises(ValueError):
        casetoken.make(number, TOKENS)


@pytest.mark.parametrize(
    "template",
    [
        "Re: [#{t}] Drucker defekt",
        "AW: WG: [#{t}]",
        "{t}",
        "[# {t} ]",
        "Frage zu Fall {lower}, bitte dringend",
        "[#{spaced}] edited by a human",
        "[#{endash}] after autocorrect",
        "(#{t})",
    ],
)
def test_found_in_every_form_a_reply_carries(template: str) -> None:
    token = casetoken.make(10042, TOKENS)
    subject = template.format(
        t=token, lower=token.lower(), spaced=token.replace("-", " - "), endash=token.replace("-", "\u2013")
    )
    assert casetoken.find(subject, TOKENS) == 10042


@pytest.mark.parametrize(
    "template",
    ["X{t}", "{t}X", "{t}7", "SVC-0{n}-{c}", "SVC{n}-{c}", "SVC-{n}{c}", "SVC-{n}-{c3}", "ABC-{n}-{c}"],
)
def test_not_found_when_glued_to_other_text_or_malformed(template: str) -> None:
    token = casetoken.make(10042, TOKENS)
    check = token.rsplit("-", 1)[1]
    subject = template.format(t=token, n=10042, c=check, c3=check[:3])
    assert casetoken.find(subject, TOKENS) is None


def test_only_the_first_token_shaped_string_is_checked() -> None:
    first, second = casetoken.make(7, TOKENS), casetoken.make(10042, TOKENS)
    forged = "SVC-5-" + ("AAAA" if not first.endswith("AAAA") else "BBBB")
    assert casetoken.find(f"[#{first}] Re: [#{second}] [#{first}]", TOKENS) == 7
    # a wrong first token hides every later one, so a subject full of guesses is one guess
    assert casetoken.find(f"[#{forged}] [#{first}] Re: [#{second}]", TOKENS) is None


def test_other_prefix_is_not_ours() -> None:
    other = TOKENS.model_copy(update={"prefix": "HELP"})
    assert casetoken.find(casetoken.tag(casetoken.make(10042, other)), TOKENS) is None


def test_mentions_anything_shaped_like_a_token_valid_or_not() -> None:
    token = casetoken.make(10042, TOKENS)
    assert casetoken.mentions(f"Re: [#{token}]", TOKENS)
    assert casetoken.mentions("Re: [#SVC-10042-AAAA]", TOKENS)
    assert not casetoken.mentions("Re: Drucker SVC-10042 defekt", TOKENS)
    assert not casetoken.mentions(f"Re: X{token}", TOKENS)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("AW: [#{t}] Drucker defekt", "AW: Drucker defekt"),
        ("Drucker [# {lower} ] defekt", "Drucker defekt"),
        ("Re: [#SVC-5-AAAA] [#{t}]", "Re:"),
        ("Fall {t} ohne Klammern", "Fall {t} ohne Klammern"),
        ("[#12345] anderes System", "[#12345] anderes System"),
    ],
)
def test_strip_removes_our_tags_and_nothing_else(template: str, expected: str) -> None:
    token = casetoken.make(10042, TOKENS)
    subject = template.format(t=token, lower=token.lower())
    assert casetoken.strip(subject, TOKENS) == expected.format(t=token)


# --- properties -------------------------------------------------------------------------------


def _q(data: bytes) -> str:
    safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/"
    return "".join("_" if b == 0x20 else chr(b) if b in safe else f"={b:02X}" for b in data)


def _encoded_words(text: str, charset: str, encoding: str, cuts: list[int]) -> list[str]:
    """RFC 2047 words for `text`, split at character positions `cuts` (mid-token too)."""
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(text)), len(text)]
    words = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        data = text[start:end].encode(charset)
        body = base64.b64encode(data).decode() if encoding == "B" else _q(data)
        words.append(f"=?{charset}?{encoding}?{body}?=")
    return words


@st.composite
def mangled_subjects(draw: st.DrawFn) -> tuple[int, bytes]:
    """(case number, Subject header field value) as a mail client might have written it."""
    number = draw(numbers)
    token = casetoken.make(number, TOKENS)
    shown = draw(st.sampled_from([casetoken.tag(token), casetoken.tag(token).lower(), token,
                                  f"[# {token} ]"]))  # fmt: skip
    mode = draw(st.sampled_from(["plain", "utf-8", "iso-8859-1"]))
    encoding = draw(st.sampled_from("QB"))
    top = {"plain": 0x7E, "utf-8": 0x10FFFF, "iso-8859-1": 0xFF}[mode]
    # "=?" would start an encoded word of its own in an unencoded subject; not what we test here.
    text = st.text(
        st.characters(max_codepoint=top, exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="=?"),
        max_size=30,
    )
    chain = draw(st.lists(st.sampled_from(REPLY_PREFIXES), max_size=6))
    subject = " ".join([*chain, draw(text), shown, draw(text)])
    fold = draw(st.sampled_from([" ", "\r\n ", "\r\n\t"]))
    if mode == "plain":
        words = subject.split(" ")
        return number, " ".join(w + (fold if i % 3 == 2 else "") for i, w in enumerate(words)).encode()
    cuts = draw(st.lists(st.integers(min_value=1, max_value=max(1, len(subject) - 1)), max_size=4))
    return number, fold.join(_encoded_words(subject, mode, encoding, cuts)).encode("ascii")


def _mail(subject: bytes) -> bytes:
    return (
        b"From: Kunde <kunde@example.org>\r\nTo: support@example.com\r\nSubject: " + subject
        + b"\r\nMessage-ID: <prop@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nDanke.\r\n"
    )  # fmt: skip


@CI
@given(mangled_subjects())
def test_mangled_subject_round_trips_through_mail_parsing(case: tuple[int, bytes]) -> None:
    number, subject = case
    assert casetoken.find(parse(_mail(subject)).subject, TOKENS) == number


@CI
@given(st.text(max_size=200))
def test_random_subjects_never_match(subject: str) -> None:
    assert casetoken.find(subject, TOKENS) is None


@CI
@given(numbers, st.text(st.sampled_from(casetoken.ALPHABET), min_size=4, max_size=4))
def test_guessed_check_parts_never_match(number: int, check: str) -> None:
    assert casetoken.find(f"Re: [#SVC-{number}-{check}]", TOKENS) is None


@CI
@given(numbers)
def test_token_made_before_rotation_matches_after_it(number: int) -> None:
    subject = f"AW: {casetoken.tag(casetoken.make(number, TOKENS))} Drucker"
    assert casetoken.find(subject, ROTATED) == number
    assert casetoken.find(subject, FORGOTTEN) is None


@CI
@given(numbers, st.sampled_from([-1, 1]))
def test_number_changed_by_one_never_matches(number: int, change: int) -> None:
    token = casetoken.make(number, TOKENS)
    check = token.rsplit("-", 1)[1]
    assert casetoken.find(f"Re: [#SVC-{number + change}-{check}]", TOKENS) is None
