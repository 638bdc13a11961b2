"""sd_notify against real AF_UNIX datagram sockets, standing in for systemd's end of the protocol."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailbot import sdnotify


class Listener:
    """systemd's side: a bound datagram socket whose received datagrams the test reads."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)  # a datagram already sent is queued; nothing queued -> error

    def datagrams(self) -> list[bytes]:
        received = []
        while True:
            try:
                received.append(self.sock.recv(4096))
            except BlockingIOError:
                return received


@pytest.fixture
def path_listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    with tempfile.TemporaryDirectory(prefix="sdn") as directory:  # short: sun_path holds 108 bytes
        address = str(Path(directory) / "notify")
        listener = Listener(address)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        yield listener
        listener.sock.close()


@pytest.mark.parametrize(
    ("send", "datagram"),
    [
        (lambda: sdnotify.ready(), b"READY=1"),
        (lambda: sdnotify.ready("listening on :8025"), b"READY=1\nSTATUS=listening on :8025"),
        (lambda: sdnotify.stopping(), b"STOPPING=1"),
        (lambda: sdnotify.stopping("draining outbox"), b"STOPPING=1\nSTATUS=draining outbox"),
        (lambda: sdnotify.watchdog(), b"WATCHDOG=1"),
        (lambda: sdnotify.status("relay down:\nrefused"), b"STATUS=relay down: refused"),
        (lambda: sdnotify.status("Übermittlung läuft"), "STATUS=Übermittlung läuft".encode()),
    ],
)
def test_sends_exact_datagram(path_listener: Listener, send: Callable[[], bool], datagram: bytes) -> None:
    assert send() is True
    assert path_listener.datagrams() == [datagram]


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"mailbot-test-{uuid.uuid4().hex}"
    listener = Listener("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready() and sdnotify.watchdog()
        assert listener.datagrams() == [b"READY=1", b"WATCHDOG=1"]
    finally:
        listener.sock.close()


@pytest.mark.parametrize("value", [None, ""])
def test_no_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert not any([sdnotify.ready("x"), sdnotify.stopping(), sdnotify.watchdog(), sdnotify.status("x")])


def test_broken_socket_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory(prefix="sdn") as directory:
        monkeypatch.setenv("NOTIFY_SOCKET", str(Path(directory) / "gone"))
        with pytest.raises(FileNotFoundError):
            sdnotify.ready()


@pytest.mark.parametrize(
    ("usec", "pid", "interval"),
    [
        (None, None, None),
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("30000000", "other", None),
        ("30000000", "junk", None),
        ("500000", None, 0.25),
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None,
                           interval: float | None) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            own = os.getpid()
            monkeypatch.setenv(name, {"self": str(own), "other": str(own + 1)}.get(value, value))
    assert sdnotify.watchdog_interval() == interval
