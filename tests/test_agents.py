"""Agent answers by mail, over SMTP to the running daemon: what the customer side receives
(and what it must not), the `#internal` / `#status` command lines, and forged agent mail.
The command and Authentication-Results readers are pure and are tested table-driven first.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from support import Desk, Relay, base_sections, compose

from mailbot.agents import CommandError, Commands, read_commands
from mailbot.parse import parse

AGENT = "anna@example.com"
CUSTOMER = "kunde@customer.test"
COLLEAGUE = "kollegin@customer.test"
FORGED_RESULTS = ("mx.example.com; spf=fail smtp.mailfrom=example.com; dkim=none; "
                  "dmarc=fail (p=reject dis=none) header.from=example.com")
# What the MTA in front (authserv-id mx.example.com, trusted in the config) adds to a signed mail.
PASSED = "mx.example.com; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"

Start = Callable[[], Desk]


@pytest.mark.parametrize(
    ("text", "commands", "rest"),
    [
        ("Guten Tag,\nerledigt.", Commands(), "Guten Tag,\nerledigt."),
        ("#internal\nKunde ruft morgen an.", Commands(internal=True), "Kunde ruft morgen an."),
        ("\n#Status Resolved\n\nIst behoben.", Commands(status="resolved"), "Ist behoben."),
        ("#status waiting silent", Commands(status="waiting", silent=True), ""),
        ("#internal\n#status open\nNotiz", Commands(internal=True, status="open"), "Notiz"),
        ("#1 Priorität\n#internal", Commands(), "#1 Priorität\n#internal"),
        ("Text\n#status closed", Commands(), "Text\n#status closed"),
    ],
)
def test_commands_are_read_from_the_first_lines_only(text: str, commands: Commands, rest: str) -> None:
    assert read_commands(text) == (commands, rest)


@pytest.mark.parametrize("line", ["#status done", "#status waiting quietly", "#internal please", "#status"])
def test_malformed_command_is_an_error_not_text(line: str) -> None:
    with pytest.raises(CommandError, match="cannot read the command line"):
        read_commands(f"{line}\nHallo")


@pytest.fixture
def start(tmp_path: Path, db_url: str, relay: Relay, daemon_factory) -> Start:  # type: ignore[no-untyped-def]
    def make() -> Desk:
        sections = base_sections(tmp_path, db_url, relay=relay.sections(), agents={"addresses": [AGENT]},
                                 security={"trusted_authserv_ids": ["mx.example.com"]})
        return Desk(daemon_factory(sections), relay)

    return make


def open_case(desk: Desk) -> tuple[int, Message]:
    row = desk.send(compose(message_id="open-1", headers={
        "Cc": f"Kollegin <{COLLEAGUE}>", "Authentication-Results": PASSED.format(domain="customer.test")}))
    assert row.verdict == "new_case" and row.case_number
    return row.case_number, desk.mails_to(CUSTOMER)[0]


def agent_mail(receipt: Message, body: str, headers: dict[str, str] | None = None, **fields: Any) -> bytes:
    """An agent's answer as it arrives from the MTA in front: DMARC passed, unless `headers` say otherwise."""
    return compose(subject=f"Re: {receipt['Subject']}", sender=f"Anna Agent <{AGENT}>",
                   body=body.replace("\n", "\r\n") + "\r\n",
                   headers={"Authentication-Results": PASSED.format(domain="example.com"), **(headers or {})}, **fields)


def tag_of(mail: Message) -> str:
    return str(mail["Subject"]).split("]")[0] + "]"


def text_of(mail: Message) -> str:
    return str(mail.get_content()).replace("\r\n", "\n")


def kinds_sent_to(relay: Relay, address: str) -> list[str]:
    """The kind (X-Mailbot-Notice) of everything the relay received for `address` so far."""
    return [str(r.message["X-Mailbot-Notice"]) for r in relay.messages() if address in r.rcpt_tos]


