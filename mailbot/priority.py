"""Case priority (urgent, high, normal, low) and the answer target that follows it.

Set by an agent (`#priority`), the CLI (`case priority`), the customer's callback request on the
case page (urgent), or, where `[priority] from_mail` allows, by the incoming mail itself: the
seed pages let customers "mark a priority" (quisa), but anyone can write `Importance: high`, so a
mail can at most make its case high, never urgent.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, get_args

from mailbot import hours
from mailbot.config import Priority, Settings
from mailbot.logs import event
from mailbot.mail import ParsedMail
from mailbot.models import Case, utcnow

if TYPE_CHECKING:
    from mailbot.cases import Context  # cases uses this module to open a case

LEVELS: tuple[str, ...] = get_args(Priority)


def from_mail(mail: ParsedMail, settings: Settings) -> Priority:
    """high for a mail marked important (header or subject word) where the site allows it."""
    if not settings.priority.from_mail:
        return "normal"
    importance = (mail.header("importance") or "").strip().lower()
    x_priority = (mail.header("x-priority") or "").strip()[:1]
    words = settings.priority.subject_words
    worded = any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", mail.subject, re.IGNORECASE) for word in words)
    return "high" if importance == "high" or x_priority in ("1", "2") or worded else "normal"


def target_hours(settings: Settings, level: str) -> float:
    return next((value for key, value in settings.hours.priority_targets.items() if key == level),
                settings.hours.target_hours)


def due_for(case: Case, settings: Settings) -> datetime:
    """When the first answer is due by the case's priority, counted from its opening."""
    return hours.due_at(case.created, target_hours(settings, case.priority), settings.hours)


def change_priority(ctx: Context, case: Case, level: str, *, actor: str) -> bool:
    """Set the priority and move the answer target with it; False if it already was."""
    if level not in LEVELS:
        raise ValueError(f"unknown priority {level!r}; use one of {', '.join(LEVELS)}")
    previous = case.priority
    if level == previous:
        return False
    case.priority, case.updated = level, utcnow()
    if case.answered_at is None:
        case.answer_due = due_for(case, ctx.settings)
        case.overdue_logged = case.overdue_logged and case.answer_due <= utcnow()
    ctx.db.add(case)
    if not ctx.dry_run:
        event("priority-changed", case=case.number, priority=level, previous=previous, actor=actor,
              spool=ctx.spool_id)
    return True
