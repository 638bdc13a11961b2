"""`mailbot run` with IMAP accounts, against a private Dovecot and the recording relay:
a mail appended to the mailbox becomes a case and a receipt, a SIGKILL between the spool
commit and the MOVE costs no second case, and a wrong password leaves SMTP working.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dovecot import Dovecot, mail, running_dovecot
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from support import DaemonProcess, Relay, base_sections, free_port, wait_for, write_config

from mailbot.models import Case, InboundSpool

Start = Callable[..., DaemonProcess]


@pytest.fixture
def server() -> Iterator[Dovecot]:
    with running_dovecot() as dovecot:
        yield dovecot


@pytest.fixture
def start(tmp_path: Path, relay: Relay, daemon_factory: Callable[..., DaemonProcess]) -> Start:
    """Start `mailbot run` with IMAP accounts ([[imap.accounts]] tables) and the recording relay."""

    def make(*accounts: dict[str, Any]) -> DaemonProcess:
        sections = base_sections(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}", relay=relay.sections())
        return daemon_factory(sections, accounts=accounts)

    return make


def account(server: Dovecot, **overrides: Any) -> dict[str, Any]:
    return {"name": "support", "host": server.host, "port": server.port, "tls": "none",
            "username": server.user, "password": server.password, "poll_interval": 600.0} | overrides


def count(engine: Engine, table: type[Case] | type[InboundSpool]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def test_appended_mail_becomes_case_and_receipt_within_seconds_by_idle(
    server: Dovecot, relay: Relay, start: Start
) -> None:
    daemon = start(account(server))
    wait_for(lambda: "event=imap-idle" in daemon.log() or "event=imap-connected" in daemon.log())
    appended = time.monotonic()
    server.append(mail(1))
    wait_for(lambda: server.uids("Processed"), timeout=10)
    assert time.monotonic() - appended < 5  # poll_interval is 600 s: only IDLE is this quick
    receipt = wait_for(relay.messages, timeout=20)[0]
    assert receipt.rcpt_tos == ["alice@example.org"]
    assert receipt.message["Subject"].endswith("Printer broken 1")
    assert server.uids("INBOX") == []
    assert count(daemon.engine(), Case) == 1
    assert daemon.stop() == 0


def test_sigkill_between_commit_and_move_then_restart_gives_no_second_case(
    server: Dovecot, relay: Relay, start: Start
) -> None:
    total = 80
    server.drop(mail(n, sender=f"c{n}@customer.test") for n in range(total))
    daemon = start(account(server, batch_size=total))  # one batch: nothing moves until all are in
    engine = daemon.engine()
    wait_for(lambda: count(engine, Case) >= 10, timeout=60)  # processing the batch
    daemon.kill()
    # Stored (group commit: likely the whole fetched batch at once), some processed, none moved.
    assert server.uids("Processed") == [] and 10 <= count(engine, InboundSpool) <= total
    daemon.start()
    wait_for(lambda: server.uids("INBOX") == [], timeout=120, interval=0.5)
    assert len(server.uids("Processed")) == total
    assert count(engine, InboundSpool) == total and count(engine, Case) == total
    wait_for(lambda: len(relay.messages()) >= total, timeout=60)
    # One receipt per mail. The kill may also hit the outbox after the relay's 250 and before
    # "sent" was recorded: that one receipt goes out again, with the same Message-ID.
    receipts = {(r.message["In-Reply-To"], r.message["Message-ID"]) for r in relay.messages()}
    assert len(receipts) == len({reply_to for reply_to, _ in receipts}) == total
    assert len(relay.messages()) <= total + 1
    assert daemon.stop() == 0
    engine.dispose()


def test_wrong_password_is_logged_clearly_and_smtp_keeps_working(
    server: Dovecot, relay: Relay, start: Start
) -> None:
    daemon = start(account(server, password="wrong"))
    wait_for(lambda: "event=imap-login-failed" in daemon.log(), timeout=15)
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.sendmail("kunde@customer.test", ["service@example.com"],
                        mail(2, sender="kunde@customer.test", to="service@example.com"))
    wait_for(relay.messages, timeout=20)
    (line,) = [x for x in daemon.log().splitlines() if "event=imap-login-failed" in x]
    assert "level=error" in line and "account=support" in line and "AUTHENTICATIONFAILED" in line
    assert daemon.stop() == 0


def test_check_config_connect_logs_in_everywhere(tmp_path: Path, server: Dovecot, relay: Relay) -> None:
    def check(*accounts: dict[str, Any], relay_port: int = relay.port) -> subprocess.CompletedProcess[str]:
        sections = base_sections(tmp_path, "sqlite://", relay=relay.sections() | {"port": relay_port})
        path = write_config(tmp_path / "connect.toml", sections, accounts)
        return subprocess.run([sys.executable, "-m", "mailbot", "--config", str(path), "check-config", "--connect"],
                              capture_output=True, text=True, timeout=120)

    good = check(account(server))
    expected = f"{tmp_path / 'connect.toml'}: ok (relay and IMAP accounts answer)"
    assert (good.returncode, good.stdout.strip()) == (0, expected)
    bad = check(account(server), account(server, name="other", password="wrong"), relay_port=free_port())
    assert bad.returncode == 2
    lines = bad.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["relay 127.0.0.1", f"imap account other ({server.host}"]
    assert "Traceback" not in bad.stderr


def test_mail_from_a_trusted_account_acts_as_the_agent_it_is_from(
    tmp_path: Path, server: Dovecot, relay: Relay, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """`trusted = true`: an internal mailbox only staff can deliver to counts as authenticated."""
    sections = base_sections(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}", relay=relay.sections(),
                             agents={"addresses": ["anna@example.com"]})
    daemon = daemon_factory(sections, accounts=[account(server, trusted=True, poll_interval=0.5, idle=False)])
    server.append(mail(1))
    receipt = wait_for(relay.messages, timeout=20)[0].message
    answer = mail(2, sender="anna@example.com").replace(b"Subject: Printer broken 2",
                                                        f"Subject: Re: {receipt['Subject']}".encode())
    server.append(answer.replace(b"Message number 2.", b"Bitte neu starten."))
    relayed = wait_for(lambda: relay.messages()[1:], timeout=20)[0]
    assert relayed.rcpt_tos == ["alice@example.org"] and relayed.message["X-Mailbot-Notice"] == "agent_reply"
    with Session(daemon.engine()) as session:
        rows = session.exec(select(InboundSpool.auth).order_by(InboundSpool.id)).all()
    assert rows == ["pass: trusted imap account support"] * 2