def test_agent_answer_reaches_the_customer_side_threaded_from_the_service_address(start: Start) -> None:
    desk = start()
    number, receipt = open_case(desk)
    row = desk.send(agent_mail(receipt, "Guten Tag,\nbitte starten Sie den Drucker neu.\n\n> alte Nachricht"))
    assert (row.verdict, row.case_number) == ("reply", number)
    assert (row.trace or "").split(",")[-4:] == ["match_token", "agent", "agent_relayed", "status_changed"]

    # the colleague in Cc never got the receipt (that is the requester's), but gets the answer
    for address, count in ((CUSTOMER, 2), (COLLEAGUE, 1)):
        answer = desk.mails_to(address, count)[-1]
        assert answer["From"].addresses[0].addr_spec == "service@example.com"
        assert answer["Subject"] == f"{tag_of(receipt)} Drucker druckt nicht"
        assert answer["In-Reply-To"] == "<open-1@customer.test>"
        assert answer["Auto-Submitted"] is None
        body = text_of(answer)
        assert body.startswith("Guten Tag,\nbitte starten Sie den Drucker neu.\n")
        assert "alte Nachricht" not in body

    # the customer's answer to it lands on the case, and the next relay threads below it
    answer = desk.mails_to(CUSTOMER, 2)[-1]
    reply = desk.send(compose(subject=f"AW: {answer['Subject']}", message_id="reply-1",
                              headers={"In-Reply-To": answer["Message-ID"]}))
    assert (reply.verdict, reply.case_number) == ("reply", number)
    desk.send(agent_mail(receipt, "Danke für die Rückmeldung."))
    second = desk.mails_to(COLLEAGUE, 2)[-1]
    assert second["In-Reply-To"] == "<reply-1@customer.test>"
    assert "<open-1@customer.test>" in second["References"]

    assert kinds_sent_to(desk.relay, AGENT) == []
    case = desk.case(number)
    assert {"address": AGENT, "role": "agent"} in case["participants"]
    assert case["answered_at"] is not None
    assert case["status"] == "open"  # the first answer took it from new to open (silently)
    assert "status_changed" not in kinds_sent_to(desk.relay, CUSTOMER)
    agent_rows = [m for m in case["messages"] if m["kind"] == "agent"]
    assert [(m["from"], m["internal"]) for m in agent_rows] == [(AGENT, False), (AGENT, False)]


def test_internal_note_and_status_commands(start: Start) -> None:
    desk = start()
    number, receipt = open_case(desk)

    note = desk.send(agent_mail(receipt, "#internal\nKunde hat Vertrag ohne Drucker-Wartung."))
    assert note.verdict == "reply" and "agent_note" in (note.trace or "")
    silent = desk.send(agent_mail(receipt, "#status waiting silent\nTeil ist bestellt."))
    assert "status_changed" in (silent.trace or "") and desk.case(number)["status"] == "waiting"
    resolved = desk.send(agent_mail(receipt, "#status resolved\nDas neue Teil ist eingebaut."))
    assert "status_changed" in (resolved.trace or "")

    # receipt, the "waiting silent" answer, the "resolved" answer and its status mail; nothing else
    mails = desk.mails_to(CUSTOMER, 4)
    bodies = [text_of(m) for m in mails[1:]]
    assert bodies[0].startswith("Teil ist bestellt.") and bodies[1].startswith("Das neue Teil ist eingebaut.")
    assert "Neuer Status: gelöst (bisher: wartet auf Ihre Rückmeldung)" in bodies[2]
    assert mails[3]["X-Mailbot-Notice"] == "status_changed" and mails[3]["In-Reply-To"] == "<open-1@customer.test>"
    assert len(desk.mails_to(COLLEAGUE, 3)) == 3
    assert not any("Vertrag" in text_of(m) for m in mails)

    case = desk.case(number)
    assert case["status"] == "resolved"
    notes = [m for m in case["messages"] if m["kind"] == "agent" and m["internal"]]
    assert len(notes) == 1 and "Vertrag" in notes[0]["text"]


