"""Workers never die silently and never hang unseen: a stall shows in the log and in `mailbot
status` and stops the watchdog pings; a mail that kills the process is quarantined after
`max_attempts` starts (issue 10)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from support import DaemonProcess, Desk, Relay, base_sections, compose, wait_for, write_config
from test_smtp_intake import send

from mailbot import config, db, inbox
from mailbot.files import FileStore
from mailbot.mail import Envelope
from mailbot.models import InboundSpool
from mailbot.parse import parse

POLICY = Path(__file__).parent / "data" / "policy"


def test_a_stalled_worker_shows_in_log_and_status_and_stops_the_watchdog(tmp_path: Path, sqlite_url: str) -> None:
    # A relay that completes the TCP handshake and then never says a word: delivery hangs in
    # the outbox worker until the relay timeout, far beyond stall_seconds.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    relay = {"mode": "smtp", "host": "127.0.0.1", "port": hung.getsockname()[1], "timeout_seconds": 8.0}
    path = write_config(tmp_path / "config.toml", base_sections(tmp_path, sqlite_url, relay=relay,
                                                                daemon={"stall_seconds": 1.0}))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    pings: list[str] = []

    def listen() -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                pings.append(notify.recv(4096).decode())

    threading.Thread(target=listen, daemon=True).start()
    daemon = DaemonProcess(path, tmp_path / "mailbot.log")
    desk = Desk(daemon, Relay(0))
    try:
        daemon.start({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "600000"})
        wait_for(lambda: "WATCHDOG=1" in pings)
        send(daemon.port, compose(message_id="stuck"))
        wait_for(lambda: "event=worker-stalled worker=outbox" in daemon.log())
        stalled_at = len(pings)

        def outbox_state() -> dict[str, Any] | None:  # the next heartbeat (every 5 s) records it
            status = desk.cli("status", "--json")
            outbox = next(w for w in json.loads(status.stdout)["workers"] if w["worker"] == "outbox")
            return outbox if outbox["state"] == "stalled" and status.returncode == 1 else None

        assert wait_for(outbox_state, timeout=10)["busy_seconds"] >= 1
        assert "/outbox: stalled for" in desk.cli("status").stdout
        wait_for(lambda: "event=notice-retry" in daemon.log(), timeout=20)  # the relay timeout ends it
        wait_for(lambda: "event=worker-resumed worker=outbox" in daemon.log(), timeout=10)
        wait_for(lambda: pings[-1] == "WATCHDOG=1")  # pinged again once it moved
    finally:
        daemon.close()
        notify.close()
        hung.close()
    stalls = [n for n, datagram in enumerate(pings) if datagram == "STATUS=stalled: outbox"]
    assert stalled_at <= stalls[-1] and len(stalls) >= 3
    assert "WATCHDOG=1" not in pings[stalls[0]:stalls[-1]]  # no ping while it was stalled


def test_a_mail_that_kills_the_process_is_quarantined_after_max_attempts(
    tmp_path: Path, db_url: str, relay: Relay
) -> None:
    path = write_config(tmp_path / "config.toml", base_sections(tmp_path, db_url, relay=relay.sections()))
    settings = config.load(path)
    max_attempts = settings.policy.max_attempts
    poison = (POLICY / "png-named-jpg.eml").read_bytes()
    digest = hashlib.sha256(parse(poison).attachments[0].payload).hexdigest()
    target = FileStore(settings.storage.attachments_dir).path_for(digest)
    target.parent.mkdir(parents=True)
    engine = db.make_engine(settings.database.url)
    envelope = Envelope("kunde@customer.test", ("service@example.com",), "smtp")
    first = inbox.store(engine, poison, envelope).spool_id
    behind = inbox.store(engine, compose(message_id="behind"), envelope).spool_id
    daemon = DaemonProcess(path, tmp_path / "mailbot.log")

    def in_hand(kills: int) -> InboundSpool | None:
        row = inbox.get(engine, first)
        return row if row is not None and (row.attempts > kills or row.status != "pending") else None

    kills = 0
    try:
        while kills < 7:
            # Storing the attachment blocks on a FIFO where this very process writes its temporary
            # file: the mail is in hand, with its attempt counted, when the kill comes (as an OOM
            # kill would). From the start after the last allowed attempt on, the claim refuses it.
            daemon.start(spawned=lambda pid: os.mkfifo(target.with_suffix(f".{pid}.tmp")))
            if wait_for(functools.partial(in_hand, kills)).status != "pending":
                break
            daemon.kill()
            kills += 1
        assert kills == max_attempts
        row = inbox.get(engine, first)
        assert row is not None and (row.status, row.attempts) == ("quarantined", max_attempts)
        assert row.reason == f"crashed_processing: {max_attempts} attempts started, none finished"
        wait_for(lambda: inbox.status(engine, behind) == "done")  # the mail behind it is processed
        assert "event=quarantined" in daemon.log() and "reason=crashed_processing" in daemon.log()
        with Session(engine) as session:
            assert session.exec(select(InboundSpool.verdict).where(InboundSpool.id == behind)).one() == "new_case"
    finally:
        daemon.close()
        engine.dispose()


def test_an_ordered_stop_before_judging_does_not_count_as_an_attempt(tmp_path: Path, sqlite_url: str) -> None:
    from mailbot import pipeline
    from mailbot.judgepool import JudgePool

    settings = config.parse(base_sections(tmp_path, sqlite_url), tmp_path / "config.toml")
    engine = db.make_engine(settings.database.url)
    judges = JudgePool(workers=1)
    judges.close()  # the daemon is stopping
    try:
        stored = inbox.store(engine, compose(), Envelope("kunde@customer.test", ("service@example.com",), "smtp"))
        assert pipeline.process(engine, settings, stored.spool_id, judges=judges) == "pending"
        row = inbox.get(engine, stored.spool_id)
        assert row is not None and row.attempts == 0
    finally:
        engine.dispose()
