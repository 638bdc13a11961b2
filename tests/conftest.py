"""Fixtures: the database backends (SQLite always, PostgreSQL where MAILBOT_TEST_POSTGRES_URL
is set), a recording relay (real aiosmtpd), and daemons started as processes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import DaemonProcess, Relay, free_port, write_config


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mailbot.db'}"
        return
    base = os.environ.get("MAILBOT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PostgreSQL backend: set MAILBOT_TEST_POSTGRES_URL (.ci/run does)")
    name = f"mailbot_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mailbot.db'}"


@pytest.fixture
def relay() -> Iterator[Relay]:
    recorder = Relay(port=free_port())
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons from config sections; every one still running is killed afterwards."""
    started: list[DaemonProcess] = []

    def make(sections: dict[str, dict[str, Any]], name: str = "config.toml",
             accounts: Sequence[dict[str, Any]] = ()) -> DaemonProcess:
        path = write_config(tmp_path / name, sections, accounts)
        process = DaemonProcess(path, tmp_path / "mailbot.log")
        started.append(process)
        return process.start()

    yield make
    for process in started:
        process.close()
