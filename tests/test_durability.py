"""Nothing is lost, nothing doubles: SIGKILL during intake, relay trouble, storage failure."""

from __future__ import annotations

import smtplib
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine
from sqlmodel import Session, select
from support import Desk, Relay, base_sections, compose, free_port, wait_for
from test_smtp_intake import mail, send

from mailbot.config import Settings
from mailbot.intake_smtp import SmtpIntake
from mailbot.models import Case, InboundSpool, Message, Outbox


# 50 clients: their mails are committed in groups (one transaction for all that arrived together);
# a kill between a group's commit and the 250s loses nothing, a kill before it gave no 250.
@pytest.mark.parametrize(("clients", "per_client"), [(6, 25), pytest.param(50, 4, marks=pytest.mark.slow)])
def test_sigkill_while_clients_send_loses_and_doubles_nothing(
    tmp_path: Path, sqlite_url: str, relay: Relay, daemon_factory, clients: int, per_client: int  # type: ignore[no-untyped-def]
) -> None:
    sections = base_sections(tmp_path, sqlite_url, relay=relay.sections(),
                             policy={"notice_limit": 1000, "domain_hourly_limit": 1000},
                             smtp={"max_connections_per_ip": 100})
    daemon = daemon_factory(sections)
    accepted: set[str] = set()
    unsure: set[str] = set()
    lock = threading.Lock()

    def client(worker: int) -> None:
        for n in range(per_client):
            message_id = f"w{worker}-{n}@customer.test"
            try:
                send(daemon.port, mail(message_id, subject=f"Problem {worker}/{n}"))
                with lock:
                    accepted.add(message_id)
            except (OSError, smtplib.SMTPException):
                with lock:
                    unsure.add(message_id)  # no 250: an MTA would try again

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(accepted) >= 40, timeout=60)
    daemon.kill()
    for thread in threads:
        thread.join(60)
    assert unsure, "the kill should have cut some sessions"
    with Session(daemon.engine()) as db:  # every 250 was said after its mail's commit
        stored = set(db.exec(select(InboundSpool.message_id)).all())
    assert {f"<{m}>" for m in accepted} <= stored

    daemon.start()
    for message_id in sorted(unsure):  # the MTA's retry
        send(daemon.port, mail(message_id, subject="retry"))
    every = accepted | unsure
    engine = daemon.engine()

    def settled() -> bool:
        with Session(engine) as db:
            pending = db.exec(select(InboundSpool).where(InboundSpool.status == "pending")).all()
            queued = db.exec(select(Outbox).where(Outbox.status == "queued")).all()
            return not pending and not queued

    wait_for(settled, timeout=90)
    with Session(engine) as db:
        cases_by_mail: dict[str, set[int]] = defaultdict(set)
        for row in db.exec(select(Message).where(Message.direction == "in")).all():
            cases_by_mail[row.message_id or ""].add(row.case_id)
        case_count = len(db.exec(select(Case)).all())
    assert {f"<{m}>" for m in every} == set(cases_by_mail)
    assert all(len(cases) == 1 for cases in cases_by_mail.values())
    assert case_count == len(every)

    receipts: dict[str, set[str]] = defaultdict(set)
    for recorded in relay.messages():
        receipts[str(recorded.message["In-Reply-To"])].add(str(recorded.message["Message-ID"]))
    assert set(receipts) == {f"<{m}>" for m in every}
    # A kill between the relay's 250 and marking the row sent may resend, but only the same mail.
    assert all(len(ids) == 1 for ids in receipts.values())


def test_relay_4xx_is_retried_and_5xx_fails(tmp_path: Path, sqlite_url: str, relay: Relay, daemon_factory) -> None:  # type: ignore[no-untyped-def]
    relay.refuse_with = "451 4.3.0 busy, try later"
    daemon = daemon_factory(base_sections(tmp_path, sqlite_url, relay=relay.sections()))
    send(daemon.port, mail("temp@customer.test"))
    wait_for(lambda: "event=notice-retry" in daemon.log())
    relay.refuse_with = None
    wait_for(lambda: relay.messages(), timeout=30)

    relay.refuse_with = "550 5.1.1 mailbox unknown"
    send(daemon.port, mail("perm@customer.test", subject="Noch ein Problem"))
    wait_for(lambda: "event=notice-failed" in daemon.log(), timeout=30)
    with Session(daemon.engine()) as db:
        statuses = sorted(row.status for row in db.exec(select(Outbox)).all())
    assert statuses == ["failed", "sent"]


def test_storage_failure_answers_451_not_250(tmp_path: Path) -> None:
    from mailbot import config

    settings: Settings = config.parse(base_sections(tmp_path, "sqlite://"), tmp_path / "config.toml")
    unreachable = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    intake = SmtpIntake(unreachable, lambda: settings, lambda _id: None)
    controller = Controller(intake, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(controller.port, mail("lost@customer.test"))
        assert refused.value.smtp_code == 451
        assert b"Traceback" not in refused.value.smtp_error
    finally:
        controller.stop()


@pytest.mark.slow
def test_mail_that_keeps_failing_is_quarantined_and_blocks_nothing(
    tmp_path: Path, sqlite_url: str, relay: Relay, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    # A template folder without the rich_text notice makes that mail fail on every attempt.
    templates = tmp_path / "templates"
    for language in ("de", "en"):
        (templates / language).mkdir(parents=True)
        for name in ("receipt.txt.j2", "reply_receipt.txt.j2", "_dropped.j2"):  # the receipts include _dropped
            source = Path(__file__).parents[1] / "templates" / language / name
            (templates / language / name).write_text(source.read_text())
    sections = base_sections(tmp_path, sqlite_url, relay=relay.sections(),
                             templates={"dir": str(templates)}, policy={"max_attempts": 3})
    desk = Desk(daemon_factory(sections), relay)
    poison = (Path(__file__).parent / "data" / "policy" / "outlook-tnef-winmail.eml").read_bytes()
    row = desk.send(poison)
    assert (row.status, row.verdict, row.attempts) == ("quarantined", "quarantined", 3)
    assert row.reason and row.reason.startswith("processing failed 3 times: TemplateNotFound")
    assert desk.send(compose()).verdict == "new_case"  # the mail behind it is not held up

    listed = desk.cli("quarantine", "list", "--json")
    assert listed.returncode == 0 and f'"id": {row.id}' in listed.stdout
    raw = desk.cli("quarantine", "show", str(row.id), "--raw").stdout  # the raw mail, as stored
    assert raw == poison.decode().replace("\r\n", "\n")
    head, _, mail = desk.cli("quarantine", "show", str(row.id)).stdout.partition("\n\n")
    assert head.splitlines()[0] == f"Spool {row.id}  quarantined  quarantined: {row.reason}"
    assert "via smtp" in head and "Envelope:   from max@firma.example to service@example.com" in head
    assert "Attempts:   3  last error: TemplateNotFound" in head
    assert mail == raw
    released = desk.cli("quarantine", "release", str(row.id))  # still failing: back in quarantine
    assert released.returncode == 0 and released.stdout.strip() == f"quarantine {row.id}: released, now pending"
    assert desk.cli("quarantine", "delete", str(row.id)).returncode == 1  # pending again, not deletable
    wait_for(lambda: desk.cli("quarantine", "delete", str(row.id)).returncode == 0, timeout=30)
    gone = desk.cli("quarantine", "show", str(row.id))
    assert gone.returncode == 1 and gone.stderr.strip() == f"mailbot: quarantine {row.id}: no such quarantined mail"
