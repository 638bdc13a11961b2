"""Machine mail is never answered, but what it says is kept: an out-of-office on the case,
a delivery failure on the outbox row of the mail that bounced."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select
from support import Desk, Relay, base_sections, compose

from mailbot.models import Outbox


def outbox_rows(desk: Desk) -> int:
    with Session(desk.daemon.engine()) as db:
        return len(db.exec(select(Outbox)).all())


def test_out_of_office_is_noted_on_the_case_without_reopening_it(
    tmp_path: Path, db_url: str, relay: Relay, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    desk = Desk(daemon_factory(base_sections(tmp_path, db_url, relay=relay.sections())), relay)
    number = desk.send(compose()).case_number
    receipt = desk.mails_to("kunde@customer.test")[0]
    assert desk.cli("case", "close", str(number)).returncode == 0
    queued_before = outbox_rows(desk)
    away = compose(subject=f"Abwesend: {receipt['Subject']}", body="Ich bin bis Montag nicht im Haus.\r\n",
                   headers={"Auto-Submitted": "auto-replied", "In-Reply-To": receipt["Message-ID"]})
    row = desk.send(away)
    assert (row.verdict, row.reason, row.case_number) == ("ignored", "auto_reply", number)
    case = desk.case(number or 0)
    assert case["status"] == "closed"
    assert case["messages"][-1]["text"].startswith("Ich bin bis Montag")
    assert outbox_rows(desk) == queued_before  # nothing answers a robot


def test_delivery_failure_is_recorded_on_the_outbox_row(
    tmp_path: Path, sqlite_url: str, relay: Relay, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    desk = Desk(daemon_factory(base_sections(tmp_path, sqlite_url, relay=relay.sections())), relay)
    desk.send(compose(sender="typo@customer.test"))
    receipt = desk.mails_to("typo@customer.test")[0]
    boundary = "dsn-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nDelivery to typo@customer.test failed.\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; typo@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {receipt['Message-ID']}\r\nSubject: {receipt['Subject']}\r\n"
        f"--{boundary}--\r\n"
    )
    dsn = compose(sender="MAILER-DAEMON@mx.customer.test", subject="Undelivered Mail Returned to Sender", body=body,
                  headers={"MIME-Version": "1.0",
                           "Content-Type": f'multipart/report; report-type=delivery-status; boundary="{boundary}"'})
    row = desk.send(dsn)
    assert (row.verdict, row.reason) == ("ignored", "bounce")
    assert "bounce_recorded" in (row.trace or "")
    with Session(desk.daemon.engine()) as db:
        outbox = db.exec(select(Outbox).where(Outbox.message_id == receipt["Message-ID"])).one()
    assert outbox.bounced_at is not None
    assert outbox.bounce_info == "5.1.1 smtp; 550 5.1.1 user unknown"
    assert len(relay.messages()) == 1


def test_own_notice_coming_back_is_a_loop(tmp_path: Path, sqlite_url: str, relay: Relay, daemon_factory) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(daemon_factory(base_sections(tmp_path, sqlite_url, relay=relay.sections())), relay)
    desk.send(compose(sender="kunde@customer.test"))
    receipt = desk.mails_to("kunde@customer.test")[0]
    bounced_back = receipt.as_bytes().replace(b"Message-ID: <", b"Message-ID: <again-", 1)
    row = desk.send(bounced_back)
    assert (row.verdict, row.reason) == ("ignored", "loop")
    assert len(relay.messages()) == 1
