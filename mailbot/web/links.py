"""Signed case links, `{base_url}/c/<number>/<signature>`: the customer's key to the case page.

mailbot has no accounts, so the link itself is the secret. Unlike the case token (4 characters a
person can type back), it must be unguessable: HMAC-SHA256 over the case number and a per-case
salt under `tokens.secret`, cut to 144 bits. `case relink` replaces the salt, which invalidates
every link sent so far; a secret moved to `tokens.previous_secrets` keeps its links working.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from mailbot.config import Settings, TokenSettings
from mailbot.models import Case

SIGNATURE_BYTES = 18  # 144 bits, 24 URL-safe characters without padding


def new_salt() -> str:
    return secrets.token_urlsafe(12)


def signature(number: int, salt: str, secret: str) -> str:
    digest = hmac.digest(secret.encode(), f"case-page:{number}:{salt}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode()


def verify(number: int, salt: str, given: str, tokens: TokenSettings) -> bool:
    """Whether `given` signs case `number` under the current or a previous secret (constant time)."""
    candidate = given.encode()
    return any(hmac.compare_digest(candidate, signature(number, salt, secret).encode())
               for secret in (tokens.secret, *tokens.previous_secrets))


def url(settings: Settings, case: Case) -> str:
    """The case page link under the current secret."""
    if case.number is None:
        raise ValueError("case has no number yet: flush it first")
    sig = signature(case.number, case.link_salt, settings.tokens.secret)
    return f"{settings.web.base_url.rstrip('/')}/c/{case.number}/{sig}"


def in_mail(settings: Settings, case: Case | None) -> str | None:
    """The link customer-side mail carries, or None where no page is served."""
    return url(settings, case) if case is not None and settings.web.enabled else None
