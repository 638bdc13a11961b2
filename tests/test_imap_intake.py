"""The IMAP watcher against a real Dovecot: exactly once, move after commit, IDLE, polling,
reconnects, over-size mail and a wrong password. The watcher runs in-process here; the
daemon-level checks (SIGKILL, the SMTP listener beside it) are in test_imap_daemon.py.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dovecot import FULL_CAPABILITIES, Dovecot, mail, running_dovecot
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from support import base_sections, wait_for, write_config

from mailbot import config, db, inbox, pipeline
from mailbot.config import ImapAccount, Settings
from mailbot.intake_imap import ImapWatcher, envelope_for, source_key
from mailbot.models import Case, InboundSpool, Outbox


@pytest.fixture
def server() -> Iterator[Dovecot]:
    with running_dovecot() as dovecot:
        yield dovecot


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    sections = base_sections(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}", smtp={"max_message_size": 4096})
    return config.parse(sections, tmp_path / "config.toml")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(settings.database.url)
    yield engine
    engine.dispose()


def account_for(server: Dovecot, **overrides: Any) -> ImapAccount:
    values: dict[str, Any] = {"name": "support", "host": server.host, "port": server.port, "tls": "none",
                              "username": server.user, "password": server.password, "poll_interval": 600.0}
    return ImapAccount(**(values | overrides))


@contextlib.contextmanager
def watching(account: ImapAccount, engine: Engine, settings: Settings) -> Iterator[ImapWatcher]:
    watcher = ImapWatcher(account, engine, lambda: settings, lambda _spool_id: None)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop(10)
        assert not watcher.alive


def cases(engine: Engine) -> list[Case]:
    with Session(engine) as session:
        return list(session.exec(select(Case)).all())


def spool(engine: Engine) -> list[InboundSpool]:
    with Session(engine) as session:
        return list(session.exec(select(InboundSpool).order_by(col(InboundSpool.id))).all())


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_new_mail_becomes_a_case_with_receipt_and_is_moved_unseen(
    server: Dovecot, engine: Engine, settings: Settings
) -> None:
    server.append(mail(1))
    with watching(account_for(server), engine, settings):
        wait_for(lambda: server.uids("Processed"), timeout=15)
    assert server.uids("INBOX") == []
    assert len(cases(engine)) == 1
    with Session(engine) as session:
        notices = session.exec(select(Outbox)).all()
        assert [n.recipient for n in notices] == ["alice@example.org"]
    (row,) = spool(engine)
    assert row.status == "done" and row.source == "imap:support"
    assert row.source_key is not None and row.source_key.startswith("imap:support:INBOX:")
    with server.client("Processed") as client:  # fetched with PEEK: still unread for humans
        flags = client.get_flags(client.search("ALL"))
        assert all(b"\\Seen" not in f for f in flags.values())


def test_idle_delivers_within_seconds_and_survives_renewals(
    server: Dovecot, engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailbot")
    with watching(account_for(server, idle_renew_seconds=0.2), engine, settings):
        wait_for(lambda: len(events(caplog, "imap-idle")) >= 3, timeout=10)  # renewed twice
        appended = time.monotonic()
        server.append(mail(1))
        wait_for(lambda: server.uids("Processed"), timeout=5)
        assert time.monotonic() - appended < 5
    assert len(events(caplog, "imap-connected")) == 1


def test_polls_and_copies_when_server_lacks_idle_and_move(engine: Engine, settings: Settings) -> None:
    plain = FULL_CAPABILITIES.replace(" IDLE", "").replace(" MOVE", "")
    with running_dovecot(capabilities=plain) as server, \
            watching(account_for(server, poll_interval=0.2), engine, settings):
        server.append(mail(1))
        server.append(mail(2))
        wait_for(lambda: len(server.uids("Processed")) == 2, timeout=15)
        wait_for(lambda: server.uids("INBOX") == [], timeout=5)  # copied, then expunged
    assert len(cases(engine)) == 2


@pytest.mark.parametrize("processed", [True, False], ids=["crash-before-move", "crash-before-processing"])
def test_mail_stored_before_a_crash_is_moved_without_a_second_case(
    server: Dovecot, engine: Engine, settings: Settings, processed: bool
) -> None:
    """The crash after the spool commit: the spool has the mail, the folder still has it too."""
    raw = mail(1)
    uid = server.append(raw)
    account = account_for(server)
    key = source_key(account, server.uidvalidity(), uid)
    stored = inbox.store(engine, raw, envelope_for(raw, account, settings, None), key)
    if processed:
        assert pipeline.process(engine, settings, stored.spool_id) == "done"
    with watching(account, engine, settings):
        wait_for(lambda: server.uids("Processed"), timeout=15)
    assert len(cases(engine)) == 1 and [(r.status, r.attempts) for r in spool(engine)] == [("done", 1)]


def test_pending_mail_waiting_for_its_retry_stays_and_is_not_retried_early(
    server: Dovecot, engine: Engine, settings: Settings
) -> None:
    raw = mail(1)
    account = account_for(server, poll_interval=0.2, idle=False)
    key = source_key(account, server.uidvalidity(), server.append(raw))
    stored = inbox.store(engine, raw, envelope_for(raw, account, settings, None), key)
    inbox.record_failure(engine, stored.spool_id, "relay down", 5, timedelta(hours=1))
    with watching(account, engine, settings):
        server.append(mail(2))
        wait_for(lambda: server.uids("Processed"), timeout=15)  # a pass that saw both mails
    assert len(server.uids("INBOX")) == 1
    assert [(r.status, r.attempts) for r in spool(engine)] == [("pending", 0), ("done", 1)]


def test_uidvalidity_change_does_not_process_old_mail_twice(
    server: Dovecot, engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    account = account_for(server)
    with watching(account, engine, settings):
        server.append(mail(1))
        wait_for(lambda: server.uids("Processed"), timeout=15)
    # The mailbox is rebuilt (new UIDVALIDITY) and the processed mail lands in it again.
    with server.client("Processed") as client:
        client.copy(client.search("ALL"), "INBOX")
    before = server.uidvalidity()
    server.renumber_inbox()
    assert server.uidvalidity() != before
    server.append(mail(2))
    with watching(account, engine, settings):
        wait_for(lambda: len(server.uids("Processed")) == 3, timeout=15)
    assert events(caplog, "imap-uidvalidity-changed")
    assert len(cases(engine)) == 2


def test_start_new_leaves_mail_that_was_there_before(
    server: Dovecot, engine: Engine, settings: Settings
) -> None:
    old = server.append(mail(1))
    with watching(account_for(server, start="new"), engine, settings) as watcher:
        wait_for(lambda: watcher.connected, timeout=10)
        server.append(mail(2))
        wait_for(lambda: server.uids("Processed"), timeout=15)
    assert server.uids("INBOX") == [old]
    assert [c.subject for c in cases(engine)] == ["Printer broken 2"]


def test_oversize_mail_is_refused_by_its_declared_size_and_quarantined(
    server: Dovecot, engine: Engine, settings: Settings
) -> None:
    server.append(mail(1, size=20_000))
    with watching(account_for(server), engine, settings):
        wait_for(lambda: server.uids("Quarantine"), timeout=15)
    (row,) = spool(engine)
    assert row.verdict == "rejected" and row.reason == "too_large"
    assert row.declared_size is not None and row.declared_size > 20_000
    assert len(row.raw) < 1000 and b"x" * 76 not in row.raw  # only the header was fetched
    with Session(engine) as session:
        assert session.exec(select(Outbox.recipient)).all() == ["alice@example.org"]
    assert cases(engine) == []


def test_recovers_by_itself_when_dovecot_restarts(
    server: Dovecot, engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with watching(account_for(server), engine, settings) as watcher:
        server.append(mail(1))
        wait_for(lambda: len(server.uids("Processed")) == 1, timeout=15)
        server.stop()
        wait_for(lambda: events(caplog, "imap-reconnect"), timeout=10)
        server.start()
        server.append(mail(2))
        wait_for(lambda: len(server.uids("Processed")) == 2, timeout=20)
        assert watcher.alive
    assert len(cases(engine)) == 2


def test_wrong_password_is_logged_once_and_other_accounts_keep_working(
    server: Dovecot, engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = account_for(server, name="wrong", password="not-the-password")
    with watching(wrong, engine, settings) as failing, watching(account_for(server), engine, settings):
        server.append(mail(1))
        wait_for(lambda: server.uids("Processed"), timeout=15)
        (failed,) = wait_for(lambda: events(caplog, "imap-login-failed"), timeout=10)
        assert failing.alive
    assert failed.levelno == logging.ERROR
    assert failed.fields["account"] == "wrong" and "password" in failed.fields["hint"]  # type: ignore[attr-defined]


def test_stop_interrupts_idle_promptly(server: Dovecot, engine: Engine, settings: Settings) -> None:
    watcher = ImapWatcher(account_for(server), engine, lambda: settings, lambda _spool_id: None)
    watcher.start()
    wait_for(lambda: watcher.connected, timeout=10)
    started = time.monotonic()
    watcher.stop(10)
    assert not watcher.alive and time.monotonic() - started < 2


def test_backlog_drains_in_batches_and_new_mail_is_not_starved(
    server: Dovecot, engine: Engine, settings: Settings
) -> None:
    server.drop(mail(n) for n in range(300))
    with watching(account_for(server, batch_size=20), engine, settings):
        wait_for(lambda: server.uids("Processed"), timeout=30)
        urgent = server.append(mail(9999))
        wait_for(lambda: urgent not in server.uids("INBOX"), timeout=30)
        assert len(server.uids("INBOX")) > 0  # handled while the backlog was still waiting
        wait_for(lambda: server.uids("INBOX") == [], timeout=60)
    assert len(server.uids("Processed")) == 301 and len(cases(engine)) == 301


# A watcher in its own process whose on_stored hook (called after the spool commit and the
# processing, before the MOVE) announces itself and hangs, so the test can SIGKILL it there.
CRASHING_WATCHER = """
import sys, time
from pathlib import Path
from mailbot import config, db
from mailbot.intake_imap import ImapWatcher
settings = config.load(sys.argv[1])
def committed(spool_id):
    Path(sys.argv[2]).write_text(str(spool_id))
    time.sleep(3600)
