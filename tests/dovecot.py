"""A private, throw-away Dovecot IMAP server for the IMAP intake tests and the bench.

Why a real server: IDLE, UID MOVE, UIDVALIDITY and dropped connections behave in ways a mock
would only guess at. Each instance has its own config, Maildir, state and log under a fresh
temp folder and listens on free loopback ports, so it never touches the system Dovecot.
The temp folder is made world-traversable because, when the tests run as root, Dovecot
refuses uid 0 for mail access and serves the Maildir as `nobody`.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from support import self_signed

USER = "tester"
PASSWORD = "secret"  # noqa: S105 - a test account on a loopback server
FULL_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND "
    "UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH "
    "SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE LITERAL+"
)

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


def dovecot_binary() -> str:
    """Path of the dovecot binary; skips the test when it is missing (fails instead in CI)."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    reason = "dovecot binary not found: run scripts/install-dovecot.sh (installs dovecot-imapd)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    """One Dovecot instance: start, stop, restart, and put mail into its Maildir."""

    host = "127.0.0.1"

    def __init__(self, *, capabilities: str | None = None) -> None:
        self.binary = dovecot_binary()
        self.root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-"))
        self.root.chmod(0o755)
        self.port = _free_port()
        self.imaps_port = _free_port()
        self.user, self.password = USER, PASSWORD
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files(capabilities)

    @property
    def cafile(self) -> Path:
        """The self-signed certificate, to trust in TLS tests."""
        return self.root / "cert.pem"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user

    def _write_files(self, capabilities: str | None) -> None:
        if os.geteuid() == 0:  # Dovecot needs unprivileged users for logins and mail access
            internal_user, internal_group, login_user = "dovecot", "dovecot", "dovenull"
            mail_user = pwd.getpwnam("nobody")
        else:
            mail_user = pwd.getpwuid(os.geteuid())
            internal_user = login_user = mail_user.pw_name
            internal_group = grp.getgrgid(os.getegid()).gr_name
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", mail_user.pw_uid, mail_user.pw_gid)
        self._mail_owner = (mail_user.pw_uid, mail_user.pw_gid)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::\n")
        self_signed(self.root)
        (self.root / "key.pem").chmod(0o644)  # read by the login processes; a test key only
        capability = f"imap_capability = {capabilities}" if capabilities is not None else ""
        (self.root / "dovecot.conf").write_text(CONFIG.format(
            root=self.root, port=self.port, imaps_port=self.imaps_port, capability=capability,
            internal_user=internal_user, internal_group=internal_group, login_user=login_user,
            uid=mail_user.pw_uid, gid=mail_user.pw_gid,
        ))

    def start(self, timeout: float = 15.0) -> None:
        """Run `dovecot -F` and wait until the IMAP port greets."""
        assert self._process is None, "already running"
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self._process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server and every process of it, so every client connection drops.

        Dovecot's own shutdown lets IDLE sessions live on after the master has gone; a real
        restart (or a crash of the host) does not, so the whole process group is signalled.
        """
        if self._process is None:
            return
        group = self._process.pid  # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self._process.wait(10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def renumber_inbox(self) -> None:
        """Make INBOX's UIDVALIDITY change, as when a mailbox is rebuilt or restored.

        Dropping the uidlist and indexes makes Dovecot renumber every message; the kept
        dovecot-uidvalidity counter guarantees a new value even within the same second.
        """
        self.stop()
        for path in [self.maildir / "dovecot-uidlist", *self.maildir.glob("dovecot.index*")]:
            path.unlink()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, folder: str | None = "INBOX") -> IMAPClient:
        """A logged-in plain-text client, with `folder` selected (created if missing)."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        client.login(self.user, self.password)
        if folder is not None:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.select_folder(folder)
        return client

    def append(self, message: bytes, folder: str = "INBOX") -> int:
        """APPEND one message as a mail client would; returns its UID."""
        with self.client(folder) as client:
            response = client.append(folder, message)
        # UIDPLUS answers "[APPENDUID <validity> <uid>] Append completed."
        return int(response.split(b"]")[0].split()[-1])

    def drop(self, messages: Iterable[bytes], folder: str = "INBOX") -> int:
        """Write messages straight into the Maildir's new/ (fast bulk delivery); returns the count."""
        box = self.maildir if folder == "INBOX" else self.maildir / f".{folder}"
        for sub in ("", "cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
            os.chown(box / sub, *self._mail_owner)
        stamp, pid, count = int(time.time()), os.getpid(), 0
        for count, message in enumerate(messages, start=1):
            name = f"{stamp}.M{count}P{pid}.mailbot,S={len(message)}"
            (box / "tmp" / name).write_bytes(message)
            os.rename(box / "tmp" / name, box / "new" / name)
        return count

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client(None) as client:
            return int(client.select_folder(folder, readonly=True)[b"UIDVALIDITY"])

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client(folder) as client:
            return sorted(int(uid) for uid in client.search("ALL"))

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """Raw bytes of every message in `folder`, fetched without setting \\Seen."""
        with self.client(folder) as client:
            fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
            return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))


@contextlib.contextmanager
def running_dovecot(*, capabilities: str | None = None) -> Iterator[Dovecot]:
    """A started Dovecot that is stopped and deleted afterwards."""
    server = Dovecot(capabilities=capabilities)
    try:
        server.start()
        yield server
    finally:
        server.close()


def mail(n: int, *, sender: str = "alice@example.org", to: str = "support@example.com",
         size: int = 0) -> bytes:
    """A small, distinct RFC 5322 message; `size` pads the body to roughly that many bytes."""
    body = f"Message number {n}.\r\n" + ("x" * 76 + "\r\n") * (size // 78)
    return (
        f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: Printer broken {n}\r\n"
        f"Message-ID: <test-{n}-{os.getpid()}-{time.monotonic_ns()}@example.org>\r\n"
        f"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()
