"""Database and disk faults at the door: 4xx quickly, and the daemon recovers by itself when the
fault goes (issue 10). The databases here are the test's own: a SQLite file it locks, a tmpfs
it fills, a private PostgreSQL cluster it stops and freezes."""

from __future__ import annotations

import contextlib
import os
import smtplib
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pgcluster import cluster
from sqlmodel import Session
from support import DaemonProcess, Relay, base_sections, compose, free_port, wait_for
from test_smtp_intake import send

from mailbot import config, inbox
from mailbot.intake_smtp import SmtpIntake


def refused(port: int, raw: bytes) -> tuple[int, bytes, float]:
    """Send, expecting a refusal at DATA: (code, text, seconds it took)."""
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPDataError) as caught:
        send(port, raw)
    return caught.value.smtp_code, caught.value.smtp_error, time.monotonic() - started


def processed(daemon: DaemonProcess, count: int) -> bool:
    with contextlib.closing(daemon.engine().connect()) as conn:
        done = conn.exec_driver_sql("SELECT count(*) FROM inbound_spool WHERE status = 'done'").scalar()
    return done == count


def test_sqlite_locked_by_another_writer_answers_451_within_the_timeout(
    tmp_path: Path, sqlite_url: str, relay: Relay, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    daemon = daemon_factory(base_sections(tmp_path, sqlite_url, relay=relay.sections(),
                                          database={"store_timeout_seconds": 1.0}))
    send(daemon.port, compose(message_id="before"))
    wait_for(lambda: processed(daemon, 1))
    holder = sqlite3.connect(str(tmp_path / "mailbot.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock and does not let go
    try:
        code, text, took = refused(daemon.port, compose(message_id="while-locked"))
        assert (code, text[:5]) == (451, b"4.3.0") and took < 4
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    send(daemon.port, compose(message_id="while-locked"))  # the MTA's retry
    wait_for(lambda: processed(daemon, 2))


def test_below_the_free_space_reserve_answers_452(tmp_path: Path) -> None:
    sections = base_sections(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}", storage={"min_free_mb": 10**9})
    settings = config.parse(sections, tmp_path / "config.toml")
    from mailbot import db

    engine = db.make_engine(settings.database.url)
    controller = Controller(SmtpIntake(engine, lambda: settings, lambda _id: None), hostname="127.0.0.1",
                            port=free_port())
    controller.start()
    try:
        code, text, _ = refused(controller.port, compose())
        assert (code, text) == (452, b"4.3.1 Insufficient system storage, please try again later")
        assert inbox.quarantined(engine) == [] and inbox.due(engine, inbox.utcnow(), 10) == []
    finally:
        controller.stop()
        engine.dispose()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, where the test may mount one (root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_disk_full_answers_452_and_recovers_when_space_is_back(
    small_disk: Path, tmp_path: Path, relay: Relay, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    sections = base_sections(tmp_path, f"sqlite:///{small_disk / 'mailbot.db'}", relay=relay.sections(),
                             storage={"attachments_dir": str(small_disk / "attachments"), "min_free_mb": 0})
    daemon = daemon_factory(sections)
    send(daemon.port, compose(message_id="before"))
    wait_for(lambda: processed(daemon, 1))
    filler = small_disk / "filler"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):  # fill the disk to the last byte
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    big = compose(message_id="big", body="Zeile mit Text, die den Platz braucht.\r\n" * 30000)  # 1.2 MB
    code, text, _ = refused(daemon.port, big)
    assert (code, text[:5]) == (452, b"4.3.1")
    assert "event=store-failed" in daemon.log()
    os.unlink(filler)
    send(daemon.port, big)  # the MTA's retry, once there is room again
    wait_for(lambda: processed(daemon, 2), timeout=30)
    assert daemon.proc is not None and daemon.proc.poll() is None


@pytest.mark.slow
def test_postgresql_down_frozen_and_back_without_a_restart(
    tmp_path: Path, relay: Relay, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    with cluster() as pg:
        sections = base_sections(tmp_path, pg.url, relay=relay.sections(), database={"store_timeout_seconds": 2.0},
                                 daemon={"stall_seconds": 1.0})
        daemon = daemon_factory(sections)
        assert daemon.proc is not None
        pid = daemon.proc.pid
        send(daemon.port, compose(message_id="before"))
        wait_for(lambda: len(relay.messages()) == 1)

        pg.stop()  # down: connections refused
        code, _, took = refused(daemon.port, compose(message_id="while-down"))
        assert code == 451 and took < 6
        wait_for(lambda: "event=worker-error worker=outbox" in daemon.log(), timeout=15)  # it tries every 5 s
        time.sleep(6)  # let the workers fail a few more times: still one line per kind
        errors = [line for line in daemon.log().splitlines() if "event=worker-error worker=outbox" in line]
        assert len(errors) == 1, errors
        pg.start()
        send(daemon.port, compose(message_id="while-down"))  # the MTA's retry
        wait_for(lambda: len(relay.messages()) == 2, timeout=60)
        wait_for(lambda: "event=worker-recovered worker=outbox" in daemon.log())

        with pg.frozen():  # hung: connections open, nobody answers
            code, text, took = refused(daemon.port, compose(message_id="while-frozen"))
            assert (code, text[:5]) == (451, b"4.3.0") and took < 5
            wait_for(lambda: "event=worker-stalled" in daemon.log(), timeout=15)
        send(daemon.port, compose(message_id="while-frozen"))
        wait_for(lambda: len(relay.messages()) == 3, timeout=60)
        assert daemon.proc.pid == pid and daemon.proc.poll() is None  # no restart
        with contextlib.closing(daemon.engine().connect()) as conn:
            ids = conn.exec_driver_sql("SELECT message_id FROM inbound_spool ORDER BY id").scalars().all()
        assert ids == ["<before@customer.test>", "<while-down@customer.test>", "<while-frozen@customer.test>"]
        daemon.close()



def test_a_database_from_before_keeps_taking_messages(tmp_path: Path) -> None:
    """An older mailbot stored each mail's HTML again in messages.html (NOT NULL); it is dropped."""
    from sqlalchemy import Column, MetaData, String, create_engine
    from sqlmodel import SQLModel

    from mailbot import db
    from mailbot.models import Case, Message

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(old)
    old.tables["messages"].append_column(Column("html", String, nullable=False))
    legacy = create_engine(url)
    old.create_all(legacy)
    legacy.dispose()
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            case = Case(subject="Drucker", requester="kunde@customer.test")
            session.add(case)
            session.flush()
            session.add(Message(case_id=case.id, direction="in", from_addr="kunde@customer.test", text="Hallo"))
            session.commit()
    finally:
        engine.dispose()
