"""What the pipeline decided about one mail, and why.

A `reason` names the notice template that tells the sender (templates/<lang>/<reason>.txt.j2),
so adding a rejection reason means adding one template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

VerdictKind = Literal["new_case", "reply", "rejected", "ignored", "quarantined"]


@dataclass(frozen=True)
class Accept:
    """The mail passes the content rules; matching decides new case or reply."""


@dataclass(frozen=True)
class Reject:
    """Refuse the mail and tell the sender why (`reason` names the notice template)."""

    reason: str
    details: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Ignore:
    """Record the mail and answer nothing (robots, bounces, loops)."""

    reason: str


@dataclass(frozen=True)
class Quarantine:
    """Keep the mail for a human; it could not be judged safely."""

    reason: str


Decision = Accept | Reject | Ignore | Quarantine
