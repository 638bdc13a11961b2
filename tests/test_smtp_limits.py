"""SMTP on the open internet: connection caps, rates, recipients, a byte cap on DATA, idle
timeout, descriptor shortage and STARTTLS, each against the real daemon (issue 10)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from pathlib import Path

import pytest
from support import DaemonProcess, base_sections, compose, self_signed, wait_for
from test_smtp_intake import send


def greeting(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def first_line(port: int) -> bytes:
    with connect(port) as sock:
        return greeting(sock)


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


@pytest.mark.slow
def test_300_idle_connections_from_one_address_leave_room_for_others(
    tmp_path: Path, sqlite_url: str, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    daemon = daemon_factory(base_sections(tmp_path, sqlite_url, smtp={
        "max_connections": 100, "max_connections_per_ip": 20, "idle_timeout_seconds": 4.0}))
    idle = [connect(daemon.port) for _ in range(300)]
    try:
        answers = [greeting(sock)[:3] for sock in idle]
        assert answers.count(b"220") == 20 and answers.count(b"421") == 280
        # Someone else is served meanwhile (127.0.0.2 is loopback too, a different address).
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10, source_address=("127.0.0.2", 0)) as client:
            client.sendmail("kunde@customer.test", ["service@example.com"], compose(message_id="other"))
        # The idle ones are told why they are dropped.
        first = next(sock for sock, answer in zip(idle, answers, strict=True) if answer == b"220")
        assert greeting(first).startswith(b"421 4.4.2")
        # And once they are gone, the address may connect again.
        wait_for(lambda: first_line(daemon.port).startswith(b"220"), timeout=15)
    finally:
        for sock in idle:
            sock.close()
    refusals = [line for line in daemon.log().splitlines() if "limit=max_connections_per_ip" in line]
    assert len(refusals) == 1  # logged once a minute, not 280 times


def test_recipients_rate_and_an_endless_data_line_are_capped(
    tmp_path: Path, sqlite_url: str, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    daemon = daemon_factory(base_sections(tmp_path, sqlite_url, service={"addresses": ["service@example.com"]},
                                          smtp={"max_recipients": 2, "max_mails_per_ip_per_minute": 3,
                                                "max_message_size": 65536}))
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.ehlo()
        client.mail("kunde@customer.test")
        assert client.rcpt("service@example.com")[0] == 250
        assert client.rcpt("service@example.com")[0] == 250
        assert client.rcpt("service@example.com") == (452, b"4.5.3 Too many recipients")
        for _ in range(2):
            client.rset()
            assert client.mail("kunde@customer.test")[0] == 250
        client.rset()
        code, text = client.mail("kunde@customer.test")  # the fourth mail this minute
        assert (code, text[:5]) == (451, b"4.7.1")

    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10, source_address=("127.0.0.3", 0)) as sock:
        file = sock.makefile("rwb")
        assert file.readline().startswith(b"220")
        for command in (b"HELO x", b"MAIL FROM:<a@customer.test>", b"RCPT TO:<service@example.com>", b"DATA"):
            file.write(command + b"\r\n")
            file.flush()
            while (line := file.readline())[3:4] == b"-":
                pass
        assert line.startswith(b"354")
        with pytest.raises(OSError):  # a line that never ends, far past max_message_size
            for _ in range(100):
                sock.sendall(b"x" * 65536)
        assert b"552 5.3.4" in sock.recv(4096)
    assert daemon.proc is not None and daemon.proc.poll() is None


def test_starttls_offered_and_required(tmp_path: Path, sqlite_url: str, daemon_factory) -> None:  # type: ignore[no-untyped-def]
    cert, key = self_signed(tmp_path)
    daemon = daemon_factory(base_sections(tmp_path, sqlite_url, smtp={
        "tls_cert": str(cert), "tls_key": str(key), "require_tls": True}))
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.mail("kunde@customer.test")[0] == 530  # plain text is refused
        client.starttls(context=ssl.create_default_context(cafile=str(cert)))
        client.ehlo()
        client.sendmail("kunde@customer.test", ["service@example.com"], compose(message_id="secret"))
    wait_for(lambda: "event=stored" in daemon.log())


@pytest.mark.slow
def test_out_of_file_descriptors_pauses_accepting_and_logs_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    from support import write_config

    path = write_config(tmp_path / "config.toml", base_sections(tmp_path, sqlite_url, smtp={
        "max_connections": 1000, "max_connections_per_ip": 1000}))
    daemon = DaemonProcess(path, tmp_path / "mailbot.log").start(wrapper=["prlimit", "--nofile=64:64", "--"])
    clients: list[socket.socket] = []
    try:
        for _ in range(120):
            clients.append(connect(daemon.port))
        wait_for(lambda: "event=accept-paused" in daemon.log())
        for sock in clients:
            sock.close()
        send(daemon.port, compose(message_id="after"))  # served again
    finally:
        for sock in clients:
            sock.close()
        daemon.close()
    assert daemon.log().count("event=accept-paused") == 1