def test_forged_agents_and_customers_commands_get_no_agent_rights(start: Start) -> None:
    desk = start()
    number, receipt = open_case(desk)

    # Issue 9: "From: agent@... and a case token, without any Authentication-Results header or
    # with a forged pass one, is relayed ... and its #status closed takes effect".
    unsigned = desk.send(agent_mail(receipt, "#status closed\nIhr Fall ist erledigt.",
                                    headers={"Authentication-Results": "evil.test; dkim=pass; dmarc=pass"}))
    assert (unsigned.verdict, unsigned.reason, unsigned.case_number) == ("rejected", "agent_unverified", number)
    assert (unsigned.trace or "").split(",")[-3:] == ["match_token", "agent_untrusted", "agent_warned"]
    assert (unsigned.auth or "").startswith("none:")
    warning = desk.mails_to(AGENT)[0]
    assert warning["X-Mailbot-Notice"] == "agent_unverified" and "Ihr Fall ist erledigt" not in text_of(warning)
    # a second forgery within the window: no second warning, the forger cannot flood the agent
    failed = desk.send(agent_mail(receipt, "#status closed\nNochmal.",
                                  headers={"Authentication-Results": FORGED_RESULTS}))
    assert (failed.verdict, failed.reason) == ("quarantined", "auth_failed")
    assert "agent_warned" not in (failed.trace or "")

    customer = desk.send(compose(subject=f"Re: {receipt['Subject']}", body="#status closed\r\nBitte schließen.\r\n"))
    assert customer.verdict == "reply"
    case = desk.case(number)
    assert case["status"] == "new"
    assert case["messages"][-2]["text"].splitlines() == ["#status closed", "Bitte schließen."]
    assert not any("erledigt" in m["text"] or "Nochmal" in m["text"] for m in case["messages"])

    typo = desk.send(agent_mail(receipt, "#status erledigt\nIst behoben."))
    assert (typo.verdict, typo.reason) == ("rejected", "agent_command")
    told = desk.mails_to(AGENT, 2)[-1]
    assert "#status erledigt" in text_of(told)
    # delivered in queue order, so by now the customer has all there is: no status mail, no relay
    assert kinds_sent_to(desk.relay, CUSTOMER) == ["receipt", "reply_receipt"]
    assert kinds_sent_to(desk.relay, AGENT) == ["agent_unverified", "agent_command"]
    assert desk.case(number)["status"] == "new"


def test_agent_attachments_are_relayed_under_a_clean_name(start: Start) -> None:
    desk = start()
    number, receipt = open_case(desk)
    png = (Path(__file__).parent / "data" / "policy" / "png-named-jpg.eml").read_bytes()
    screenshot = next(part for part in parse(png).attachments if part.detected_type == "image/png").payload
    boundary = "agent-files"
    body = (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSiehe Screenshot.\r\n"
            f"--{boundary}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="..\\\\..\\\\etc\\\\bild\x01.png"\r\n\r\n'
            + base64.b64encode(screenshot).decode() + f"\r\n--{boundary}--\r\n")
    row = desk.send(agent_mail(receipt, "", headers={
        "MIME-Version": "1.0", "Content-Type": f'multipart/mixed; boundary="{boundary}"'}).replace(
        b"\r\n\r\n\r\n", b"\r\n\r\n" + body.encode(), 1))
    assert (row.verdict, row.case_number) == ("reply", number), row.reason
    answer = desk.mails_to(CUSTOMER, 2)[-1]
    (attached,) = list(answer.iter_attachments())
    assert (attached.get_content_type(), attached.get_filename()) == ("image/png", "bild.png")
    assert attached.get_content() == screenshot
    assert answer.get_body(("plain",)).get_content().startswith("Siehe Screenshot.")