ImapWatcher(settings.imap.accounts[0], db.make_engine(settings.database.url), lambda: settings, committed).start()
time.sleep(3600)
"""


def test_sigkill_between_commit_and_move_then_restart_gives_one_case(server: Dovecot, tmp_path: Path) -> None:
    (tmp_path / "imap.secret").write_text(server.password + "\n")
    account = {"name": "support", "host": server.host, "port": server.port, "tls": "none",
               "username": server.user, "password_file": "imap.secret"}  # relative: beside config.toml
    path = write_config(tmp_path / "config.toml", base_sections(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}"),
                        [account])
    settings = config.load(path)
    server.append(mail(1))
    marker = tmp_path / "committed"
    child = subprocess.Popen([sys.executable, "-c", CRASHING_WATCHER, str(path), str(marker)])
    try:
        wait_for(marker.exists, timeout=30)
    finally:
        child.kill()
        child.wait()
    engine = db.make_engine(settings.database.url)
    assert len(server.uids("INBOX")) == 1 and [r.status for r in spool(engine)] == ["done"]
    with watching(settings.imap.accounts[0], engine, settings):
        wait_for(lambda: server.uids("Processed"), timeout=15)
    assert server.uids("INBOX") == []
    assert len(cases(engine)) == 1 and len(spool(engine)) == 1
    engine.dispose()


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


@pytest.mark.slow
def test_ten_thousand_waiting_messages_drain_completely_in_bounded_memory(
    server: Dovecot, engine: Engine, settings: Settings
) -> None:
    # List mail: the whole way (fetch, spool, rules, move) but no case per mail, so this times
    # the IMAP drain; what a case costs is measured by bench/imap_ingest.py and bench/smtp_ingest.py.
    total = 10_000
    server.drop(mail(n, sender=f"c{n % 97}@customer.test", size=20_000)
                .replace(b"\r\nTo:", b"\r\nList-Id: <news.customer.test>\r\nTo:", 1) for n in range(total))
    assert len(server.uids()) == total  # ~200 MB waiting: holding it all would show in the RSS
    before = _peak_rss_mb()
    big = account_for(server, batch_size=100)
    with watching(big, engine, settings.model_copy(update={"smtp": settings.smtp.model_copy(
            update={"max_message_size": 1024 * 1024})})):
        wait_for(lambda: server.uids("INBOX") == [], timeout=1800, interval=1.0)
    assert _peak_rss_mb() - before < 100
    assert len(server.uids("Processed")) == total
    with Session(engine) as session:
        verdicts = session.exec(select(InboundSpool.verdict, func.count()).group_by(InboundSpool.verdict)).all()
        assert verdicts == [("ignored", total)]
        assert session.exec(select(func.count()).select_from(Case)).one() == 0


def test_a_database_fault_is_logged_once_and_the_watcher_goes_on(
    server: Dovecot, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    caplog.set_level(logging.INFO, logger="mailbot")
    engine = db.make_engine(settings.database.url, timeout=0.3)
    holder = sqlite3.connect(str(tmp_path / "mailbot.db"), isolation_level=None)
    try:
        with watching(account_for(server), engine, settings) as watcher:
            wait_for(lambda: watcher.connected)
            holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
            server.append(mail(1))
            server.append(mail(2))
            wait_for(lambda: watcher.health.failures >= 2, timeout=15)
            holder.execute("ROLLBACK")
            wait_for(lambda: len(server.uids("Processed")) == 2, timeout=20)
            assert watcher.alive
        errors = events(caplog, "worker-error")
        assert len(errors) == 1 and errors[0].fields["worker"] == "imap:support"  # type: ignore[attr-defined]
        assert "database is locked" in errors[0].fields["error"]  # type: ignore[attr-defined]
        assert events(caplog, "worker-recovered")
        assert len(cases(engine)) == 2
    finally:
        holder.close()
        engine.dispose()
