"""The customer's case page through aiohttp's test client, on a real database (both backends):
mails go through the real spool and pipeline first, then the page must show what the customer
side may see (status in plain words, history, refused mails with their reason) and nothing else
(internal notes, other cases), answer wrong, old and relinked links alike, and send its headers.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support import ROOT, SECRET, base_sections, compose, database_from_before, write_config

from mailbot import config, db, inbox, pipeline, selfcheck
from mailbot.mail import Envelope
from mailbot.models import Case, InboundSpool, Outbox
from mailbot.parse import reverse_path
from mailbot.web import links
from mailbot.web.app import SECURITY_HEADERS, CasePage
from mailbot.web.guard import client_address

T = TypeVar("T")
CUSTOMER = "kunde@customer.test"
COLLEAGUE = "kollegin@customer.test"
AGENT = "anna@example.com"
# What the MTA in front (authserv-id mx.example.com, trusted in the config) adds to an agent's signed mail.
AGENT_AUTH = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com; dmarc=pass "
                                        "header.from=example.com"}
CUSTOMER_AUTH = {"Authentication-Results": "mx.example.com; dkim=pass header.d=customer.test; dmarc=pass "
                                           "header.from=customer.test"}  # only then may a mail add its CCs
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 64


@dataclass
class Site:
    """A configured mailbot with its case page, fed through the real spool and pipeline."""

    settings: config.Settings
    engine: Engine

    def mail(self, raw: bytes) -> InboundSpool:
        envelope = Envelope(reverse_path(raw), ("service@example.com",), "smtp")  # the sender's own server
        stored = inbox.store(self.engine, raw, envelope)
        pipeline.process(self.engine, self.settings, stored.spool_id)
        with Session(self.engine) as session:
            row = session.get(InboundSpool, stored.spool_id)
            assert row is not None
            return row

    def case(self, number: int) -> Case:
        with Session(self.engine) as session:
            return session.exec(select(Case).where(Case.number == number)).one()

    def link(self, number: int) -> str:
        return links.url(self.settings, self.case(number)).removeprefix(self.settings.web.base_url)

    def browse(self, action: Callable[[TestClient[Any, Any]], Awaitable[T]]) -> T:
        async def run() -> T:
            app = CasePage(self.engine, lambda: self.settings).app()
            async with TestClient(TestServer(app)) as client:
                return await action(client)

        return asyncio.run(run())

    def get(self, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
        async def fetch(client: TestClient[Any, Any]) -> tuple[int, str, dict[str, str]]:
            response = await client.get(path, headers=headers)
            return response.status, await response.text(), dict(response.headers)

        return self.browse(fetch)


@contextmanager
def make_site(tmp_path: Path, db_url: str, **overrides: dict[str, Any]) -> Iterator[Site]:
    web = {"enabled": True, "base_url": "https://support.example.com", **overrides.pop("web", {})}
    templates = {"languages": ["de", "en"], **overrides.pop("templates", {})}
    sections = base_sections(tmp_path, db_url, agents={"addresses": [AGENT]}, web=web, templates=templates,
                             security={"trusted_authserv_ids": ["mx.example.com"]}, **overrides)
    settings = config.load(write_config(tmp_path / "config.toml", sections))
    engine = db.make_engine(settings.database.url)
    try:
        yield Site(settings, engine)
    finally:
        engine.dispose()


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    with make_site(tmp_path, db_url) as made:
        yield made


@pytest.fixture
def sqlite_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with make_site(tmp_path, sqlite_url) as made:
        yield made


def opened(site: Site, **fields: Any) -> tuple[int, str]:
    """Open a case by mail; returns its number and its tagged subject for replies."""
    row = site.mail(compose(**fields))
    assert row.verdict == "new_case" and row.case_number, row.reason
    case = site.case(row.case_number)
    return row.case_number, f"Re: [#{case.token}] {case.subject}"


def with_file(subject: str, sender: str, payload: bytes, filename: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "service@example.com", subject
    message["Message-ID"] = f"<file.{time.monotonic_ns()}@customer.test>"
    message.set_content("Anbei die Datei.\n")
    maintype, subtype = ("image", "png") if payload.startswith(b"\x89PNG") else ("application", "octet-stream")
    message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def test_receipt_link_opens_the_page_with_status_history_and_headers(site: Site) -> None:
    number, tagged = opened(site, sender=f"Karl Kunde <{CUSTOMER}>", subject="Drucker <b>streikt</b>",
                            headers={"Cc": f"Kora Kollegin <{COLLEAGUE}>", **CUSTOMER_AUTH},
                            body="Hallo,\r\nder Drucker druckt nicht.\r\n")
    with Session(site.engine) as session:
        receipt = session.exec(select(Outbox).where(Outbox.kind == "receipt", Outbox.recipient == CUSTOMER)).one()
    link = links.url(site.settings, site.case(number))
    assert link.startswith(f"https://support.example.com/c/{number}/")
    assert link in receipt.raw.decode()

    site.mail(compose(subject=tagged, sender=f"Kora Kollegin <{COLLEAGUE}>",
                      body="Ergänzung der Kollegin.\r\n\r\nAm Montag schrieb Karl:\r\n> der Drucker druckt nicht.\r\n"))
    site.mail(compose(subject=tagged, sender=AGENT, headers=AGENT_AUTH,
                      body="#internal\r\nGEHEIME-NOTIZ: Kunde zahlt spät.\r\n"))
    site.mail(compose(subject=tagged, sender=AGENT, headers=AGENT_AUTH,
                      body="#status waiting\r\nBitte senden Sie die Modellnummer.\r\n"))

    status, html, headers = site.get(site.link(number))
    assert status == 200, html
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    assert "<script" not in html
    cookie = headers["Set-Cookie"]  # the form token's cookie: https only, never sent cross-site
    assert all(attribute in cookie for attribute in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"))
    assert "Drucker &lt;b&gt;streikt&lt;/b&gt;" in html and "<b>streikt" not in html  # autoescaped
    assert re.search(r'id="status">wartet auf Ihre Antwort<', html)
    assert "der Drucker druckt nicht." in html
    assert "Kora Kollegin" in html and "Ergänzung der Kollegin." in html
    assert html.count("Zitierten Verlauf anzeigen") == 1  # the colleague's quote is folded away
    assert "Bitte senden Sie die Modellnummer." in html and "#status" not in html
    assert "GEHEIME-NOTIZ" not in html and "#internal" not in html
    assert "Ist meine E-Mail angekommen?" in html and "dem Vorgang hinzugefügt" in html


def test_refused_mail_is_listed_with_its_reason_and_what_to_do(site: Site) -> None:
    number, tagged = opened(site, sender=CUSTOMER)
    refused = site.mail(with_file(tagged, CUSTOMER, b"MZ\x90\x00\x03" + b"\0" * 200, "rechnung.exe"))
    assert (refused.verdict, refused.reason, refused.case_number) == ("rejected", "attachment_type", number)

    status, html, _ = site.get(site.link(number))
    assert status == 200
    assert "nicht angenommen: Anhang eines nicht erlaubten Dateityps" in html
    assert "ohne den Anhang noch einmal" in html


def test_wrong_missing_relinked_and_rotated_links_get_the_same_404(site: Site, tmp_path: Path) -> None:
    number, _ = opened(site)
    good = site.link(number)
    other, _ = opened(site, sender="zweite@customer.test")
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    missing = f"/c/99999/{good.rsplit('/', 1)[1]}"
    foreign = f"/c/{other}/{good.rsplit('/', 1)[1]}"
    answers = {path: site.get(path) for path in (wrong, missing, foreign)}
    bodies = {(status, body) for status, body, _ in answers.values()}
    assert len(bodies) == 1 and next(iter(bodies))[0] == 404
    assert site.get("/nowhere")[0] == 404
    assert all(headers["Cache-Control"] == "no-store" for _, _, headers in answers.values())

    rotated = site.settings.model_copy(update={"tokens": site.settings.tokens.model_copy(
        update={"secret": "a-brand-new-secret-0123456789", "previous_secrets": (SECRET,)})})
    site.settings = rotated
    assert site.get(good)[0] == 200  # the previous secret still verifies
    assert links.url(rotated, site.case(number)).endswith(site.link(number)) and site.link(number) != good

    with db.session(site.engine) as session:
        case = session.exec(select(Case).where(Case.number == number)).one()
        case.link_salt = links.new_salt()
        session.add(case)
    assert site.get(good)[0] == 404
    assert site.get(site.link(number))[0] == 200


def test_cli_prints_the_link_and_relink_invalidates_it(sqlite_site: Site) -> None:
    site = sqlite_site  # the CLI is the same on both backends, and each run costs a process start
    number, _ = opened(site)

    def cli(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "mailbot", "--config", site.settings.source, *args],
                                capture_output=True, text=True, cwd=str(ROOT), timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    old = cli("case", "link", str(number))
    assert old == links.url(site.settings, site.case(number))
    new = cli("case", "relink", str(number))
    assert new != old and new == links.url(site.settings, site.case(number))
    assert site.get(old.removeprefix("https://support.example.com"))[0] == 404
    assert site.get(new.removeprefix("https://support.example.com"))[0] == 200


def test_attachments_download_with_their_checked_type_and_only_from_their_case(site: Site) -> None:
    number, tagged = opened(site)
    site.mail(with_file(tagged, CUSTOMER, PNG, "../../etc/Foto Ü.png"))
    other, _ = opened(site, sender="zweite@customer.test")
    status, html, _ = site.get(site.link(number))
    found = re.search(r'href="([^"]+/files/(\d+))" download>Foto Ü.png<', html)
    assert status == 200 and found, html
    page = site.link(number)

    async def download(client: TestClient[Any, Any]) -> tuple[int, bytes, dict[str, str]]:
        response = await client.get(f"{page}/files/{found[2]}")
        return response.status, await response.read(), dict(response.headers)

    code, body, headers = site.browse(download)
    assert (code, body) == (200, PNG)
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith('attachment; filename="Foto _.png"; filename*=UTF-8')
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert site.get(f"{site.link(other)}/files/{found[2]}")[0] == 404


@pytest.mark.parametrize(("language", "words"), [
    ("de", {"new": "eingegangen", "open": "in Bearbeitung", "waiting": "wartet auf Ihre Antwort",
            "resolved": "erledigt", "closed": "abgeschlossen"}),
    ("en", {"new": "received", "open": "in progress", "waiting": "waiting for your reply",
            "resolved": "solved", "closed": "closed"}),
])
def test_every_status_in_plain_words_of_the_case_language(tmp_path: Path, sqlite_url: str, language: str,
                                                           words: dict[str, str]) -> None:
    with make_site(tmp_path, sqlite_url) as site:
        number, _ = opened(site, headers={"Content-Language": language})
        assert site.case(number).language == language
        for status, word in words.items():
            with db.session(site.engine) as session:
                case = session.exec(select(Case).where(Case.number == number)).one()
                case.status = status
                session.add(case)
            code, html, _ = site.get(site.link(number))
            assert code == 200 and f'id="status">{word}<' in html, (status, html)
            assert f'<html lang="{language}">' in html
            due = "Antwort erwartet bis" if language == "de" else "Answer expected by"
            assert (due in html) == (status in ("new", "open")), status


def test_repeated_failures_from_one_address_are_slowed_down(tmp_path: Path, sqlite_url: str) -> None:
    with make_site(tmp_path, sqlite_url, web={"failure_limit": 3, "failure_delay_seconds": 0.6}) as site:
        number, _ = opened(site)
        good = site.link(number)

        async def timed(client: TestClient[Any, Any]) -> list[tuple[int, float]]:
            answers = []
            for path in [f"/c/{number}/wrong{n}" for n in range(4)] + [good]:
                start = time.monotonic()
                response = await client.get(path)
                answers.append((response.status, time.monotonic() - start))
            return answers

        answers = site.browse(timed)
        assert [status for status, _ in answers] == [404, 404, 404, 404, 200]
        assert all(elapsed < 0.5 for _, elapsed in answers[:3])
        assert all(elapsed >= 0.6 for _, elapsed in answers[3:])  # the right link too: no oracle


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("203.0.113.9", None, "203.0.113.9"),
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: its header is ignored
    ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
    ("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),  # the client can forge the left part
    ("127.0.0.1", "10.0.0.2", "127.0.0.1"),
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
])
def test_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(
        peer: str, forwarded: str | None, expected: str) -> None:
    trusted = config.WebSettings(trusted_proxies=("127.0.0.1", "10.0.0.0/8")).trusted_proxies  # type: ignore[arg-type]
    assert client_address(peer, forwarded, trusted) == expected


@pytest.mark.parametrize(("change", "expected"), [
    ({"web": {"port": "8080"}}, "config.toml: web.port: expected an integer"),
    ({"web": {"base_url": "support.example.com"}}, "config.toml: web.base_url: "),
    ({"web": {"trusted_proxies": ["proxy.local"]}}, "config.toml: web.trusted_proxies: "),
    ({"web": {"failure_delay_seconds": 600}}, "config.toml: web.failure_delay_seconds: "),
    ({"ops": {"prot": 9025}}, "config.toml: ops.prot: unknown key"),
    ({"priority": {"from_mail": "yes"}}, "config.toml: priority.from_mail: expected true or false"),
    ({"hours": {"priority_targets": {"asap": 1.0}}}, "config.toml: hours.priority_targets.asap"),
])
def test_check_config_names_bad_web_keys(change: dict[str, dict[str, Any]], expected: str) -> None:
    document = {"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
                "tokens": {"secret": SECRET}, **change}
    with pytest.raises(config.ConfigError) as raised:
        config.parse(document, Path("config.toml"))
    assert any(problem.startswith(expected) for problem in raised.value.problems), raised.value.problems


def test_check_config_renders_the_page_templates(tmp_path: Path, sqlite_url: str) -> None:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    words = tmp_path / "templates" / "web" / "en.j2"
    words.write_text(words.read_text().replace('{% set arrivals = "Did my email arrive?" %}', ""))
    with make_site(tmp_path, sqlite_url, templates={"dir": str(tmp_path / "templates")}) as site:
        problems = selfcheck.template_problems(site.settings)
    assert len(problems) == 2 and all("case.html.j2 (en): UndefinedError" in p and "arrivals" in p
                                      for p in problems), problems


def test_a_database_from_before_the_case_page_gets_its_columns(db_url: str) -> None:
    engine = database_from_before(db_url, [
        *(f"ALTER TABLE cases DROP COLUMN {column}" for column in ("link_salt", "estimate_minutes", "callback_phone")),
        "INSERT INTO cases (number, subject, status, requester, language, created, updated, overdue_logged) "
        "VALUES (10001, 'Alt', 'open', 'k@customer.test', 'de', '2026-01-01', '2026-01-01', false)",
    ])
    with db.session(engine) as session:
        found = session.exec(select(Case.link_salt, Case.priority, Case.estimate_minutes, Case.callback_phone)).all()
    engine.dispose()
    assert found == [("", "normal", None, None)]
