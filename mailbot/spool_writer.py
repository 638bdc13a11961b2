"""Group commit at intake: one thread stores every mail that arrived while the previous commit ran.

Issue 11: one fsync'd transaction per mail held SMTP acceptance to 0.035x a bare aiosmtpd. Here
concurrent DATA commands (and IMAP fetches) hand their mail to one writer, which commits all that
has gathered in one transaction and then answers each. A lone mail does not wait for company:
the writer commits as soon as the previous commit is done. Each caller's 250 (or IMAP move) still
comes only after the transaction holding its mail has committed.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from sqlalchemy.engine import Engine

from mailbot import inbox
from mailbot.inbox import Arrival, Stored
from mailbot.mail import Envelope

MAX_BATCH = 200  # bounds one transaction's size (and memory) under a flood


class SpoolWriter:
    """Hands mail to one writer thread (started at the first mail); `close` ends it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[tuple[Arrival, Future[Stored]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, raw: bytes, envelope: Envelope, source_key: str | None = None) -> Future[Stored]:
        """Queue one mail; the future resolves once it is committed (or with the error that
        kept it from being stored). A future cancelled before its batch began is not stored."""
        future: Future[Stored] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
                self._thread.start()
        self._queue.put((Arrival(raw, envelope, source_key), future))
        return future

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[tuple[Arrival, Future[Stored]]] = []
            while item is not None:
                if item[1].set_running_or_notify_cancel():  # its client already got 451: skip it
                    batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            if item is None:
                return

    def _commit(self, batch: list[tuple[Arrival, Future[Stored]]]) -> None:
        try:
            stored = inbox.store_many(self.engine, [arrival for arrival, _ in batch])
        except BaseException as exc:  # every caller hears why (451, or 452 for a full disk)
            for _, future in batch:
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, stored, strict=True):
            future.set_result(result)
