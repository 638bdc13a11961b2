"""Change a case's status and tell the customer side, in the caller's transaction.

One function for every way a status changes (`mailbot case status|close|reopen`, an agent's
`#status` line), so the status mail can never be forgotten on one path: the seed support pages
promise "Sobald sich ein Mitarbeiter mit Deinem Anliegen beschäftigt, wirst Du über eine
automatisierte E-Mail über den veränderten Status Deines Tickets informiert" (seed 003), and
"Änderungen ... sind mit der automatischen E-Mail ... dokumentiert" (seed 004). Only a change the
agent marks `silent` (an internal step, e.g. waiting on a supplier) sends nothing.
"""

from __future__ import annotations

from typing import Literal, get_args

from mailbot.cases import Context, customer_side, send
from mailbot.logs import event
from mailbot.models import Case, utcnow

Status = Literal["new", "open", "waiting", "resolved", "closed"]
STATUSES: tuple[str, ...] = get_args(Status)


def change_status(ctx: Context, case: Case, status: str, *, silent: bool = False, actor: str) -> bool:
    """Set `status` and queue the status mail (unless `silent`); False if it already was."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    previous = case.status
    if status == previous:
        return False
    now = utcnow()
    case.status, case.updated = status, now
    case.closed_at = now if status == "closed" else None
    ctx.db.add(case)
    if not ctx.dry_run:
        event("status-changed", case=case.number, status=status, previous=previous, actor=actor,
              silent=silent or None, spool=ctx.spool_id)
    if not silent:
        send(ctx, "status_changed", customer_side(ctx, case), {"status": status, "previous_status": previous},
             case=case, answering=None)
    return True
