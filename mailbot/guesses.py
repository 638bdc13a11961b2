"""Token guessing: count failed token checks per sender and per client IP, and past a limit
match that sender's mail by thread headers only.

A failed check is a token-shaped subject that did not bring the mail into its case: a wrong
check part, or a real token quoted by someone not on the case (both get the same answer, see
`routing`). The answers already tell a guesser nothing; the limit makes guessing slow as well,
and its event tells the operator someone is trying.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from mailbot.cases import Context
from mailbot.logs import event
from mailbot.mail import ParsedMail
from mailbot.models import TokenFailure, utcnow


def _peer(ctx: Context) -> str | None:
    return ctx.envelope.peer if ctx.envelope is not None else None


def limited(ctx: Context, mail: ParsedMail) -> bool:
    """Whether this sender or client IP has used up its failed token checks (logged when so)."""
    security = ctx.settings.security
    recent = col(TokenFailure.created) >= utcnow() - timedelta(minutes=security.token_failure_window_minutes)
    peer = _peer(ctx)
    by_sender = ctx.db.exec(select(func.count()).where(recent, TokenFailure.sender == mail.from_addr)).one()
    by_peer = ctx.db.exec(select(func.count()).where(recent, TokenFailure.peer == peer)).one() if peer else 0
    if max(by_sender, by_peer) < security.token_failure_limit:
        return False
    if not ctx.dry_run:
        event("token-checks-limited", logging.WARNING, spool=ctx.spool_id, sender=mail.from_addr, peer=peer,
              by_sender=by_sender, by_peer=by_peer, limit=security.token_failure_limit)
    return True


def record_failure(ctx: Context, mail: ParsedMail, trace: list[str]) -> None:
    ctx.db.add(TokenFailure(sender=mail.from_addr, peer=_peer(ctx)))
    trace.append("token_failed")
