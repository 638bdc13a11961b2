"""Automatic mail: rate limit per recipient, receipt-window breaches, and what the daemon tells systemd."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select
from support import ROOT, DaemonProcess, Desk, Relay, base_sections, compose, wait_for, write_config

from mailbot import config, db
from mailbot.models import Outbox, utcnow
from mailbot.outbox import Courier


def replay_json(config_path: Path, *files: Path) -> list[dict[str, object]]:
    result = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config_path), "replay", "--json",
                             *map(str, files)], capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_rate_limit_holds_back_automatic_mail_per_recipient(tmp_path: Path, db_url: str) -> None:
    path = write_config(tmp_path / "config.toml", base_sections(tmp_path, db_url, policy={"notice_limit": 2}))
    files = []
    for n in range(3):
        files.append(tmp_path / f"{n}.eml")
        files[-1].write_bytes(compose(message_id=f"flood-{n}", subject=f"Anfrage {n}"))
    (tmp_path / "other.eml").write_bytes(compose(message_id="other", sender="andere@customer.test"))
    outcomes = replay_json(path, *files, tmp_path / "other.eml")
    assert [o["verdict"] for o in outcomes] == ["new_case"] * 4  # every mail is taken...
    assert [len(o["notices"]) for o in outcomes] == [1, 1, 0, 1]  # ...but the third receipt is held back


def test_receipt_window_breach_is_logged_once_and_mail_still_goes(tmp_path: Path, sqlite_url: str) -> None:
    settings = config.parse(base_sections(tmp_path, sqlite_url), tmp_path / "config.toml")
    engine = db.make_engine(settings.database.url)
    with Session(engine) as session:
        session.add(Outbox(kind="receipt", recipient="kunde@customer.test", message_id="<late@example.com>",
                           raw=compose(message_id="late"), deadline_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    courier = Courier(engine, settings)
    assert (courier.log_breaches(), courier.log_breaches()) == (1, 0)
    assert courier.deliver_due() == 1  # maildir relay
    with Session(engine) as session:
        assert session.exec(select(Outbox)).one().status == "sent"
    engine.dispose()


def test_daemon_speaks_sd_notify(tmp_path: Path, sqlite_url: str, relay: Relay) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(20)
    path = write_config(tmp_path / "config.toml", base_sections(tmp_path, sqlite_url, relay=relay.sections()))
    daemon = DaemonProcess(path, tmp_path / "mailbot.log")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
    try:
        daemon.start(env)
        received = [listener.recv(4096).decode() for _ in range(2)]
        assert received[0].startswith("READY=1")
        assert received[1] == "WATCHDOG=1"  # every second: half of WATCHDOG_USEC
        Desk(daemon, relay).send(compose())
        assert daemon.stop() == 0
        rest = []
        while not any(m.startswith("STOPPING=1") for m in rest):
            rest.append(listener.recv(4096).decode())
    finally:
        daemon.close()
        listener.close()
    wait_for(lambda: "event=stopped" in daemon.log())
