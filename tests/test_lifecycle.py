"""Case lifecycle by mail, over SMTP to the running daemon: matching, participants, closed
cases and the new-case policy. Each test reads the verdict the daemon recorded and the mail
the relay received.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from support import Desk, Relay, base_sections, compose

Start = Callable[..., Desk]


@pytest.fixture
def start(tmp_path: Path, db_url: str, relay: Relay, daemon_factory) -> Start:  # type: ignore[no-untyped-def]
    def make(**sections: dict[str, Any]) -> Desk:
        return Desk(daemon_factory(base_sections(tmp_path, db_url, relay=relay.sections(), **sections)), relay)

    return make


def open_case(desk: Desk, sender: str = "kunde@customer.test", **fields: Any) -> tuple[int, Message]:
    row = desk.send(compose(sender=sender, **fields))
    assert row.verdict == "new_case" and row.case_number
    return row.case_number, desk.mails_to(sender)[-1]


def test_reply_with_token_is_appended_with_its_new_text_and_confirmed(start: Start) -> None:
    desk = start()
    number, receipt = open_case(desk, message_id="open-1")
    reply = compose(
        subject=f"AW: {receipt['Subject']}", message_id="reply-1",
        body="Jetzt geht es wieder.\r\n\r\nAm 23.11.2026 um 10:00 schrieb Support:\r\n> Ihre Anfrage\r\n",
    )
    row = desk.send(reply)
    assert (row.verdict, row.case_number) == ("reply", number)
    assert "match_token" in (row.trace or "")
    confirmation = desk.mails_to("kunde@customer.test", 2)[-1]
    assert confirmation["In-Reply-To"] == "<reply-1@customer.test>"
    assert str(confirmation["Subject"]).startswith(f"[#{desk.case(number)['token']}]")
    incoming = [m for m in desk.case(number)["messages"] if m["direction"] == "in"]
    assert [m["message_id"] for m in incoming] == ["<open-1@customer.test>", "<reply-1@customer.test>"]
    shown = desk.cli("case", "show", str(number))
    assert "Jetzt geht es wieder." in shown.stdout and "> Ihre Anfrage" not in shown.stdout


def test_reply_without_token_matches_by_in_reply_to(start: Start) -> None:
    desk = start()
    number, receipt = open_case(desk)
    row = desk.send(compose(subject="Re: meine Anfrage", headers={"In-Reply-To": receipt["Message-ID"]}))
    assert (row.verdict, row.case_number) == ("reply", number)
    assert (row.trace or "").split(",")[-3:] == ["match_headers", "participant", "case_open"]


@pytest.mark.parametrize("policy", ["new_case", "reject"])
def test_stranger_with_a_real_token_gets_what_a_wrong_token_gets(start: Start, policy: str) -> None:
    """Issue 9, token oracle: the answer must not tell a guesser that the token was right."""
    desk = start(policy={"unknown_token": policy})
    number, receipt = open_case(desk)
    token = desk.case(number)["token"]
    wrong = token[:-4] + ("ZZZZ" if not token.endswith("ZZZZ") else "YYYY")
    right_row = desk.send(compose(subject=f"Re: {receipt['Subject']}", sender="fremder@other.test"))
    wrong_row = desk.send(compose(subject=f"Re: [#{wrong}] Ihre Anfrage: Drucker druckt nicht",
                                  sender="fremd2@other.test"))
    assert "stranger" in (right_row.trace or "") and "match_none" in (wrong_row.trace or "")
    assert "token_failed" in (right_row.trace or "") and "token_failed" in (wrong_row.trace or "")
    assert right_row.verdict == wrong_row.verdict == ("new_case" if policy == "new_case" else "rejected")
    right, wrong_mail = desk.mails_to("fremder@other.test")[0], desk.mails_to("fremd2@other.test")[0]
    assert right["X-Mailbot-Notice"] == wrong_mail["X-Mailbot-Notice"]

    def shape(mail: Message, case: int | None) -> str:
        """The notice without the token the sender quoted, and its own case's token and number."""
        text = str(mail.get_content()).replace(token, "T").replace(wrong, "T")
        return text.replace(desk.case(case)["token"], "T").replace(str(case), "N") if case else text

    assert shape(right, right_row.case_number) == shape(wrong_mail, wrong_row.case_number)
    assert len(desk.case(number)["messages"]) == 2  # the opening mail and its receipt only


