"""Who is asking, and how often: the client address behind a trusted proxy, sliding-window
counters for the page's rate limits and for slowing down link guessing, and form tokens.

Counters live in memory: one process serves the page, and a restart forgetting them costs an
attacker's guesses nothing they could not get by waiting out the window.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

MAX_KEYS = 10000  # distinct addresses tracked at once; beyond that the stalest are forgotten
MAX_PER_KEY = 1000  # times kept per key: enough to see any configured limit reached


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last address in
    X-Forwarded-For that is not a trusted proxy (the left part of the header is the client's say)."""
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, trusted):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _trusted(hop, trusted):
            return hop if _valid(hop) else address
    return address


def form_token(secret: str, nonce: str, number: int) -> str:
    """The CSRF token of case `number`'s forms for the browser holding cookie `nonce`.

    The cookie is SameSite=Strict, so a form posted from another site arrives without it and
    its token cannot match; the token is bound to the case, so one page's form cannot act on another.
    """
    return hmac.digest(secret.encode(), f"form:{nonce}:{number}".encode(), "sha256").hex()[:32]


def _valid(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(text: str, trusted: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in trusted)


class Window:
    """How many times each key was counted within the last `seconds` (monotonic clock)."""

    def __init__(self) -> None:
        self.hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float, seconds: float) -> deque[float]:
        times = self.hits.get(key, deque(maxlen=MAX_PER_KEY))
        while times and times[0] <= now - seconds:
            times.popleft()
        return times

    def count(self, key: str, now: float, seconds: float) -> int:
        return len(self._recent(key, now, seconds))

    def add(self, key: str, now: float, seconds: float) -> None:
        times = self._recent(key, now, seconds)
        times.append(now)
        self.hits.pop(key, None)
        self.hits[key] = times  # most recently used last, so the stalest go first
        while len(self.hits) > MAX_KEYS:
            del self.hits[next(iter(self.hits))]
