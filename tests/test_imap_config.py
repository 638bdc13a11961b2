"""[[imap.accounts]] in config.toml: defaults, the password rules, and errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import base_sections

from mailbot import config
from mailbot.config import ConfigError, Settings


def load(tmp_path: Path, *accounts: dict[str, Any]) -> Settings:
    data: dict[str, Any] = base_sections(tmp_path, "sqlite:///mailbot.db")
    data["imap"] = {"accounts": list(accounts)}
    return config.parse(data, tmp_path / "config.toml")


def account(**overrides: Any) -> dict[str, Any]:
    return {"name": "support", "host": "imap.example.com", "username": "support", "password": "pw"} | overrides


def test_defaults_and_port_by_tls_mode(tmp_path: Path) -> None:
    implicit, starttls = load(tmp_path, account(), account(name="other", tls="starttls")).imap.accounts
    assert (implicit.port, implicit.tls, starttls.port) == (993, "implicit", 143)
    assert (implicit.folder, implicit.processed_folder, implicit.quarantine_folder) == (
        "INBOX", "Processed", "Quarantine")
    assert implicit.idle and implicit.start == "all" and implicit.idle_renew_seconds <= 600
    assert "pw" not in repr(implicit)
    assert load(tmp_path).imap.accounts == ()


def test_password_file_is_read_beside_the_config_at_each_login(tmp_path: Path) -> None:
    (tmp_path / "imap.secret").write_text("first\n")
    (loaded,) = load(tmp_path, account(password="", password_file="imap.secret")).imap.accounts
    assert loaded.password_file == str(tmp_path / "imap.secret")
    assert loaded.secret() == "first"
    (tmp_path / "imap.secret").write_text("rotated\n")
    assert loaded.secret() == "rotated"


@pytest.mark.parametrize(("accounts", "problem"), [
    ([account(password="")], "imap.accounts: set exactly one of password and password_file"),
    ([account(password_file="x.secret")], "imap.accounts: set exactly one of password and password_file"),
    ([account(password="", password_file="missing.secret")], "missing.secret does not exist"),
    ([account(tls="ssl")], "imap.accounts.tls: "),
    ([account(idle_renew_seconds=1800)], "imap.accounts.idle_renew_seconds: "),
    ([account(processed_folder="INBOX")], "must be three different folders"),
    ([account(), account()], "imap.accounts: account names must be unique"),
    ([account(start="old")], "imap.accounts.start: "),
    ([account(pasword="x")], "imap.accounts.pasword: unknown key; did you mean 'password'?"),
])
def test_mistakes_name_the_key(tmp_path: Path, accounts: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, *accounts)
    assert any(p.startswith("config.toml: ") and problem in p for p in raised.value.problems), raised.value.problems
