"""What the pipeline decided about one mail, and why.

A `reason` names the notice template that tells the sender (templates/<lang>/<reason>.txt.j2),
so adding a rejection reason means adding one template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

VerdictKind = Literal["new_case", "reply", "rejected", "ignored", "quarantined"]


@dataclass(frozen=True)
class Dropped:
    """A file left out of an accepted mail (`[policy] disallowed_attachments = "drop_file"`).

    `reason` is "type" (not an allowed type), "zip_count" (one ZIP too many) or "zip" (a ZIP
    that failed its checks, `detail` says which); the receipt turns it into words.
    """

    index: int  # Part.index of the file
    name: str  # the file name made harmless and short (notices.attachment_name)
    detected_type: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Accept:
    """The mail passes the content rules; matching decides new case or reply. `dropped` files
    are left out of it: not stored, not relayed, listed in the receipt."""

    dropped: tuple[Dropped, ...] = ()


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
