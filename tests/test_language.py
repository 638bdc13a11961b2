"""Each case speaks its customer's language: declared (Content-Language), else detected in the
sender's words, else the default; every mail of the case and `mailbot case ...` follow it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select
from support import Desk, Relay, base_sections, compose, write_config
from test_cli import Shell
from test_status import Office

from mailbot import agents, cases, config, db, language
from mailbot.models import Case, Outbox
from mailbot.parse import parse
from mailbot.status import change_status

BOTH: tuple[config.Language, ...] = ("de", "en")
PRINTER = {"subject": "Printer not working", "body": "Hello,\r\nthe printer on the second floor prints nothing.\r\n"}


@pytest.mark.parametrize(("header", "expected"), [
    ("de-AT, en", "de"), ("fr, en-GB", "en"), ("EN", "en"), ("fr", None), ("", None),
])
def test_content_language_names_the_first_offered_language(header: str, expected: str | None) -> None:
    mail = parse(compose(headers={"Content-Language": header} if header else {}))
    assert language.declared(mail, BOTH) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Printer not working\nHello, the printer prints nothing.", "en"),
    ("Drucker druckt nicht\nHallo, der Drucker im 2. Stock druckt nicht.", "de"),
    ("hello\nsiehe anhang", "de"),
    ("Test\nHello", "en"),
    ("12345 --- 2026-12-02", None),
])
def test_detection_between_the_offered_languages(text: str, expected: str | None) -> None:
    assert language.detect(text, BOTH) == expected
    assert language.detect(text, ("en",)) == "en"  # one language: nothing to detect


def test_declared_beats_detected_and_the_default_catches_the_rest() -> None:
    templates = config.TemplateSettings(languages=BOTH, default="en")
    assert language.of_mail(parse(compose(headers={"Content-Language": "de"}, **PRINTER)), templates) == "de"
    assert language.of_mail(parse(compose(subject="Drucker kaputt")), templates) == "de"
    assert language.of_mail(parse(compose(subject="4711", body="0815\r\n")), templates) == "en"


def test_detection_reads_a_bounded_sample_of_the_new_text() -> None:
    quoted = "> " + "Sehr geehrte Damen und Herren, der Drucker ist kaputt.\r\n> " * 20
    mail = parse(compose(subject="Re: Printer", body="It still does not work.\r\n\r\n" + quoted + "x" * 5_000_000))
    sample = language.sample(mail)
    assert len(sample) <= language.SAMPLE_CHARS and sample.startswith("Printer\nIt still does not work.")
    assert "Sehr geehrte" not in sample


def test_config_default_must_be_offered(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError) as raised:
        config.parse(base_sections(tmp_path, "sqlite://", templates={"languages": ["en"], "default": "de"}),
                     tmp_path / "config.toml")
    assert raised.value.problems == ["config.toml: templates: default 'de' is not one of languages"]


@pytest.fixture
def office(tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[Office]:
    caplog.set_level(logging.INFO, logger="mailbot")
    root, saved = logging.getLogger(), logging.getLogger().handlers[:]  # cli.main points logging at stderr
    sections = base_sections(tmp_path, db_url, agents={"addresses": ["anna@example.com"]},
                             templates={"languages": ["de", "en"], "default": "de"})
    path = write_config(tmp_path / "config.toml", sections)
    settings = config.load(path)
    made = Office(path, settings, db.make_engine(settings.database.url))
    yield made
    made.engine.dispose()
    root.handlers[:] = saved


def sent(office: Office) -> list[Message]:
    with db.session(office.engine) as session:
        rows = session.exec(select(Outbox).order_by(col(Outbox.id))).all()
        return [message_from_bytes(row.raw, policy=default_policy) for row in rows]


def test_every_mail_of_an_english_case_is_english(office: Office, capsys: pytest.CaptureFixture[str]) -> None:
    number = office.open_case(**PRINTER)
    office.on_case(number, lambda ctx, case: change_status(ctx, case, "waiting", actor="test"))
    office.on_case(number, lambda ctx, case: agents.reply(
        ctx, case, agents.as_mail(office.settings, case, "anna@example.com", "Please restart it."),
        "Please restart it.", []))
    receipt, status, answer = sent(office)
    assert str(receipt["Subject"]).endswith("Your request: Printer not working")
    body = receipt.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "(Europe/Berlin)." in body and "Our support hours: Mon-Fri 09:00-16:00 (Europe/Berlin)" in body
    assert "We need your reply: Printer not working" in str(status["Subject"])
    assert "The Example GmbH support team" in answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert [m["Content-Language"] for m in (receipt, status, answer)] == ["en", "en", "en"]

    shell = Shell(office, capsys)
    assert shell("case", "show", str(number)).out.splitlines()[3] == "Language:     en"
    assert [c["language"] for c in shell("cases", "--json").json()] == ["en"]
    assert shell("case", "language", str(number), "de").out == (
        f"case {number}: language en -> de; its next mail is written in it\n")
    office.on_case(number, lambda ctx, case: change_status(ctx, case, "open", actor="test"))
    german = sent(office)[-1]
    assert german["Content-Language"] == "de" and "Ihre Anfrage ist in Bearbeitung" in str(german["Subject"])
    capsys.readouterr()
    refused = shell("case", "language", str(number), "fr")
    assert (refused.code, refused.error) == (
        1, "mailbot: fr: not one of the languages in config [templates] languages (de, en)")


def test_a_german_case_stays_german_and_refusals_speak_the_mails_language(office: Office) -> None:
    number = office.open_case()
    with db.session(office.engine) as session:
        assert session.exec(select(Case.language).where(Case.number == number)).one() == "de"
    office.act(lambda ctx: cases.refuse(ctx, parse(compose(**PRINTER)), "no_new_cases", ()))
    office.act(lambda ctx: cases.refuse(ctx, parse(compose(subject="Neue Frage")), "no_new_cases", ()))
    receipt, english, german = sent(office)
    assert "Ihre Anfrage: Drucker druckt nicht" in str(receipt["Subject"])
    assert "Mo-Fr 09:00-16:00 (Europe/Berlin)" in receipt.get_content()
    assert (english["Content-Language"], german["Content-Language"]) == ("en", "de")
    assert "Please open new requests" in str(english["Subject"])


def test_a_database_from_before_gets_the_language_column(db_url: str) -> None:
    engine = db.make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE cases DROP COLUMN language"))
        connection.execute(text("INSERT INTO cases (subject, status, requester, created, updated, overdue_logged) "
                                "VALUES ('Alt', 'open', 'k@customer.test', '2026-01-01', '2026-01-01', false)"))
    engine.dispose()
    engine = db.make_engine(db_url)  # what the next start of mailbot does
    with db.session(engine) as session:
        assert session.exec(select(Case.subject, Case.language)).all() == [("Alt", "de")]
    engine.dispose()


def test_a_case_without_subject_is_named_in_its_language(office: Office) -> None:
    english = office.open_case(subject="", body="Hello,\r\nthe printer on the second floor prints nothing.\r\n")
    german = office.open_case(subject="", sender="chef@customer.test")
    with db.session(office.engine) as session:
        subjects = dict(session.exec(select(Case.number, Case.subject)).all())
    assert (subjects[english], subjects[german]) == ("(no subject)", "(ohne Betreff)")


def test_the_daemon_answers_an_english_mail_in_english_and_drops_a_bad_file(
    tmp_path: Path, sqlite_url: str, relay: Relay, daemon_factory  # type: ignore[no-untyped-def]
) -> None:
    # The whole way: SMTP, the judge pool (the verdict with its dropped file travels back), the
    # language model loaded in the daemon, the relay.
    sections = base_sections(tmp_path, sqlite_url, relay=relay.sections(), templates={"languages": ["de", "en"]},
                             policy={"disallowed_attachments": "drop_file"})
    desk = Desk(daemon_factory(sections), relay)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "kunde@customer.test", "service@example.com", "Printer"
    message["Message-ID"] = "<printer-en@customer.test>"
    message.set_content("Hello,\nthe printer on the second floor prints nothing. Log attached.\n")
    message.add_attachment(b"MZ\x90\x00" + bytes(300), maintype="application", subtype="octet-stream",
                           filename="driver.exe")
    row = desk.send(message.as_bytes())
    assert (row.verdict, row.trace and row.trace.split(",")[-2:]) == ("new_case", ["drop_file", "match_none"])
    receipt = desk.mails_to("kunde@customer.test")[0]
    assert receipt["Content-Language"] == "en" and "Your request: Printer" in str(receipt["Subject"])
    assert "  - driver.exe: application/x-dosexec, this file type is not accepted" in receipt.get_content()
