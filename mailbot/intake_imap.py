"""IMAP intake: one watcher thread per account that brings each mail into the spool exactly once.

The order is the whole point: fetch by UID with BODY.PEEK (nothing marked \\Seen), store in
the spool under the key (account, folder, UIDVALIDITY, UID), which commits, process it, and
only *then* move it to processed_folder (or quarantine_folder). A crash anywhere before the
move leaves the mail in the folder; the refetch hits the source key or the Message-ID dedupe
and is only moved, so it never opens a second case. Mail is never deleted.

imapclient blocks, hence a thread per account. IDLE is used when offered (renewed well within
the server's timeout), polling otherwise; network trouble reconnects with capped exponential
backoff, a rejected login is logged once and retried slowly, and nothing here ever stops the
other accounts or the SMTP listener.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from imapclient.exceptions import LoginError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot import inbox, judgepool, pipeline
from mailbot.config import ImapAccount, Settings
from mailbot.health import WorkerHealth, backoff
from mailbot.imap_session import NETWORK_ERRORS, ImapSession, check_login, connect
from mailbot.inbox import Stored
from mailbot.judgepool import JudgePool
from mailbot.logs import event
from mailbot.mail import Envelope
from mailbot.models import ImapCursor, utcnow
from mailbot.notices import Notices
from mailbot.parse import reverse_path
from mailbot.spool_writer import SpoolWriter

__all__ = ["ImapWatcher", "check_login"]

LOGIN_RETRY = 300.0  # a wrong password does not fix itself quickly; don't hammer the server


def source_key(account: ImapAccount, uidvalidity: int, uid: int) -> str:
    return f"imap:{account.name}:{account.folder}:{uidvalidity}:{uid}"


def envelope_for(raw: bytes, account: ImapAccount, settings: Settings, declared_size: int | None) -> Envelope:
    """IMAP has no SMTP envelope: Return-Path (empty for bounces) or From stands in for MAIL FROM."""
    return Envelope(reverse_path(raw), settings.service.addresses[:1], f"imap:{account.name}", declared_size)


def _floor(engine: Engine, account: ImapAccount, session: ImapSession) -> int:
    """The UID at and below which mail is not ours: 0, or for start="new" what was there first.

    After a UIDVALIDITY change the old UIDs mean nothing. start="all" rescans the folder (the
    Message-ID dedupe keeps already-handled mail from a second case); start="new" takes the
    folder as it is now as its new starting point, as on its first start.
    """
    fresh = session.uidnext - 1 if account.start == "new" else 0
    with Session(engine) as db:
        cursor = db.get(ImapCursor, account.name)
        if cursor is not None and cursor.folder == account.folder:
            if cursor.uidvalidity == session.uidvalidity:
                return cursor.last_uid
            event("imap-uidvalidity-changed", logging.WARNING, account=account.name, folder=account.folder,
                  old=cursor.uidvalidity, new=session.uidvalidity, start=account.start)
        cursor = cursor or ImapCursor(account=account.name, folder=account.folder, uidvalidity=0)
        cursor.folder, cursor.uidvalidity, cursor.last_uid = account.folder, session.uidvalidity, fresh
        db.add(cursor)
        db.commit()
    return fresh


class ImapWatcher:
    """Watches one account in its own thread; `stop` returns promptly, even out of an IDLE."""

    def __init__(self, account: ImapAccount, engine: Engine, settings_provider: Callable[[], Settings],
                 on_stored: Callable[[int], None], judges: JudgePool | None = None,
                 writer: SpoolWriter | None = None) -> None:
        self.account, self.engine = account, engine
        self.writer = writer or SpoolWriter(engine)  # the daemon's one writer, shared with SMTP
        self.judges = judges or judgepool.shared()  # the daemon's one pool, shared with the pipeline
        self.settings_provider, self.on_stored = settings_provider, on_stored
        self._stopping = threading.Event()
        self._session: ImapSession | None = None
        self._idling = threading.Lock()  # held while the thread sits in IDLE
        self._connected = threading.Event()
        self._notices: tuple[Settings, Notices] | None = None  # compiled templates, per settings
        self.health = WorkerHealth(f"imap:{account.name}")
        self._thread = threading.Thread(target=self._run, name=f"imap-{account.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        session = self._session
        if session is not None and self._idling.locked():
            session.interrupt()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def connected(self) -> bool:
        """Logged in, folder selected and the starting point known."""
        return self._connected.is_set()

    def _run(self) -> None:
        failures, login_logged = 0, False
        while not self._stopping.is_set():
            try:
                self._serve()
                break
            except LoginError as exc:
                self.health.failed(exc, quiet=True)
                if not login_logged:
                    event("imap-login-failed", logging.ERROR, account=self.account.name, host=self.account.host,
                          user=self.account.username, error=str(exc), retry_in=LOGIN_RETRY,
                          hint="check username and password/password_file of this account")
                login_logged, delay = True, LOGIN_RETRY
            except Exception as exc:  # the watcher must outlive any single failure
                if self._stopping.is_set():
                    break
                if self._session is not None:  # we were logged in: this is a new outage
                    failures, login_logged = 0, False
                failures += 1
                delay = backoff(failures)
                if isinstance(exc, NETWORK_ERRORS):
                    self.health.failed(exc, quiet=True)
                    event("imap-reconnect", logging.WARNING, account=self.account.name,
                          error=f"{type(exc).__name__}: {exc}", attempt=failures, retry_in=round(delay, 1))
                else:  # the database, or a bug: logged once per kind, not at every reconnect
                    self.health.failed(exc)
            finally:
                self._close()
            self._stopping.wait(delay)
        self.health.stopped()

    def _serve(self) -> None:
        client = connect(self.account)
        try:
            self._session = session = ImapSession(client, self.account)
        except BaseException:
            client.shutdown()
            raise
        event("imap-connected", account=self.account.name, host=self.account.host, folder=self.account.folder,
              uidvalidity=session.uidvalidity, idle=self.account.idle and session.can_idle)
        floor = _floor(self.engine, self.account, session)
        self._connected.set()
        renew = min(self.account.idle_renew_seconds, self.account.poll_interval)
        while not self._stopping.is_set():
            self.health.busy()
            self._drain(session, floor)
            self.health.idle()
            if self.account.idle and session.can_idle:
                with self._idling:
                    if self._stopping.is_set():
                        break
                    event("imap-idle", logging.DEBUG, account=self.account.name, renew_in=renew)
                    session.wait(renew)
            else:
                self._stopping.wait(self.account.poll_interval)

    def _close(self) -> None:
        self._connected.clear()
        session, self._session = self._session, None
        if session is None:
            return
        if not self._stopping.is_set():
            with contextlib.suppress(*NETWORK_ERRORS):
                session.client.logout()  # closes the socket, but only when the LOGOUT succeeds
                return
        with contextlib.suppress(*NETWORK_ERRORS):
            session.client.shutdown()

    def _drain(self, session: ImapSession, floor: int) -> None:
        """Handle every waiting mail in batches; mail that arrives meanwhile goes to the front."""
        queue = deque(session.uids_after(floor))
        newest = queue[-1] if queue else floor
        while queue and not self._stopping.is_set():
            batch = [queue.popleft() for _ in range(min(self.account.batch_size, len(queue)))]
            self._handle(session, batch)
            arrived = session.uids_after(newest)
            if arrived:
                queue.extendleft(reversed(arrived))
                newest = arrived[-1]

    def _handle(self, session: ImapSession, uids: list[int]) -> None:
        settings = self.settings_provider()
        limit = settings.smtp.max_message_size
        sizes = session.sizes(uids)
        targets: dict[str, list[int]] = {}
        waiting: dict[int, tuple[list[int], int]] = {}  # spool id -> (its UIDs, attempts so far), to process
        fitting = {uid: size for uid, size in sizes.items() if size <= limit}
        # Every fetched mail goes to the writer at once, so the batch is stored in few transactions
        # (group commit); then what needs it is processed as pipeline batches (one transaction
        # each, judged on all cores), and moved in UID order once its commit is done.
        arrived = []
        for uid, raw in session.bodies(fitting):
            if self._stopping.is_set():  # stop between messages; what is done still gets moved
                break
            arrived.append(self._submit(session, settings, uid, raw, None))
        for uid in sorted(set(sizes) - set(fitting)):  # too large: only the header, with the size
            header = None if self._stopping.is_set() else session.header(uid)
            if header is not None:
                arrived.append(self._submit(session, settings, uid, header, sizes[uid]))
        for uid, envelope, size, future in arrived:
            if self._stopping.is_set():  # the rest is stored: the daemon's worker processes it
                break
            stored = future.result(settings.database.store_timeout_seconds)
            self._settle(uid, envelope, size, stored, targets, waiting)
        self._process(settings, waiting, targets)
        for folder, unsorted in targets.items():
            moving = sorted(unsorted)
            session.move(moving, folder)
            event("moved", account=self.account.name, folder=folder, count=len(moving),
                  uids=f"{moving[0]}..{moving[-1]}" if len(moving) > 1 else moving[0])

    def _submit(self, session: ImapSession, settings: Settings, uid: int, raw: bytes,
                declared_size: int | None) -> tuple[int, Envelope, int, Future[Stored]]:
        envelope = envelope_for(raw, self.account, settings, declared_size)
        key = source_key(self.account, session.uidvalidity, uid)
        return uid, envelope, declared_size or len(raw), self.writer.submit(raw, envelope, key)

    def _settle(self, uid: int, envelope: Envelope, size: int, stored: Stored, targets: dict[str, list[int]],
                waiting: dict[int, tuple[list[int], int]]) -> None:
        event("stored", spool=stored.spool_id, source=envelope.source, uid=uid, size=size,
              duplicate=stored.duplicate or None, mail_from=envelope.mail_from)
        # Seen before (a refetch after a crash, or the same mail by SMTP too): only move it,
        # unless it is pending and due (the crash came before processing). A pending row that
        # waits for a retry is left to the daemon's worker and its backoff.
        row = inbox.get(self.engine, stored.spool_id) if stored.duplicate else None
        if row is not None and not (row.status == "pending" and row.next_attempt_at <= utcnow()):
            self._target(targets, uid, row.status)
        else:
            uids, _ = waiting.setdefault(stored.spool_id, ([], row.attempts if row is not None else 0))
            uids.append(uid)  # one mail under two UIDs (sent twice) is processed once, both moved
        self.health.progress()

    def _process(self, settings: Settings, waiting: dict[int, tuple[list[int], int]],
                 targets: dict[str, list[int]]) -> None:
        """The stored mails through the pipeline in spool order (see pipeline.process_in_order);
        when stopping, they are left stored and in the folder, for the next pass to take."""
        if not waiting or self._stopping.is_set():
            return
        if self._notices is None or self._notices[0] is not settings:
            self._notices = (settings, Notices(settings))
        due = [(spool_id, attempts) for spool_id, (_, attempts) in sorted(waiting.items())]
        results = pipeline.process_in_order(self.engine, settings, due, self._notices[1], self.judges)
        for spool_id, (uids, _) in waiting.items():
            for uid in uids:
                self._target(targets, uid, results[spool_id][0])
        self.on_stored(next(iter(waiting)))  # wakes the outbox for the receipts just queued
        self.health.progress()

    def _target(self, targets: dict[str, list[int]], uid: int, state: str) -> None:
        folder = {"done": self.account.processed_folder, "quarantined": self.account.quarantine_folder}.get(state)
        if folder is not None:  # "pending": stays in the folder, moved by a later pass once decided
            targets.setdefault(folder, []).append(uid)
