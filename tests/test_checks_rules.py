"""Rule-level behaviour the fixtures alone do not pin: order, envelope, headers, configuration."""

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
RULE_NAMES = ["loop", "bounce", "auto_reply", "bulk", "too_large", "shape", "rich_text", "encrypted", "attachments"]


def make_settings(**sections: dict[str, Any]) -> config.Settings:
    data: dict[str, Any] = {
        "service": {"addresses": ["support@example.com"], "noreply": "noreply@example.com"},
        "tokens": {"secret": "0123456789abcdef"},
    }
    data.update(sections)
    return config.parse(data, Path("config.toml"))


def run(raw: bytes, envelope: Envelope = ENVELOPE, **sections: dict[str, Any]) -> tuple[Decision, list[str]]:
    return checks.run(parse(raw), envelope, make_settings(**sections))


def mail(*headers: str, body: str = "Guten Tag,\r\nder Drucker druckt nicht.\r\n") -> bytes:
    lines = ["From: Erika <erika@kunde.example>", "To: support@example.com", "Subject: Drucker", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_rules_run_in_the_documented_order() -> None:
    assert [name for name, _ in checks.RULES] == RULE_NAMES
    assert run(mail()) == (Accept(), RULE_NAMES)


def test_robots_are_ignored_before_any_rule_that_answers() -> None:
    # An out-of-office reply that carries an executable still gets no notice.
    raw = fixture("exe-renamed-jpg.eml").replace(b"MIME-Version", b"Auto-Submitted: auto-replied\r\nMIME-Version", 1)
    assert run(raw) == (Ignore("auto_reply"), ["loop", "bounce", "auto_reply"])


@pytest.mark.parametrize(
    ("headers", "envelope_from", "expected"),
    [
        (("Auto-Submitted: auto-generated",), "erika@kunde.example", Ignore("auto_reply")),
        (("Auto-Submitted: auto-replied; owner-email=\"erika@kunde.example\"",), "x@kunde.example",
         Ignore("auto_reply")),
        (("Auto-Submitted: no",), "erika@kunde.example", Accept()),
        (("Auto-Submitted: No (a person wrote this)",), "erika@kunde.example", Accept()),
        (("X-Autoreply: yes",), "erika@kunde.example", Ignore("auto_reply")),
        # Exchange writes it on people's mail too: it asks us not to auto-reply, nothing more.
        (("X-Auto-Response-Suppress: DR, OOF, AutoReply",), "erika@kunde.example", Accept()),
        (("Precedence: auto_reply",), "erika@kunde.example", Ignore("auto_reply")),
        (("X-Apple-Action: VACATION",), "erika@kunde.example", Ignore("auto_reply")),
        (("Precedence: bulk",), "erika@kunde.example", Ignore("bulk")),
        (("Precedence: junk",), "erika@kunde.example", Ignore("bulk")),
        (("Precedence: first-class",), "erika@kunde.example", Accept()),
        (("List-Unsubscribe: <https://lists.example/leave>",), "erika@kunde.example", Ignore("bulk")),
        (("List-Post: <mailto:drucker@lists.example>",), "erika@kunde.example", Ignore("bulk")),
        (("Mailing-List: contact drucker-help@lists.example; run by ezmlm",), "erika@kunde.example",
         Ignore("bulk")),
        ((), "", Ignore("bounce")),
        ((), "MAILER-DAEMON@mx.kunde.example", Ignore("bounce")),
        (("Return-Path: <>",), "erika@kunde.example", Ignore("bounce")),
        (("X-Mailbot-Notice: receipt",), "erika@kunde.example", Ignore("loop")),
        ((), "noreply@example.com", Ignore("loop")),
    ],
)
def test_robot_markers(headers: tuple[str, ...], envelope_from: str, expected: Decision) -> None:
    envelope = Envelope(envelope_from, ("support@example.com",), "smtp")
    assert run(mail(*headers), envelope)[0] == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("Postmaster <postmaster@kunde.example>", Ignore("bounce")),
        ("MAILER-DAEMON <>", Ignore("bounce")),  # DragonFly's bounce sender
        ("<>", Ignore("bounce")),  # McAfee's
        ("Support <support@example.com>", Ignore("loop")),
        ("Erika <erika@kunde.example>", Accept()),
    ],
)
def test_sender_markers(sender: str, expected: Decision) -> None:
    raw = mail().replace(b"From: Erika <erika@kunde.example>", f"From: {sender}".encode())
    assert run(raw)[0] == expected


