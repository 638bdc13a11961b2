"""Status changes and answer targets against a real database (both backends): the status mail
is queued with the change in one transaction, silent changes send nothing, and a case past its
answer target without an agent answer is logged once and listed by `mailbot cases --overdue`.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support import ROOT, DaemonProcess, base_sections, compose, wait_for, write_config

from mailbot import cases, config, db, overdue, views
from mailbot.cases import Context
from mailbot.config import Settings
from mailbot.files import FileStore
from mailbot.models import Case, Outbox, utcnow
from mailbot.notices import Notices
from mailbot.parse import parse
from mailbot.status import change_status

T = TypeVar("T")


@dataclass
class Office:
    """A configured mailbot without its daemon: the database, and the CLI as a subprocess."""

    config_path: Path
    settings: Settings
    engine: Engine

    def act(self, action: Callable[[Context], T]) -> tuple[T, list[dict[str, str]]]:
        """Run `action` in one transaction; returns its result and the notices it queued."""
        with db.session(self.engine) as session:
            files = FileStore(self.settings.storage.attachments_dir)
            ctx = Context(session, self.settings, Notices(self.settings), files, spool_id=None)
            return action(ctx), ctx.queued

    def open_case(self, **fields: Any) -> int:
        number, _ = self.act(lambda ctx: cases.open_case(ctx, parse(compose(**fields))).number)
        assert number is not None
        return number

    def on_case(self, number: int, action: Callable[[Context, Case], T]) -> tuple[T, list[dict[str, str]]]:
        return self.act(lambda ctx: action(ctx, ctx.db.exec(select(Case).where(Case.number == number)).one()))

    def outbox(self, kind: str) -> list[Message]:
        with db.session(self.engine) as session:
            rows = session.exec(select(Outbox).where(Outbox.kind == kind).order_by(col(Outbox.id))).all()
            return [message_from_bytes(row.raw, policy=default_policy) for row in rows]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mailbot", "--config", str(self.config_path), *args],
                              capture_output=True, text=True, cwd=str(ROOT), timeout=60)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The fields of each `name` event logged so far."""
    return [getattr(r, "fields", {}) for r in caplog.records if getattr(r, "event", None) == name]


def make_office(tmp_path: Path, db_url: str) -> Office:
    """A config file on `db_url` with one agent, anna@example.com, where the opening mail's Cc
    joins the case (these tests are about status mail, not sender authentication)."""
    sections = base_sections(tmp_path, db_url, agents={"addresses": ["anna@example.com"]},
                             policy={"cc_participants": "opening_mail"})
    path = write_config(tmp_path / "config.toml", sections)
    settings = config.load(path)
    return Office(path, settings, db.make_engine(settings.database.url))


@pytest.fixture
def office(tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[Office]:
    caplog.set_level(logging.INFO, logger="mailbot")
    made = make_office(tmp_path, db_url)
    yield made
    made.engine.dispose()


def test_status_change_mails_the_customer_side_threaded(office: Office, caplog: pytest.LogCaptureFixture) -> None:
    number = office.open_case(message_id="open-1", headers={"Cc": "kollegin@customer.test, anna@example.com"})
    changed, queued = office.on_case(number, lambda ctx, case: change_status(ctx, case, "waiting", actor="test"))
    assert changed
    # The agent in copy joined as an agent: customer-side mail never goes back to staff.
    assert queued == [{"kind": "status_changed", "to": address}
                      for address in ("kunde@customer.test", "kollegin@customer.test")]
    mail = office.outbox("status_changed")[0]
    assert mail["In-Reply-To"] == "<open-1@customer.test>"
    assert str(mail["Subject"]).endswith("Wir benötigen Ihre Rückmeldung: Drucker druckt nicht")
    assert "Neuer Status: wartet auf Ihre Rückmeldung (bisher: eingegangen)" in mail.get_content()
    assert events(caplog, "status-changed") == [{"case": number, "status": "waiting", "previous": "new",
                                                 "actor": "test"}]


def test_closing_stamps_closed_at_and_reopening_clears_it(office: Office) -> None:
    number = office.open_case()
    closed_at, _ = office.on_case(number, lambda ctx, case: change_status(ctx, case, "closed", actor="t")
                                  and case.closed_at)
    assert closed_at is not None
    reopened, _ = office.on_case(number, lambda ctx, case: change_status(ctx, case, "open", actor="t")
                                 and (case.status, case.closed_at))
    assert reopened == ("open", None)
    assert len(office.outbox("status_changed")) == 2


def test_silent_and_repeated_changes_send_nothing(office: Office, caplog: pytest.LogCaptureFixture) -> None:
    number = office.open_case()
    silent, queued = office.on_case(number, lambda ctx, case: change_status(ctx, case, "waiting", silent=True,
                                                                            actor="t"))
    assert silent and queued == []
    assert events(caplog, "status-changed")[0]["silent"] is True
    again, queued = office.on_case(number, lambda ctx, case: change_status(ctx, case, "waiting", actor="t"))
    assert not again and queued == []
    assert office.outbox("status_changed") == []
    with pytest.raises(ValueError, match="unknown status 'archived'"):
        office.on_case(number, lambda ctx, case: change_status(ctx, case, "archived", actor="t"))


def test_status_and_its_mail_roll_back_together(office: Office) -> None:
    number = office.open_case()

    def change_then_fail(ctx: Context, case: Case) -> None:
        change_status(ctx, case, "resolved", actor="t")
        ctx.db.flush()
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        office.on_case(number, change_then_fail)
    assert views.show_case(office.engine, number)["status"] == "new"  # type: ignore[index]
    assert office.outbox("status_changed") == []


def _make_overdue(office: Office) -> tuple[int, int, int]:
    """Three cases past their target: one unanswered (overdue), one answered, one closed."""
    late, answered, closed = (office.open_case() for _ in range(3))

    def backdate(ctx: Context, case: Case) -> None:
        case.answer_due = utcnow() - timedelta(minutes=1)
        case.answered_at = utcnow() if case.number == answered else None
        case.status = "closed" if case.number == closed else case.status
        ctx.db.add(case)

    for number in (late, answered, closed):
        office.on_case(number, backdate)
    return late, answered, closed


def test_overdue_case_is_logged_once_and_listed(office: Office, caplog: pytest.LogCaptureFixture) -> None:
    late, _, _ = _make_overdue(office)
    office.open_case()  # due in the future
    assert overdue.log_overdue(office.engine) == 1
    assert [fields["case"] for fields in events(caplog, "case-overdue")] == [late]
    assert overdue.log_overdue(office.engine) == 0

    listed = office.cli("cases", "--overdue", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["number"], r["answered_at"]) for r in rows] == [(late, None)]
    assert rows[0]["answer_due"] < utcnow().isoformat()


def test_daemon_logs_overdue_cases_from_its_scheduler(office: Office, tmp_path: Path) -> None:
    late, _, _ = _make_overdue(office)
    daemon = DaemonProcess(office.config_path, tmp_path / "mailbot.log").start()
    try:
        wait_for(lambda: "event=case-overdue" in daemon.log())
        assert f"case={late} " in daemon.log() and daemon.log().count("event=case-overdue") == 1
    finally:
        daemon.close()
    assert views.list_cases(office.engine, overdue_only=True)[0]["number"] == late
    with db.session(office.engine) as session:
        assert session.exec(select(Case.overdue_logged).where(Case.number == late)).one()
