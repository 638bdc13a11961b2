"""Answer targets: which cases still wait for a first agent answer past `Case.answer_due`.

Support promises an answer within business hours ("Eine Reaktion auf Dein Ticket garantieren wir
i.d.R. innerhalb von 8h während der Supportzeiten", seed 003). `open_case` sets the due time and
the first agent answer sets `answered_at`; the daemon calls `log_overdue` every minute so each
miss is logged once (`case-overdue`), and `mailbot cases --overdue` lists them all.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ColumnElement, and_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailbot.logs import event
from mailbot.models import Case, utcnow

# A case resolved, closed or waiting for the customer owes nobody a first answer.
OWED_STATUSES = ("new", "open")


def condition(now: datetime) -> ColumnElement[bool]:
    """The SQL test for an overdue case at `now`."""
    return and_(
        col(Case.answered_at).is_(None),
        col(Case.answer_due) < now,
        col(Case.status).in_(OWED_STATUSES),
    )


def log_overdue(engine: Engine) -> int:
    """Log each newly overdue case once and mark it; returns how many were logged."""
    with Session(engine, expire_on_commit=False) as db:
        query = select(Case).where(condition(utcnow()), col(Case.overdue_logged).is_(False)).order_by(col(Case.id))
        cases = list(db.exec(query).all())
        for case in cases:
            case.overdue_logged = True
            db.add(case)
        db.commit()
    for case in cases:
        event("case-overdue", logging.WARNING, case=case.number, due=case.answer_due, requester=case.requester,
              status=case.status)
    return len(cases)
