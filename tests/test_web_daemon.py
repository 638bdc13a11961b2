"""The case page served by the running daemon (a real process, its own event loop): the link
in a real receipt at the test relay opens the page."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

from support import DaemonProcess, Desk, Relay, base_sections, compose, free_port

CUSTOMER = "kunde@customer.test"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/c/\d+/[A-Za-z0-9_-]+")


def start(tmp_path: Path, relay: Relay, daemon_factory: Callable[..., DaemonProcess], **extra: dict[str, object]
          ) -> tuple[Desk, str]:
    port = free_port()
    sections = base_sections(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}", relay=relay.sections(),
                             agents={"addresses": ["anna@example.com"]},
                             web={"enabled": True, "port": port, "base_url": f"http://127.0.0.1:{port}"}, **extra)
    desk = Desk(daemon_factory(sections), relay)
    desk.send(compose(sender=CUSTOMER, subject="Drucker druckt nicht"))
    receipt = desk.mails_to(CUSTOMER)[0]
    found = LINK.search(receipt.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert found, receipt
    return desk, found[0]


def test_the_daemon_serves_the_page_behind_the_receipt_link(
        tmp_path: Path, relay: Relay, daemon_factory: Callable[..., DaemonProcess]) -> None:
    desk, link = start(tmp_path, relay, daemon_factory)
    with urllib.request.urlopen(link, timeout=10) as response:
        html = response.read().decode()
        assert response.status == 200 and response.headers["Referrer-Policy"] == "no-referrer"
    assert "Drucker druckt nicht" in html and 'id="status">eingegangen<' in html
    assert link.rsplit("/", 1)[1] not in desk.daemon.log()  # the secret stays out of the journal
