"""The private Dovecot harness works: it starts, takes mail, announces IDLE, and restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from dovecot import FULL_CAPABILITIES, Dovecot, mail, running_dovecot
from imapclient import IMAPClient


@pytest.fixture
def server() -> Iterator[Dovecot]:
    with running_dovecot() as dovecot:
        yield dovecot


def test_append_and_bulk_drop_are_both_visible(server: Dovecot) -> None:
    first = server.append(mail(1))
    assert server.drop(mail(n) for n in range(2, 6)) == 4
    assert server.uids() == [first, first + 1, first + 2, first + 3, first + 4]
    assert b"Printer broken 1" in server.messages()[0]


def test_idle_is_offered_and_reports_new_mail(server: Dovecot) -> None:
    with server.client() as watcher:
        assert b"IDLE" in watcher.capabilities()
        watcher.idle()
        server.append(mail(1))
        deadline, seen = time.monotonic() + 10, []
        while not seen and time.monotonic() < deadline:
            seen = [r for r in watcher.idle_check(timeout=1) if r[1] == b"EXISTS"]
        watcher.idle_done()
    assert seen


def test_restart_keeps_the_mailbox(server: Dovecot) -> None:
    server.append(mail(1))
    server.restart()
    assert len(server.uids()) == 1


def test_capabilities_can_be_restricted() -> None:
    without = FULL_CAPABILITIES.replace(" MOVE", "").replace(" IDLE", "")
    with running_dovecot(capabilities=without) as server, server.client() as client:
        assert b"MOVE" not in client.capabilities()
        assert b"IDLE" not in client.capabilities()


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_tls_modes_verify_the_test_certificate(server: Dovecot, mode: str) -> None:
    if mode == "implicit":
        client = IMAPClient(server.host, server.imaps_port, ssl=True, ssl_context=server.tls_context())
    else:
        client = IMAPClient(server.host, server.port, ssl=False)
        client.starttls(server.tls_context())
    with client:
        client.login(server.user, server.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
