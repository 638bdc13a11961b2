"""Make and find case tokens: the one place that knows their format, in both directions.

A token is `<PREFIX>-<number>-<check>`, e.g. `SVC-10042-K7MQ`, and a subject carries it as
`[#SVC-10042-K7MQ]`. The check part is HMAC-SHA256(secret, "<PREFIX>-<number>") rendered in an
alphabet without 0/O/1/I/L/U, so it reads and types back without doubt.

Why 4 check characters, not the 2 of the issue's example: the check part is the only thing that
stops a mistyped, edited or guessed number from landing in someone else's case (customers are
asked to keep the subject, seed 002, but some will edit it). With a 30-character alphabet,
2 characters let 1 in 900 wrong numbers through, 4 characters 1 in 810,000. Every accepted
previous secret multiplies that chance, so during a rotation 2 characters would fall to 1 in 450.
A fifth character would add little a person could still read at a glance.

Finding is forgiving where the check part makes it safe: any case, with or without `[#...]`,
spaces around the dashes ("[# SVC - 10042 - K7MQ ]"), en dashes from autocorrect. A wrong
check part is never "corrected": it is simply not a token.
"""

from __future__ import annotations

import hmac
import re
from functools import lru_cache

from mailbot.config import TokenSettings

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_LENGTH = 4
MAX_DIGITS = 18  # any case number fits an SQL BIGINT


def _check(number: int, prefix: str, secret: str) -> str:
    digest = hmac.digest(secret.encode(), f"{prefix}-{number}".encode(), "sha256")
    value = int.from_bytes(digest[:8], "big")  # 2**64 over 30**4 values: bias below 1e-13
    base = len(ALPHABET)
    return "".join(ALPHABET[value // base**i % base] for i in range(CHECK_LENGTH))


def make(number: int, settings: TokenSettings) -> str:
    """The token text for case `number` under the current secret, e.g. `SVC-10042-K7MQ`."""
    if isinstance(number, bool) or not 1 <= number < 10**MAX_DIGITS:
        raise ValueError(f"case number out of range: {number!r}")
    return f"{settings.prefix}-{number}-{_check(number, settings.prefix, settings.secret)}"


def tag(token: str) -> str:
    """How a subject carries a token: `[#SVC-10042-K7MQ]`."""
    return f"[#{token}]"


@lru_cache(maxsize=8)
def _pattern(prefix: str) -> re.Pattern[str]:
    dash = r"\s*[-\u2010\u2011\u2013]\s*"
    return re.compile(
        rf"(?<![A-Z0-9]){re.escape(prefix)}{dash}([1-9][0-9]{{0,{MAX_DIGITS - 1}}}){dash}"
        rf"([{ALPHABET}]{{{CHECK_LENGTH}}})(?![A-Z0-9])",
        re.IGNORECASE | re.ASCII,
    )


def find(subject: str, settings: TokenSettings) -> int | None:
    """The case number of the first token-shaped string in `subject`, if its check part is valid.

    Only the first one is ever checked: a subject packed with guesses (2,183 fit in one) costs
    one guess, not thousands, and answers the same whether a later one was right or not. The
    first is the one a reply keeps at the front ("Re: [#SVC-1-X] Fwd: [#SVC-2-Y]").
    """
    match = _pattern(settings.prefix).search(subject)
    if match is None:
        return None
    number, check = int(match[1]), match[2].upper()
    secrets = (settings.secret, *settings.previous_secrets)
    valid = any(hmac.compare_digest(check, _check(number, settings.prefix, s)) for s in secrets)
    return number if valid else None


def mentions(subject: str, settings: TokenSettings) -> bool:
    """Whether `subject` carries something shaped like a token, valid or not.

    A mistyped or foreign token is worth telling apart from no token at all: the site may
    prefer to answer it (reason `unknown_token`) rather than open a new case.
    """
    return _pattern(settings.prefix).search(subject) is not None


@lru_cache(maxsize=8)
def _tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"\[\s*#?\s*(?:{_pattern(prefix).pattern})\s*\]", re.IGNORECASE | re.ASCII)


def strip(subject: str, settings: TokenSettings) -> str:
    """The subject without any `[#TOKEN]` tag, valid or not (for a newly opened case's subject).

    A stale or mistyped tag must not be carried into the new case, where it would sit beside
    the new case's own tag in every notice.
    """
    return " ".join(_tag_pattern(settings.prefix).sub(" ", subject).split())
