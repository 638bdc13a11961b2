"""One logged-in IMAP connection for one account: connect with its TLS mode, fetch by UID, move.

Kept apart from the watcher so the watcher reads as the exactly-once loop it is, and so
`mailbot check-config --connect` logs in exactly the way the daemon does. Bodies are always
fetched with BODY.PEEK so nothing is marked \\Seen before mailbot has committed the mail.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterator, Sequence

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailbot.config import ImapAccount

# What a dropped connection, a restarted server or a timeout can raise; retried with backoff.
NETWORK_ERRORS = (OSError, IMAPClientError, imaplib.IMAP4.error, EOFError)
# A fetch group is capped by bytes too, so a batch of large mails never sits in memory at once.
FETCH_BYTES = 16 * 1024 * 1024


def connect(account: ImapAccount) -> IMAPClient:
    """Open, secure and log in; raises imapclient's LoginError on a rejected password."""
    context = ssl.create_default_context(cafile=account.ca_file or None)
    timeout = account.timeout_seconds
    if account.tls == "implicit":
        client = IMAPClient(account.host, account.port, ssl=True, ssl_context=context, timeout=timeout)
    else:
        client = IMAPClient(account.host, account.port, ssl=False, timeout=timeout)
    try:
        if account.tls == "starttls":
            client.starttls(context)
        client.login(account.username, account.secret())
    except BaseException:
        client.shutdown()
        raise
    return client


def check_login(account: ImapAccount) -> str | None:
    """Log in and select the account's folder; None when that works, else what went wrong."""
    try:
        client = connect(account)
    except (*NETWORK_ERRORS, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    with client:
        try:
            client.select_folder(account.folder, readonly=True)
        except NETWORK_ERRORS as exc:
            return f"cannot select folder {account.folder!r}: {exc}"
    return None


class ImapSession:
    """The account's folder selected, its move targets present, and the few commands we use."""

    def __init__(self, client: IMAPClient, account: ImapAccount) -> None:
        self.client, self.account = client, account
        self.capabilities = set(client.capabilities())
        for folder in (account.processed_folder, account.quarantine_folder):
            if not client.folder_exists(folder):
                client.create_folder(folder)
        selected = client.select_folder(account.folder)
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        self.uidnext = int(selected.get(b"UIDNEXT", 1))

    @property
    def can_idle(self) -> bool:
        return b"IDLE" in self.capabilities

    def uids_after(self, floor: int) -> list[int]:
        """UIDs above `floor`, ascending; `n:*` always matches the highest UID, so filter."""
        found = self.client.search(["UID", f"{floor + 1}:*", "UNDELETED"])
        return sorted(uid for uid in found if uid > floor)

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        fetched = self.client.fetch(list(uids), ["RFC822.SIZE"])
        return {uid: int(data[b"RFC822.SIZE"]) for uid, data in fetched.items() if b"RFC822.SIZE" in data}

    def bodies(self, sizes: dict[int, int]) -> Iterator[tuple[int, bytes]]:
        """(uid, raw bytes) in UID order, fetched in groups of at most FETCH_BYTES."""
        group: list[int] = []
        budget = 0
        for uid in sorted(sizes):
            if group and budget + sizes[uid] > FETCH_BYTES:
                yield from self._fetch(group, "BODY.PEEK[]", b"BODY[]")
                group, budget = [], 0
            group.append(uid)
            budget += sizes[uid]
        if group:
            yield from self._fetch(group, "BODY.PEEK[]", b"BODY[]")

    def header(self, uid: int) -> bytes | None:
        return next((raw for _, raw in self._fetch([uid], "BODY.PEEK[HEADER]", b"BODY[HEADER]")), None)

    def _fetch(self, uids: list[int], item: str, key: bytes) -> Iterator[tuple[int, bytes]]:
        fetched = self.client.fetch(uids, [item])
        for uid in uids:  # a UID expunged meanwhile by someone else is simply absent
            raw = fetched.get(uid, {}).get(key)
            if isinstance(raw, bytes):
                yield uid, raw

    def move(self, uids: list[int], folder: str) -> None:
        """UID MOVE, or COPY + \\Deleted + UID EXPUNGE on servers without MOVE."""
        if not uids:
            return
        if b"MOVE" in self.capabilities:
            self.client.move(uids, folder)
            return
        self.client.copy(uids, folder)
        self.client.delete_messages(uids)
        if b"UIDPLUS" in self.capabilities:
            self.client.uid_expunge(uids)
        else:  # plain EXPUNGE also removes others' \Deleted mail: only ever in mailbot's own folder
            self.client.expunge()

    def wait(self, seconds: float) -> None:
        """IDLE until the server reports a change or `seconds` pass (renewing the IDLE)."""
        self.client.idle()
        try:
            self.client.idle_check(timeout=seconds)
        finally:
            self.client.idle_done()
            # idle_check leaves the socket blocking without a timeout: restore it, or a dead
            # server would hang the next command for ever.
            self.client.socket().settimeout(self.account.timeout_seconds)

    def interrupt(self) -> None:
        """From another thread: make a pending IDLE return now by closing the socket."""
        with contextlib.suppress(OSError):
            self.client.socket().shutdown(socket.SHUT_RDWR)
