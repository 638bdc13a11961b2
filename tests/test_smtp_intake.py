"""The daemon over real sockets: smtplib talks to `mailbot run`, a recording aiosmtpd plays the relay."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from sqlmodel import Session, select
from support import Relay, base_sections, wait_for

from mailbot.models import Case, InboundSpool, Outbox


def mail(message_id: str, subject: str = "Drucker druckt nicht", sender: str = "kunde@customer.test",
         extra: str = "") -> bytes:
    return (
        f"From: Kunde <{sender}>\r\nTo: service@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n{extra}\r\n"
        "Hallo,\r\nder Drucker im 2. Stock druckt nicht.\r\n"
    ).encode()


def send(port: int, raw: bytes, rcpt: str = "service@example.com", sender: str = "kunde@customer.test") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, [rcpt], raw)


@pytest.fixture
def running(tmp_path: Path, db_url: str, relay: Relay, daemon_factory):  # type: ignore[no-untyped-def]
    return daemon_factory(base_sections(tmp_path, db_url, relay=relay.sections()))


def test_new_mail_opens_case_and_relays_a_threaded_receipt(running, relay: Relay) -> None:  # type: ignore[no-untyped-def]
    send(running.port, mail("first@customer.test"))
    receipt = wait_for(lambda: relay.messages())[0]
    message = receipt.message
    assert receipt.rcpt_tos == ["kunde@customer.test"]
    assert receipt.mail_from == "noreply@example.com"
    assert message["From"].addresses[0].addr_spec == "noreply@example.com"
    assert message["Subject"].startswith("[#SVC-10001-")
    assert message["Subject"].endswith("Ihre Anfrage: Drucker druckt nicht")
    assert message["In-Reply-To"] == "<first@customer.test>"
    assert "<first@customer.test>" in message["References"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Message-ID"] and message["Date"]
    assert message["Reply-To"].addresses[0].addr_spec == "service@example.com"  # answers reach the case
    body = message.get_content()
    assert "10001" in body and "Eine Antwort erhalten Sie voraussichtlich bis " in body  # business-hours target
    with Session(running.engine()) as db:
        case = db.exec(select(Case)).one()
        assert case.number == 10001 and case.requester == "kunde@customer.test"
        assert case.token and case.token in message["Subject"]
        assert db.exec(select(Outbox)).one().status == "sent"


def test_recipient_other_than_service_address_is_refused(running) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        client.ehlo()
        client.mail("kunde@customer.test")
        code, reply = client.rcpt("someone@elsewhere.test")
        assert code == 550 and reply.startswith(b"5.1.1")
        code, _ = client.rcpt("SERVICE@example.com")
        assert code == 250


def test_size_is_advertised_and_enforced(tmp_path: Path, sqlite_url: str, daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(base_sections(tmp_path, sqlite_url, smtp={"max_message_size": 4096}))
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("size") and client.esmtp_features["size"] == "4096"
        big = mail("big@x") + b"x" * 8000 + b"\r\n"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # declared with MAIL FROM SIZE=
            client.sendmail("kunde@customer.test", ["service@example.com"], big)
        assert refused.value.smtp_code == 552
        client.mail("kunde@customer.test")  # undeclared: refused after DATA
        client.rcpt("service@example.com")
        code, _ = client.data(big)
        assert code == 552


def test_mta_retry_with_same_message_id_opens_one_case(running, relay: Relay) -> None:  # type: ignore[no-untyped-def]
    send(running.port, mail("retry@customer.test"))
    send(running.port, mail("retry@customer.test"))
    send(running.port, mail("other@customer.test", subject="Zweites Problem"))
    wait_for(lambda: len(relay.messages()) == 2)
    with Session(running.engine()) as db:
        assert len(db.exec(select(Case)).all()) == 2
        assert len(db.exec(select(InboundSpool)).all()) == 2


def test_crlf_in_subject_cannot_inject_headers(running, relay: Relay) -> None:  # type: ignore[no-untyped-def]
    # An encoded-word decodes to CR/LF: the naive receipt would gain a "Bcc:" header.
    evil = "=?utf-8?q?Hilfe=0D=0ABcc:_victim@evil.test=0D=0AX-Evil:_1?="
    send(running.port, mail("evil@customer.test", subject=evil))
    receipt = wait_for(lambda: relay.messages())[0]
    assert receipt.rcpt_tos == ["kunde@customer.test"]
    assert receipt.message["Bcc"] is None and receipt.message["X-Evil"] is None
    assert "\n" not in receipt.message["Subject"] and "Hilfe" in receipt.message["Subject"]


def test_sigterm_finishes_work_and_exits_zero(running, relay: Relay) -> None:  # type: ignore[no-untyped-def]
    send(running.port, mail("before-stop@customer.test"))
    assert running.stop() == 0
    assert "event=stopped" in running.log()
    with Session(running.engine()) as db:
        assert db.exec(select(InboundSpool)).one().status in ("done", "pending")


def test_reject_at_smtp_refuses_content_in_the_session(tmp_path: Path, sqlite_url: str, relay: Relay,
                                                       daemon_factory) -> None:  # type: ignore[no-untyped-def]
    sections = base_sections(tmp_path, sqlite_url, relay=relay.sections(), policy={"reject_at_smtp": True})
    daemon = daemon_factory(sections)
    tnef = (Path(__file__).parent / "data" / "policy" / "outlook-tnef-winmail.eml").read_bytes()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(daemon.port, tnef)
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error.startswith(b"5.7.1 Message refused (rich_text)")
    send(daemon.port, mail("fine@customer.test"))  # acceptable mail still gets its 250 and receipt
    wait_for(lambda: relay.messages())
    with Session(daemon.engine()) as db:
        assert [row.message_id for row in db.exec(select(InboundSpool)).all()] == ["<fine@customer.test>"]
