"""Test helpers shared by the test modules: polling, config files, the recording relay,
and the daemon as a real process.
"""


from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mailbot import config, db, views
from mailbot.config import Settings
from mailbot.models import InboundSpool

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SECRET = "test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `condition()` is truthy; fail with the timeout instead of sleeping blindly."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throw-away certificate for localhost/127.0.0.1 and its key: (cert.pem, key.pem)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def write_config(path: Path, sections: dict[str, dict[str, Any]], accounts: Sequence[dict[str, Any]] = ()) -> Path:
    """A config file from tables, plus one [[imap.accounts]] table per account."""
    tables = [(f"[{name}]", values) for name, values in sections.items()]
    tables += [("[[imap.accounts]]", account) for account in accounts]
    lines: list[str] = []
    for header, values in tables:
        lines.append(header)
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def base_sections(tmp: Path, db_url: str, **overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {
        "service": {"addresses": ["service@example.com", "support@example.com"], "noreply": "noreply@example.com"},
        "smtp": {"host": "127.0.0.1", "port": free_port()},
        "relay": {"mode": "maildir", "maildir": str(tmp / "outgoing")},
        "database": {"url": db_url},
        "storage": {"attachments_dir": str(tmp / "attachments")},
        "policy": {"retry_base_seconds": 0.2, "retry_max_seconds": 1.0},
        "templates": {"dir": str(ROOT / "templates"), "languages": ["de"], "default": "de"},
        "tokens": {"secret": SECRET},
    }
    for name, values in overrides.items():
        sections.setdefault(name, {}).update(values)
    return sections


@dataclass
class Recorded:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.raw, policy=default_policy)


@dataclass
class Relay:
    """A real SMTP server on loopback that records what mailbot delivers to it."""

    port: int
    received: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse_with: str | None = None

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        if self.refuse_with:
            return self.refuse_with
        with self.lock:
            self.received.append(Recorded(envelope.mail_from or "", list(envelope.rcpt_tos),
                                          envelope.original_content or b""))
        return "250 2.0.0 OK"

    def messages(self) -> list[Recorded]:
        with self.lock:
            return list(self.received)

    def sections(self) -> dict[str, Any]:
        return {"mode": "smtp", "host": "127.0.0.1", "port": self.port, "timeout_seconds": 5.0}


class DaemonProcess:
    """`mailbot run` as a real process, so tests can SIGTERM or SIGKILL it."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        data = tomllib.loads(config_path.read_text())
        self.port = int(data["smtp"]["port"])
        self.proc: subprocess.Popen[bytes] | None = None
        self._engine: Engine | None = None

    def start(self, env: dict[str, str] | None = None, spawned: Callable[[int], None] | None = None,
              wrapper: Sequence[str] = ()) -> DaemonProcess:
        """Start and wait until it listens; `spawned(pid)` runs at once, before the daemon is up;
        `wrapper` is a command that runs it (e.g. prlimit with its options)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "mailbot", "--config", str(self.config_path), "run"],
                stdout=log, stderr=log, cwd=str(ROOT), env={**os.environ, **(env or {})},
            )
        if spawned is not None:
            spawned(self.proc.pid)
        wait_for(self._listening, timeout=30)
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"mailbot exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return "event=started" in self.log()
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def settings(self) -> Settings:
        return config.load(self.config_path)

    def engine(self) -> Engine:
        """The daemon's database, seen from the test (one engine, disposed by `close`)."""
        if self._engine is None:
            self._engine = db.make_engine(self.settings().database.url)
        return self._engine

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill()
        if self._engine is not None:
            self._engine.dispose()




def compose(
    subject: str = "Drucker druckt nicht",
    sender: str = "kunde@customer.test",
    to: str = "service@example.com",
    message_id: str | None = None,
    body: str = "Hallo,\r\nder Drucker im 2. Stock druckt nicht.\r\n",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A small, valid RFC 5322 mail; every header given goes in verbatim."""
    fields = {
        "From": sender,
        "To": to,
        "Subject": subject,
        "Message-ID": f"<{message_id or uuid.uuid4().hex}@customer.test>",
        "Date": "Mon, 23 Nov 2026 10:00:00 +0100",
        **(headers or {}),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return (head + "\r\n" + body).encode()


class Desk:
    """A customer's-eye view of a running daemon: send over SMTP, wait for the verdict and notices."""

    def __init__(self, daemon: DaemonProcess, relay: Relay) -> None:
        self.daemon = daemon
        self.relay = relay

    def send(self, raw: bytes, rcpt: str = "service@example.com") -> InboundSpool:
        """Send one mail and return its spool row once processed (verdict, reason, case, trace)."""
        parsed = message_from_bytes(raw)
        with smtplib.SMTP("127.0.0.1", self.daemon.port, timeout=10) as client:
            client.sendmail(parseaddr(str(parsed["From"]))[1], [rcpt], raw)  # the envelope of a real client
        engine = self.daemon.engine()
        identity = parsed["Message-ID"]

        def processed() -> InboundSpool | None:
            with Session(engine) as db:
                row = db.exec(select(InboundSpool).where(InboundSpool.message_id == identity)).first()
                return row if row is not None and row.status != "pending" else None

        return wait_for(processed)

    def mails_to(self, address: str, count: int = 1) -> list[Message]:
        """Wait until the relay has `count` mails for `address`; return all of them."""
        def arrived() -> list[Message] | None:
            found = [r.message for r in self.relay.messages() if address in r.rcpt_tos]
            return found if len(found) >= count else None

        return wait_for(arrived)

    def case(self, number: int) -> dict[str, Any]:
        data = views.show_case(self.daemon.engine(), number, full=True)
        assert data is not None
        return data

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(self.daemon.config_path), *args],
            capture_output=True, text=True, cwd=str(ROOT), timeout=60,
        )


def database_from_before(db_url: str, statements: Sequence[str]) -> Engine:
    """A database as an older mailbot left it (`statements` drop what it lacked and add its rows),
    opened again the way the next start of mailbot opens it: the upgrade under test."""
    engine = db.make_engine(db_url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()
    return db.make_engine(db_url)
