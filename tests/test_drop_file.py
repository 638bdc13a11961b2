"""`[policy] disallowed_attachments = "drop_file"`: a disallowed file costs only itself. The mail
becomes a case or a reply without it (not stored, not relayed), and the receipt names each file
with its detected type, the reason and what to send instead, within the notice caps."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import SMTP
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlmodel import col, select
from support import base_sections, write_config
from test_checks_rules import ENVELOPE, make_settings
from test_status import Office

from mailbot import checks, config, db, pipeline
from mailbot.judge import judge
from mailbot.models import Attachment, Outbox
from mailbot.parse import parse
from mailbot.verdicts import Accept, Dropped, Reject

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(200)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(100) + b"PE\x00\x00" + bytes(200)
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Erika Mustermann\r\nEMAIL:erika@kunde.example\r\nEND:VCARD\r\n"


def composed(subject: str = "Drucker druckt nicht", exes: int = 1, name: str = "rechnung.pdf.exe",
             text: str = "Hallo,\nanbei ein Foto vom Drucker.\n") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "kunde@customer.test", "service@example.com", subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}-{exes}@customer.test>"
    message.set_content(text)
    message.add_attachment(JPEG, maintype="image", subtype="jpeg", filename="foto.jpg")
    for n in range(exes):
        message.add_attachment(EXE, maintype="application", subtype="pdf", filename=f"{n}-{name}" if n else name)
    message.add_attachment(b"", maintype="application", subtype="octet-stream", filename="leer.bin")
    message.add_attachment(VCARD, maintype="text", subtype="vcard", filename="erika.vcf")
    footer = EmailMessage()
    footer.set_content("-- \nGesendet von meinem Telefon\n")
    message.attach(footer)  # an unnamed text/plain part after the files: body text, no file
    return message.as_bytes(policy=SMTP)


def test_only_real_disallowed_files_count_and_the_policy_decides_their_cost() -> None:
    mail = parse(composed())
    refused, _ = checks.run(mail, ENVELOPE, make_settings())
    assert refused == Reject("attachment_type", ("rechnung.pdf.exe: application/x-dosexec",))
    dropped, trace = checks.run(mail, ENVELOPE, make_settings(policy={"disallowed_attachments": "drop_file"}))
    assert dropped == Accept((Dropped(1, "rechnung.pdf.exe", "application/x-dosexec", "type"),))
    assert trace[-1] == "attachments"
    two_zips = (Path(__file__).parent / "data" / "policy" / "two-zips.eml").read_bytes()
    decision, _ = checks.run(parse(two_zips), ENVELOPE, make_settings(policy={"disallowed_attachments": "drop_file"}))
    assert isinstance(decision, Accept) and [d.reason for d in decision.dropped] == ["zip_count", "zip_count"]


@pytest.fixture
def office(tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[Office]:
    caplog.set_level(logging.INFO, logger="mailbot")
    sections = base_sections(tmp_path, db_url, policy={"disallowed_attachments": "drop_file"},
                             templates={"languages": ["de", "en"]})
    path = write_config(tmp_path / "config.toml", sections)
    settings = config.load(path)
    made = Office(path, settings, db.make_engine(settings.database.url))
    yield made
    made.engine.dispose()


def deliver(office: Office, raw: bytes) -> pipeline.Outcome:
    outcome, _ = office.act(lambda ctx: pipeline.act(ctx, judge(raw, ENVELOPE, ctx.settings)))
    return outcome


def last_mail(office: Office) -> Message:
    with db.session(office.engine) as session:
        row = session.exec(select(Outbox).order_by(col(Outbox.id).desc())).first()
        assert row is not None
        return message_from_bytes(row.raw.replace(b"\r\n", b"\n"), policy=default_policy)


def stored_files(office: Office) -> list[str | None]:
    with db.session(office.engine) as session:
        return list(session.exec(select(Attachment.filename).order_by(col(Attachment.id))).all())


def test_the_mail_is_taken_without_the_file_and_the_receipt_names_it(office: Office) -> None:
    opened = deliver(office, composed())
    assert (opened.verdict, opened.trace[-3:]) == ("new_case", ["attachments", "drop_file", "match_none"])
    assert stored_files(office) == ["foto.jpg", "leer.bin", "erika.vcf"]  # the EXE is not stored
    body = last_mail(office).get_content()
    assert ("Diese Anhänge haben wir nicht übernommen (wir prüfen den Inhalt jeder Datei, nicht ihren Namen):\n"
            "  - rechnung.pdf.exe: application/x-dosexec, dieser Dateityp wird nicht angenommen\n"
            "Senden Sie diese Inhalte bitte als JPEG, PNG oder eine ZIP-Datei") in body

    reply = composed(subject=f"Re: {last_mail(office)['Subject']}", exes=15, name="x" * 300 + ".exe")
    answered = deliver(office, reply)
    assert answered.verdict == "reply" and len(stored_files(office)) == 6
    body = last_mail(office).get_content()
    listed = [line for line in body.splitlines() if line.startswith("  - ")]
    assert len(listed) == 11 and listed[-1] == "  - und 5 weitere"
    assert max(len(line) for line in listed) < 200  # names cut to 100 characters
    assert len(last_mail(office).as_bytes()) < 16 * 1024


def test_an_english_receipt_lists_them_in_english(office: Office) -> None:
    deliver(office, composed(subject="Printer broken", text="Hello,\nplease find a photo of the printer attached.\n"))
    body = last_mail(office).get_content()
    assert "  - rechnung.pdf.exe: application/x-dosexec, this file type is not accepted" in body
    assert "Please send this content as JPEG, PNG or one ZIP file" in body
