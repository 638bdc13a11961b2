"""check_login (behind `mailbot check-config --connect`) over each TLS mode against a real Dovecot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dovecot import Dovecot, running_dovecot
from support import free_port

from mailbot.config import ImapAccount
from mailbot.intake_imap import check_login


@pytest.fixture(scope="module")
def server() -> Iterator[Dovecot]:
    with running_dovecot() as dovecot:  # read-only use: one server for the module
        yield dovecot


def account(server: Dovecot, **overrides: Any) -> ImapAccount:
    values: dict[str, Any] = {"name": "support", "host": "localhost", "port": server.port, "tls": "none",
                              "username": server.user, "password": server.password}
    return ImapAccount(**(values | overrides))


@pytest.mark.parametrize("tls", ["none", "starttls", "implicit"])
def test_every_tls_mode_logs_in(server: Dovecot, tls: str) -> None:
    port = server.imaps_port if tls == "implicit" else server.port
    assert check_login(account(server, tls=tls, port=port, ca_file=str(server.cafile))) is None


def test_untrusted_certificate_is_refused(server: Dovecot) -> None:
    error = check_login(account(server, tls="implicit", port=server.imaps_port))
    assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error


def test_wrong_password_is_named(server: Dovecot) -> None:
    error = check_login(account(server, password="wrong"))
    assert error is not None and "Authentication failed" in error


def test_missing_folder_and_closed_port_are_named(server: Dovecot) -> None:
    assert "cannot select folder 'Nowhere'" in (check_login(account(server, folder="Nowhere")) or "")
    assert "Connection refused" in (check_login(account(server, port=free_port())) or "")