def test_forwarded_bounce_reaches_a_human() -> None:
    # Only the top-level type marks a report; a person asking about a bounce is no robot.
    raw = mail("MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="x"', body=(
        "--x\r\nContent-Type: text/plain\r\n\r\nWarum kam das zurueck?\r\n"
        "--x\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        + fixture("dsn-bounce.eml").decode() + "\r\n--x--\r\n"))
    assert run(raw)[0] == Accept()


def test_declared_imap_size_counts_for_too_large() -> None:
    envelope = Envelope("erika@kunde.example", ("support@example.com",), "imap:support", declared_size=40 << 20)
    assert run(mail(), envelope)[0] == Reject("too_large", ("40.0 MB > 25.0 MB",))


@pytest.mark.parametrize(
    ("limit", "raw", "measured"),
    [
        ("header_count", mail(), 3),
        ("header_length", mail("X-Long: " + "y" * 1000), 1008),
        ("line_length", mail(body="x" * 1000 + "\r\n"), 1000),
        ("part_count", fixture("html-alternative.eml"), 3),
    ],
)
def test_shape_limits_quarantine_just_above_the_limit(limit: str, raw: bytes, measured: int) -> None:
    assert run(raw, limits={limit: measured - 1})[0] == Quarantine(f"{limit} {measured} > {measured - 1}")
    assert run(raw, limits={limit: measured})[0] == Accept()


def test_allowed_types_are_configurable() -> None:
    assert run(fixture("pdf-attachment.eml"), attachments={"allowed_types": ["application/pdf"]})[0] == Accept()
    refused = run(fixture("png-named-jpg.eml"), attachments={"allowed_types": ["image/jpeg"]})[0]
    assert refused == Reject("attachment_type", ("bild.jpg: image/png",))


def test_zip_can_be_switched_off() -> None:
    decision = run(fixture("one-zip.eml"), attachments={"max_zip_files": 0})[0]
    assert decision == Reject("attachment_type", ("logs.zip: application/zip (at most 0 ZIP allowed)",))


def test_signature_does_not_make_an_otherwise_bad_mail_pass() -> None:
    # The signature is left out, the other parts are judged as usual.
    raw = fixture("smime-signed.eml")
    assert run(raw, attachments={"allowed_types": ["image/jpeg"]})[0] == Reject(
        "attachment_type", ("fehler.png: image/png",))


def test_enriched_text_beside_plain_text_is_a_mere_alternative() -> None:
    raw = mail("MIME-Version: 1.0", 'Content-Type: multipart/alternative; boundary="b"', body=(
        "--b\r\nContent-Type: text/plain\r\n\r\nDrucker defekt.\r\n"
        "--b\r\nContent-Type: text/enriched\r\n\r\n<bold>Drucker</bold> defekt.\r\n--b--\r\n"))
    assert run(raw)[0] == Accept()


def test_inline_pgp_message_is_encrypted() -> None:
    body = "-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA0123456789\r\n-----END PGP MESSAGE-----\r\n"
    assert run(mail(body=body))[0] == Reject("encrypted", ("inline PGP message",))


def test_inline_pgp_signed_text_is_readable() -> None:
    body = ("-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nDrucker defekt.\r\n"
            "-----BEGIN PGP SIGNATURE-----\r\n\r\niQEzBAEB\r\n-----END PGP SIGNATURE-----\r\n")
    assert run(mail(body=body))[0] == Accept()


def test_new_sections_reject_unknown_keys() -> None:
    with pytest.raises(config.ConfigError) as caught:
        make_settings(attachments={"allowed_type": ["image/png"]})
    assert caught.value.problems == [
        "config.toml: attachments.allowed_type: unknown key; did you mean 'allowed_types'?"]


def test_nameless_executable_part_is_judged_too() -> None:
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nHallo\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAgAAAAA==\r\n--b--\r\n")
    decision = run(mail("MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="b"', body=body))[0]
    assert isinstance(decision, Reject) and decision.reason == "attachment_type"


DELAY_WARNING = (
    "Delivery to the following recipient has been delayed:\r\n\r\n     erika@kunde.example\r\n\r\n"
    "Message will be retried for 2 more day(s)\r\n"
)


def test_a_plain_text_bounce_without_markers_is_found_by_flufl_bounce() -> None:
    # A delay warning from an ordinary-looking sender: no null path, no MAILER-DAEMON, no report part.
    warning = mail("Subject: Delayed Mail (still being retried)", body=DELAY_WARNING).replace(
        b"From: Erika <erika@kunde.example>", b"From: Mail Delivery <mailer@relay.example>")
    assert run(warning) == (Ignore("bounce"), RULE_NAMES[:2])


@pytest.mark.parametrize("body", [
    # A person quoting a bounce's words in their own text; a uuencoded line the loose LLNL pattern took.
    "Hallo,\r\nich bekomme immer: 550 5.1.1 <kollege@firma.example>... User unknown\r\nWas tun?\r\n",
    'M"Z"@1G   # %!\r\nbegin 644 x\r\n',
])
def test_a_person_mentioning_a_failure_is_no_bounce(body: str) -> None:
    assert run(mail(body=body))[0] == Accept()


def test_sns_notifications_are_bulk() -> None:
    assert run(mail("x-amz-sns-message-id: ad6bdf42-f483-5bae-bf50-8fc1aad3f981"))[0] == Ignore("bulk")
