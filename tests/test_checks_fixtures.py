"""Each hand-made policy fixture gets the expected decision from parse + the rule chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailbot import checks, config
from mailbot.mail import Envelope
from mailbot.parse import parse
from mailbot.verdicts import Accept, Decision, Ignore, Quarantine, Reject

DATA = Path(__file__).parent / "data" / "policy"
ENVELOPE = Envelope("erika@kunde.example", ("support@example.com",), "smtp")


def make_settings(**sections: dict[str, Any]) -> config.Settings:
    data: dict[str, Any] = {
        "service": {"addresses": ["support@example.com"], "noreply": "noreply@example.com"},
        "tokens": {"secret": "0123456789abcdef"},
        "smtp": {"max_message_size": 32 * 1024},  # small, so too-large.eml can stay small
    }
    data.update(sections)
    return config.parse(data, Path("config.toml"))


def judge(name: str, envelope: Envelope = ENVELOPE, **sections: dict[str, Any]) -> Decision:
    decision, _ = checks.run(parse((DATA / name).read_bytes()), envelope, make_settings(**sections))
    return decision


CASES: list[tuple[str, Decision]] = [
    ("plain-text.eml", Accept()),
    ("html-alternative.eml", Accept()),
    ("html-inline-cid-images.eml", Accept()),
    ("png-named-jpg.eml", Accept()),
    ("jpeg-as-octet-stream.eml", Accept()),
    ("one-zip.eml", Accept()),
    ("smime-signed.eml", Accept()),
    ("winmail-name-but-png.eml", Accept()),
    ("outlook-tnef-winmail.eml", Reject("rich_text", ("winmail.dat: application/vnd.ms-tnef",))),
    ("tnef-disguised-as-jpeg.eml", Reject("rich_text", ("foto.jpg: application/vnd.ms-tnef",))),
    ("rtf-attachment.eml", Reject("rich_text", ("brief.doc: text/rtf",))),
    ("enriched-body.eml", Reject("rich_text", ("text/enriched",))),
    ("exe-renamed-jpg.eml", Reject("attachment_type", ("urlaub.jpg: application/x-dosexec",))),
    ("fake-signature-exe.eml", Reject("attachment_type", ("smime.p7s: application/x-dosexec",))),
    ("pdf-attachment.eml", Reject("attachment_type", ("rechnung.pdf: application/pdf",))),
    ("pdf-declared-png.eml", Reject("attachment_type", ("rechnung.png: application/pdf",))),
    ("rfc2231-filename.eml", Reject("attachment_type", ("Grüße aus Köln.pdf: application/pdf",))),
    ("two-zips.eml", Reject("attachment_type", (
        "teil1.zip: application/zip (at most 1 ZIP allowed)",
        "teil2.zip: application/zip (at most 1 ZIP allowed)",
    ))),
    ("zip-bomb.eml", Reject("attachment_type", (
        "logs.zip: application/zip (zip bomb, compression ratio 1028 > 100: null.bin)",))),
    ("zip-encrypted.eml", Reject("attachment_type", ("geheim.zip: application/zip (encrypted entry: geheim.txt)",))),
    ("zip-path-traversal.eml", Reject("attachment_type", (
        "konfig.zip: application/zip (path traversal: ../../etc/cron.d/evil)",))),
    ("zip-nested-too-deep.eml", Reject("attachment_type", (
        "paket.zip: application/zip (ZIP nested deeper than 2: ebene2.zip/ebene1.zip/ebene0.zip)",))),
    ("pgp-encrypted.eml", Reject("encrypted", ("part 2: application/pgp-encrypted",))),
    ("smime-encrypted.eml", Reject("encrypted", ("smime.p7m: application/octet-stream",))),
    ("too-large.eml", Reject("too_large", ("35 KB > 32 KB",))),
    ("nested-multipart.eml", Quarantine("mime_depth 25 > 20")),
    ("out-of-office.eml", Ignore("auto_reply")),
    ("out-of-office-exchange.eml", Ignore("bounce")),  # by its null return path
    ("dsn-bounce.eml", Ignore("bounce")),
    ("mdn-read-receipt.eml", Ignore("bounce")),
    ("mailing-list.eml", Ignore("bulk")),
    ("own-notice-returned.eml", Ignore("loop")),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[name for name, _ in CASES])
def test_fixture_gets_expected_decision(name: str, expected: Decision) -> None:
    assert judge(name) == expected


def test_every_fixture_is_in_the_table() -> None:
    assert sorted(p.name for p in DATA.glob("*.eml")) == sorted([*(n for n, _ in CASES), "rtf-body.eml"])


def test_rtf_body_is_rich_text_whatever_name_the_parser_invents() -> None:
    decision = judge("rtf-body.eml")
    assert isinstance(decision, Reject) and decision.reason == "rich_text"
    assert [detail.split(": ")[1] for detail in decision.details] == ["text/rtf"]