def test_cc_become_participants_get_case_mail_and_may_reply(start: Start) -> None:
    desk = start(policy={"cc_participants": "opening_mail"})
    number, _ = open_case(desk, headers={"Cc": "Kollegin <kollegin@customer.test>, service@example.com"})
    roles = {p["address"]: p["role"] for p in desk.case(number)["participants"]}
    assert roles == {"kunde@customer.test": "requester", "kollegin@customer.test": "cc"}
    row = desk.send(compose(subject=f"Re: [#{desk.case(number)['token']}] Drucker", sender="kollegin@customer.test"))
    assert (row.verdict, row.case_number) == ("reply", number)


def test_reply_to_closed_case_is_refused_with_reopen_hint(start: Start) -> None:
    desk = start()
    number, receipt = open_case(desk)
    assert desk.cli("case", "close", str(number)).returncode == 0
    row = desk.send(compose(subject=f"Re: {receipt['Subject']}"))
    assert (row.verdict, row.reason, row.case_number) == ("rejected", "case_closed", number)
    notice = desk.mails_to("kunde@customer.test", 2)[-1]
    assert "https://support.example.com" in notice.get_content()
    assert str(number) in notice.get_content()
    assert desk.case(number)["status"] == "closed"


@pytest.mark.parametrize(("window", "verdict"), [(14, "reply"), (0, "rejected")])
def test_closed_case_reopens_only_within_window(start: Start, window: int, verdict: str) -> None:
    desk = start(policy={"closed_case_reply": "reopen", "reopen_window_days": window})
    number, receipt = open_case(desk)
    desk.cli("case", "close", str(number))
    row = desk.send(compose(subject=f"Re: {receipt['Subject']}"))
    assert row.verdict == verdict
    assert desk.case(number)["status"] == ("open" if verdict == "reply" else "closed")


def test_no_new_cases_by_email_tells_how_to_open_one(start: Start) -> None:
    desk = start(policy={"new_cases_by_email": False})
    row = desk.send(compose())
    assert (row.verdict, row.reason, row.case_number) == ("rejected", "no_new_cases", None)
    assert "support.example.com" in desk.mails_to("kunde@customer.test")[0].get_content()


def test_new_case_senders_restricts_who_opens_cases(start: Start) -> None:
    desk = start(policy={"new_case_senders": ["customer.test", "boss@partner.test"]})
    assert desk.send(compose(sender="kunde@customer.test")).verdict == "new_case"
    assert desk.send(compose(sender="boss@partner.test")).verdict == "new_case"
    assert desk.send(compose(sender="other@partner.test")).reason == "no_new_cases"


@pytest.mark.parametrize(("policy", "verdict"), [("new_case", "new_case"), ("reject", "rejected")])
def test_unknown_token(start: Start, policy: str, verdict: str) -> None:
    desk = start(policy={"unknown_token": policy})
    row = desk.send(compose(subject="Re: [#SVC-10001-ZZZZ] Drucker"))
    assert row.verdict == verdict
    if verdict == "new_case":
        assert desk.case(row.case_number or 0)["subject"] == "Drucker"
    else:
        assert row.reason == "unknown_token"


def test_same_mail_to_two_service_aliases_is_stored_once(start: Start) -> None:
    desk = start()
    raw = compose(message_id="twice", headers={"Cc": "support@example.com"})
    first = desk.send(raw, rcpt="service@example.com")
    second = desk.send(raw, rcpt="support@example.com")
    assert first.id == second.id
    assert len(desk.cli("cases", "--json").stdout.split('"number"')) == 2


def test_agent_in_copy_joins_as_agent_and_gets_no_customer_mail(start: Start) -> None:
    desk = start(agents={"domains": ["staff.example.com"]}, policy={"cc_participants": "opening_mail"})
    number, _ = open_case(desk, headers={"Cc": "anna@staff.example.com"})
    roles = {p["address"]: p["role"] for p in desk.case(number)["participants"]}
    assert roles == {"kunde@customer.test": "requester", "anna@staff.example.com": "agent"}
    assert all("anna@staff.example.com" not in r.rcpt_tos for r in desk.relay.messages())
