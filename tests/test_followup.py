"""`[policy] subject_followup_days`: a new mail "Re: <old subject>" without token or thread
headers joins the sender's own open, recently active case with that subject, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from support import base_sections, compose, write_config
from test_checks_rules import ENVELOPE
from test_status import Office

from mailbot import config, db, pipeline
from mailbot.judge import judge
from mailbot.models import Case, utcnow


def office_with(tmp_path: Path, db_url: str, days: int) -> Office:
    sections = base_sections(tmp_path, db_url, policy={"subject_followup_days": days})
    path = write_config(tmp_path / "config.toml", sections)
    settings = config.load(path)
    return Office(path, settings, db.make_engine(settings.database.url))


@pytest.fixture
def office(tmp_path: Path, db_url: str) -> Iterator[Office]:
    made = office_with(tmp_path, db_url, 7)
    yield made
    made.engine.dispose()


def deliver(office: Office, **fields: str) -> pipeline.Outcome:
    outcome, _ = office.act(lambda ctx: pipeline.act(ctx, judge(compose(**fields), ENVELOPE, ctx.settings)))
    return outcome


def test_a_follow_up_by_subject_joins_the_senders_open_case(office: Office) -> None:
    number = office.open_case(subject="Drucker druckt nicht")
    joined = deliver(office, subject="AW: [EXTERN] drucker  druckt NICHT")
    assert (joined.verdict, joined.case, joined.trace[-3:]) == ("reply", number, ["match_subject", "participant",
                                                                                  "case_open"])
    stranger = deliver(office, subject="Re: Drucker druckt nicht", sender="fremd@other.test")
    assert stranger.verdict == "new_case" and stranger.case != number
    other_topic = deliver(office, subject="Re: Scanner scannt nicht")
    assert other_topic.verdict == "new_case"


def test_never_a_closed_or_a_stale_case(office: Office) -> None:
    closed = office.open_case(subject="Drucker druckt nicht")
    stale = office.open_case(subject="Scanner scannt nicht")
    with db.session(office.engine) as session:
        session.exec(select(Case).where(Case.number == closed)).one().status = "closed"
        session.exec(select(Case).where(Case.number == stale)).one().updated = utcnow() - timedelta(days=8)
    assert deliver(office, subject="Re: Drucker druckt nicht").case not in (closed, None)
    assert deliver(office, subject="Re: Scanner scannt nicht").case not in (stale, None)


def test_off_by_default(tmp_path: Path, sqlite_url: str) -> None:
    office = office_with(tmp_path, sqlite_url, 0)
    number = office.open_case(subject="Drucker druckt nicht")
    again = deliver(office, subject="Re: Drucker druckt nicht")
    assert again.verdict == "new_case" and again.case != number and "match_none" in again.trace
    office.engine.dispose()
    assert config.PolicySettings().subject_followup_days == 0
