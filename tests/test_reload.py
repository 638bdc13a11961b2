"""SIGHUP while mail is arriving: a broken edit is refused and the running config stays; a good
edit takes effect for the next session; no mail is lost on the way."""

from __future__ import annotations

import signal
import smtplib
import threading
from pathlib import Path

from sqlmodel import Session, select
from support import Relay, base_sections, compose, wait_for, write_config

from mailbot.models import InboundSpool


def test_reload_broken_then_good_while_sending(tmp_path: Path, sqlite_url: str, relay: Relay,
                                               daemon_factory) -> None:  # type: ignore[no-untyped-def]
    sections = base_sections(tmp_path, sqlite_url, relay=relay.sections(), policy={"notice_limit": 1000})
    daemon = daemon_factory(sections)
    accepted: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        n = 0
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
            while not stop.is_set():
                n += 1
                client.sendmail("kunde@customer.test", ["service@example.com"],
                                compose(message_id=f"steady-{n}", subject=f"Anfrage {n}"))
                accepted.append(f"<steady-{n}@customer.test>")

    sender = threading.Thread(target=keep_sending)
    sender.start()
    assert daemon.proc is not None
    try:
        wait_for(lambda: len(accepted) >= 5)
        (tmp_path / "config.toml").write_text(daemon.config_path.read_text().replace("port = ", "port = \"x\" #", 1))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "level=warning event=config-rejected" in daemon.log())
        assert 'problem="config.toml: smtp.port: expected an integer"' in daemon.log()

        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
            client.ehlo()
            client.mail("kunde@customer.test")
            assert client.rcpt("neu@example.com")[0] == 550  # not a service address yet

        sections["service"]["addresses"] = ["service@example.com", "neu@example.com"]
        write_config(tmp_path / "config.toml", sections)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "event=config-reloaded" in daemon.log())
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
            client.sendmail("kunde@customer.test", ["neu@example.com"], compose(message_id="to-new-address"))
        accepted.append("<to-new-address@customer.test>")
        count = len(accepted)
        wait_for(lambda: len(accepted) >= count + 5)
    finally:
        stop.set()
        sender.join(30)
    assert daemon.proc.poll() is None

    def all_processed() -> bool:
        with Session(daemon.engine()) as db:
            rows = db.exec(select(InboundSpool)).all()
            return len(rows) == len(accepted) and all(row.status == "done" for row in rows)

    wait_for(all_processed, timeout=60)
    with Session(daemon.engine()) as db:
        assert sorted(row.message_id or "" for row in db.exec(select(InboundSpool)).all()) == sorted(accepted)


def test_reload_refuses_what_check_config_refuses(tmp_path: Path, sqlite_url: str, relay: Relay,
                                                   daemon_factory) -> None:  # type: ignore[no-untyped-def]
    sections = base_sections(tmp_path, sqlite_url, relay=relay.sections())
    daemon = daemon_factory(sections)
    assert daemon.proc is not None
    sections["templates"]["dir"] = str(tmp_path / "no-templates")  # a valid file, a missing folder
    write_config(tmp_path / "config.toml", sections)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "level=warning event=config-rejected" in daemon.log())
    assert f'problem="config.toml: templates.dir: {tmp_path / "no-templates"} is not a folder"' in daemon.log()
    assert "event=config-reloaded" not in daemon.log()
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.sendmail("kunde@customer.test", ["service@example.com"], compose(message_id="after-reject"))
    wait_for(lambda: relay.messages())  # the receipt still renders with the templates in force
    with Session(daemon.engine()) as db:
        assert [row.status for row in db.exec(select(InboundSpool)).all()] == ["done"]
