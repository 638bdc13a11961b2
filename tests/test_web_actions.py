"""The case page's actions and the assessment agents give a case: callback request (urgent, agents
mailed at once, one at a time), "my problem is solved", their CSRF tokens and rate limits; the
`#priority`, `#estimate`, `#callback done` commands; priority from the incoming mail; the CLI.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import Session, col, select
from support import ROOT, compose
from test_web_page import AGENT, AGENT_AUTH, CUSTOMER, Site, make_site, opened

from mailbot.agents import CommandError, Commands, read_commands
from mailbot.models import Message, Outbox

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    with make_site(tmp_path, db_url, hours={"priority_targets": {"urgent": 1.0, "high": 4.0}},
                   web={"action_limit": 3, "base_url": "http://support.example.com"}) as made:
        yield made


def outbox(site: Site, kind: str) -> list[Outbox]:
    with Session(site.engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.kind == kind).order_by(col(Outbox.id))).all())


async def submit(client: TestClient[Any, Any], site: Site, path: str, fields: dict[str, str], *,
                 token: str | None = None, cookie: bool = True) -> list[tuple[int, str]]:
    """GET the page (its form token and cookie), then POST `fields`; returns both answers."""
    page = await client.get(site.link(number(path)))
    html = await page.text()
    found = CSRF.search(html)
    if not cookie:
        client.session.cookie_jar.clear()
    data = {"csrf": token if token is not None else (found[1] if found else ""), **fields}
    answer = await client.post(path, data=data, allow_redirects=False)
    return [(page.status, html), (answer.status, await answer.text())]


def post(site: Site, path: str, fields: dict[str, str], **kwargs: Any) -> list[tuple[int, str]]:
    return site.browse(lambda client: submit(client, site, path, fields, **kwargs))


def number(path: str) -> int:
    return int(path.split("/")[2])


def test_callback_request_makes_the_case_urgent_and_mails_the_agents_once(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    case_number, _ = opened(site, sender=CUSTOMER)
    before = site.case(case_number)
    link = site.link(case_number)
    (_, _), (bad, html) = post(site, f"{link}/callback", {"phone": "12"})
    assert bad == 400 and "Bitte geben Sie eine Telefonnummer an" in html
    assert f'action="../../../c/{case_number}/' in html  # answered at .../callback: links still lead home
    assert site.case(case_number).callback_requested_at is None
    caplog.set_level(logging.INFO, logger="mailbot")
    (_, page), (status, _) = post(site, f"{link}/callback", {"phone": "+49 30 1234567", "note": "Ab 14 Uhr\x00."})
    assert 'id="callback-form"' in page and status == 303
    case = site.case(case_number)
    assert case.priority == "urgent" and case.callback_phone == "+49 30 1234567"
    assert case.answer_due is not None and before.answer_due is not None and case.answer_due < before.answer_due
    mails = outbox(site, "callback_requested")
    assert [row.recipient for row in mails] == [AGENT]
    body = message_from_bytes(mails[0].raw, policy=default_policy).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "+49 30 1234567" in body and "Ab 14 Uhr." in body
    assert any(getattr(r, "fields", {}).get("action") == "callback" for r in caplog.records
               if getattr(r, "event", None) == "page-action")

    code, html, _ = site.get(f"{link}?done=callback")
    assert code == 200 and 'id="priority">dringend<' in html and 'id="callback">angefordert am' in html
    assert 'id="callback-form"' not in html and "Rückruf angefordert" in html
    (_, _), (again, html) = post(site, f"{link}/callback", {"phone": "+49 30 1234567"})
    assert again == 409 and "bereits angefordert" in html
    assert len(outbox(site, "callback_requested")) == 1

    site.mail(compose(subject=f"Re: [#{case.token}] {case.subject}", sender=AGENT, headers=AGENT_AUTH,
                      body="#callback done\r\n#estimate 2d\r\nWir haben telefoniert.\r\n"))
    case = site.case(case_number)
    assert case.callback_requested_at is None and case.estimate_minutes == 2 * 24 * 60
    code, html, _ = site.get(link)
    assert 'id="callback-form"' in html and 'id="estimate">etwa 2 Tage' in html


def test_forms_need_their_cookie_and_token(site: Site) -> None:
    case_number, _ = opened(site)
    other, _ = opened(site, sender="zweite@customer.test")
    link = site.link(case_number)
    other_token = CSRF.search(site.get(site.link(other))[1])
    assert other_token
    for kwargs in ({"cookie": False}, {"token": "0" * 32}, {"token": other_token[1]}):
        (_, _), (status, html) = post(site, f"{link}/solved", {}, **kwargs)
        assert status == 403 and "Formular ist abgelaufen" in html, kwargs
    assert site.case(case_number).status == "new" and not outbox(site, "status_changed")


def test_actions_are_rate_limited_per_case(site: Site) -> None:
    case_number, _ = opened(site)
    link = site.link(case_number)

    async def four(client: TestClient[Any, Any]) -> list[int]:
        return [(await submit(client, site, f"{link}/callback", {"phone": "12"}))[1][0] for _ in range(4)]

    assert site.browse(four) == [400, 400, 400, 429]
    assert site.case(case_number).callback_requested_at is None


def test_my_problem_is_solved_resolves_the_case_with_the_status_mail(site: Site) -> None:
    case_number, _ = opened(site, sender=CUSTOMER)
    link = site.link(case_number)
    (_, page), (status, _) = post(site, f"{link}/solved", {})
    assert 'id="solved-form"' in page and status == 303
    assert site.case(case_number).status == "resolved"
    assert [row.recipient for row in outbox(site, "status_changed")] == [CUSTOMER]
    with Session(site.engine) as session:
        recorded = session.exec(select(Message).where(Message.kind == "web")).all()
    assert [(m.subject, m.from_addr) for m in recorded] == [("solved", CUSTOMER)]
    code, html, _ = site.get(link)
    assert 'id="status">erledigt<' in html and 'id="solved-form"' not in html and "Als gelöst gemeldet" in html
    (_, _), (again, _) = post(site, f"{link}/solved", {})
    assert again == 409 and len(outbox(site, "status_changed")) == 1


@pytest.mark.parametrize(("text", "commands", "rest"), [
    ("#priority urgent\nText", Commands(priority="urgent"), "Text"),
    ("#Priority LOW", Commands(priority="low"), ""),
    ("#estimate 4h\n#callback done\nOk", Commands(estimate_minutes=240, callback_done=True), "Ok"),
    ("#estimate 30m", Commands(estimate_minutes=30), ""),
    ("#estimate 1w", Commands(estimate_minutes=7 * 24 * 60), ""),
])
def test_assessment_commands_are_read(text: str, commands: Commands, rest: str) -> None:
    assert read_commands(text) == (commands, rest)


@pytest.mark.parametrize("line", ["#priority", "#priority asap", "#estimate soon", "#estimate 0h",
                                  "#estimate 4 h", "#callback", "#callback later"])
def test_malformed_assessment_commands_are_errors(line: str) -> None:
    with pytest.raises(CommandError):
        read_commands(line)


def test_agent_priority_moves_the_answer_target_and_shows_on_the_page(site: Site) -> None:
    case_number, tagged = opened(site)
    due = site.case(case_number).answer_due
    row = site.mail(compose(subject=tagged, sender=AGENT, headers=AGENT_AUTH, body="#priority high\r\n"))
    assert row.verdict == "reply" and "priority_changed" in (row.trace or "")
    case = site.case(case_number)
    assert case.priority == "high" and case.answer_due is not None and due is not None and case.answer_due < due
    assert not outbox(site, "agent_reply")  # commands alone mail nobody
    assert 'id="priority">hoch<' in site.get(site.link(case_number))[1]


@pytest.mark.parametrize(("headers", "subject", "expected"), [
    ({}, "Drucker", "normal"),
    ({"Importance": "High"}, "Drucker", "high"),
    ({"X-Priority": "1 (Highest)"}, "Drucker", "high"),
    ({"X-Priority": "3"}, "Drucker", "normal"),
    ({}, "DRINGEND: Drucker", "high"),
    ({}, "Nicht dringender Drucker", "normal"),
])
def test_priority_from_the_incoming_mail_where_allowed(tmp_path: Path, sqlite_url: str, headers: dict[str, str],
                                                       subject: str, expected: str) -> None:
    with make_site(tmp_path, sqlite_url, priority={"from_mail": True}) as site:
        number_, _ = opened(site, subject=subject, headers=headers)
        assert site.case(number_).priority == expected
    (tmp_path / "off").mkdir()
    with make_site(tmp_path / "off", sqlite_url.replace("mailbot.db", "off.db")) as site:
        number_, _ = opened(site, subject=subject, headers=headers)
        assert site.case(number_).priority == "normal"  # off by default


@pytest.fixture
def sqlite_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with make_site(tmp_path, sqlite_url) as made:
        yield made


def test_cli_sets_and_lists_priority(sqlite_site: Site) -> None:
    site = sqlite_site  # the CLI is the same on both backends, and each run costs a process start
    first, _ = opened(site)
    opened(site, sender="zweite@customer.test")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mailbot", "--config", site.settings.source, *args],
                              capture_output=True, text=True, cwd=str(ROOT), timeout=60)

    result = cli("case", "priority", str(first), "urgent")
    assert (result.returncode, result.stdout) == (0, f"case {first}: priority normal -> urgent\n"), result.stderr
    listed = json.loads(cli("cases", "--priority", "urgent", "--json").stdout)
    assert [(c["number"], c["priority"]) for c in listed] == [(first, "urgent")]
    shown = json.loads(cli("case", "show", str(first), "--json").stdout)
    assert shown["priority"] == "urgent"
    due = site.case(first).answer_due
    assert due is not None and due - site.case(first).created <= timedelta(days=4)
