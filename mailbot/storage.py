"""Storage faults as the intake answers them: a full disk, a free-space reserve.

Issue 10: a full disk answered `451 4.3.0`, and with no reserve the disk filled again while the
mail was processed (raw mail, its text, the WAL). Now intake refuses with `452 4.3.1` (RFC 3463:
mail system full) before the disk is full, and when it is full all the same.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from mailbot.config import Settings

FULL = "452 4.3.1 Insufficient system storage, please try again later"
DISK_FULL_SQLSTATE = "53100"  # PostgreSQL: disk_full


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it, through SQLAlchemy's wrapper) says the disk is full."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(current, sqlite3.Error) and getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return False


def sqlite_folder(settings: Settings) -> Path | None:
    """The folder of the SQLite database file; None for PostgreSQL or an in-memory database."""
    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent
    return None


def local_paths(settings: Settings) -> list[Path]:
    """Where mailbot writes on this machine: the SQLite file's folder and the attachments."""
    folder = sqlite_folder(settings)
    return [Path(settings.storage.attachments_dir), *([folder] if folder else [])]


def shortfall(settings: Settings) -> str | None:
    """Which file system is below `[storage] min_free_mb`, if any, as '<path>: N MB free'."""
    reserve = settings.storage.min_free_mb * 1024 * 1024
    for path in local_paths(settings):
        existing = next(p for p in (path, *path.parents) if p.exists())
        free = shutil.disk_usage(existing).free
        if free < reserve:
            return f"{path}: {free // (1024 * 1024)} MB free, reserve {settings.storage.min_free_mb} MB"
    return None
