"""Engine and sessions for SQLite (default) or PostgreSQL.

SQLite runs in WAL mode with synchronous=FULL: WAL with NORMAL can lose the last commits on
power loss, and "250 means stored" must survive that.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, literal, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from mailbot import models  # noqa: F401  (registers the tables on SQLModel.metadata)


def _sqlite_pragmas(timeout: float) -> Callable[[sqlite3.Connection, Any], None]:
    def apply(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()

    return apply


class _WriteGate:
    """SQLite has one writer. Threads of this process (SMTP's writer, the pipeline, the outbox)
    queue for it here and are woken the moment it is free, instead of in SQLite's busy handler,
    which polls with sleeps of up to 100 ms: under load intake lost most of its time there."""

    WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)

    def __init__(self, timeout: float) -> None:
        self.lock = threading.Lock()
        self.timeout = timeout

    def enter(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get("write_gate") or not self.WRITE.match(statement):
            return
        if not self.lock.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked (another thread of mailbot is writing)")
        conn.info["write_gate"] = True

    def leave(self, info: dict[Any, Any]) -> None:
        if info.pop("write_gate", False):
            self.lock.release()

    def install(self, engine: Engine) -> None:
        sa_event.listen(engine, "before_cursor_execute", self.enter)
        sa_event.listen(engine, "commit", lambda conn: self.leave(conn.info))
        sa_event.listen(engine, "rollback", lambda conn: self.leave(conn.info))
        sa_event.listen(engine.pool, "checkin", lambda _dbapi, record: self.leave(record.info))


def make_engine(url: str, *, timeout: float = 10.0) -> Engine:
    """An engine for `url`; creates the SQLite file's folder and the schema.

    `timeout` ([database] store_timeout_seconds) bounds every wait the database can impose: a
    lock held by another writer, a statement, a connection attempt. Intake answers 451 rather
    than hang with it (a server that stops answering altogether is bounded by the caller).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout})
        sa_event.listen(engine, "connect", _sqlite_pragmas(timeout))
        _WriteGate(timeout).install(engine)
    else:
        millis = int(timeout * 1000)
        engine = create_engine(url, pool_pre_ping=True, pool_timeout=timeout, connect_args={
            "connect_timeout": max(1, math.ceil(timeout)),
            "options": f"-c statement_timeout={millis} -c lock_timeout={millis}",
        })
    SQLModel.metadata.create_all(engine)
    _add_new_columns(engine)
    _drop_retired_columns(engine)
    return engine


# Columns an older mailbot had and this one does not write (NOT NULL without a default, they
# would refuse every new row): messages.html (the HTML part is in the spooled raw mail).
RETIRED_COLUMNS = (("messages", "html"),)


def _drop_retired_columns(engine: Engine) -> None:
    present = inspect(engine)
    for table, column in RETIRED_COLUMNS:
        if present.has_table(table) and column in {c["name"] for c in present.get_columns(table)}:
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))


def _add_new_columns(engine: Engine) -> None:
    """Give a database made by an older mailbot the columns added since (create_all only makes
    missing tables); each new column needs a scalar default, which fills the existing rows, or
    must be nullable (existing rows get NULL); its indexes are made with it."""
    present = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if not present.has_table(table.name):
            continue
        known = {column["name"] for column in present.get_columns(table.name)}
        for column in table.columns:
            if column.name in known or (column.default is None and not column.nullable):
                continue
            if column.default is not None and not column.default.is_scalar:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            fill = ""
            if column.default is not None:
                value = literal(column.default.arg).compile(dialect=engine.dialect,  # type: ignore[attr-defined]
                                                            compile_kwargs={"literal_binds": True})
                fill = f" DEFAULT {value}"
            required = "" if column.nullable else " NOT NULL"
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{required}{fill}"))
            for index in table.indexes:
                if column.name in index.columns:
                    index.create(engine, checkfirst=True)


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as db:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
