"""The new part of a reply, from inline texts and from whole client mails in tests/data/replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot import casetoken
from mailbot.config import TokenSettings
from mailbot.parse import parse
from mailbot.quotes import new_part

REPLIES = Path(__file__).parent / "data" / "replies"
# The secret the fixture mails' tokens were made with.
FIXTURE_TOKENS = TokenSettings(prefix="SVC", secret="fixture-secret-not-for-production")

# file -> (case number found in the subject, new part of the body)
EXPECTED: dict[str, tuple[int | None, str]] = {
    "outlook_de.eml": (10042, "Hallo Herr Support,\n\nder Drucker im 2. OG führt die Aufträge weiterhin "
                       "nicht aus. Ich habe ihn wie\nbesprochen neu gestartet, die Warteschlange bleibt "
                       "aber stehen.\n\nMit freundlichen Grüßen\nMax Mustermann\nBeispiel GmbH | Einkauf"),
    "outlook_en.eml": (10043, "Hi,\n\nthe corrected invoice still shows the old VAT ID. Our subsidiary's "
                       "VAT ID is\nATU12345678, please use it for all invoices from June on.\n\n"
                       "Kind regards\nJane"),
    "outlook_web_de.eml": (10044, "Guten Morgen,\n\nbitte legen Sie für unsere neue Mitarbeiterin Frau "
                           "Öztürk einen Zugang an\n(E-Mail: a.oeztuerk@beispiel.de).\n\n"
                           "Danke und viele Grüße\nPetra Schulz"),
    "outlook_latin1_b.eml": (10051, "Guten Tag,\n\nbitte ändern Sie die Lieferadresse für alle offenen "
                             "Bestellungen auf:\nBeispiel GmbH, Lager 3, Hafenstraße 12, 28217 Bremen\n\n"
                             "Freundliche Grüße\nSabine Müller"),
    "gmail_en.eml": (10045, "It still fails, this time with error 502 after about 30 seconds.\n"
                     "The file has 12,000 rows."),
    "gmail_de.eml": (10046, "Hallo,\n\ndie Rechnung ist jetzt angekommen, aber der Betrag stimmt nicht: "
                     "1.190,00 €\nstatt 1.000,00 € netto.\n\nGrüße\nJürgen"),
    "apple_mail_de.eml": (10047, "Hallo zusammen,\n\nkönnen Sie die Lizenz bis Ende Juli verlängern? "
                          "Die Bestellung läuft\nüber unseren Einkauf.\n\nViele Grüße\nAnna Berg"),
    "iphone_de.eml": (10048, "Passt, Donnerstag 9 Uhr ist gut. Bitte am Empfang melden."),
    "thunderbird_de.eml": (10049, "Leider nein. Seit dem Update auf 4.2 bricht der Import nach 500\n"
                           'Datensätzen ab, im Protokoll steht "Timeout".\n\nGruß\nMax Schmidt'),
    "thunderbird_en.eml": (10050, "Version 7.3.1 on Windows Server 2019.\n\nOn Sunday night, 2 June."),
    "edited_subject.eml": (10052, "Guten Morgen,\n\nder Drucker zeigt wieder Fehler E-04.\n\nKarl Braun"),
    "wrong_check.eml": (None, "Bitte senden Sie die Zugangsdaten an diese Adresse."),
}  # fmt: skip


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in REPLIES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_client_reply(name: str) -> None:
    number, text = EXPECTED[name]
    mail = parse((REPLIES / name).read_bytes())
    assert casetoken.find(mail.subject, FIXTURE_TOKENS) == number
    assert new_part(mail.text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Danke!\n\nOn Mon, 3 Jun 2024 at 10:15, Support <s@example.com> wrote:\n\n> Frage?\n",
                     "Danke!", id="gmail-en"),
        pytest.param("Danke!\n\nOn Mon, 3 Jun 2024 at 10:15, Example Support <support@example.com>\n"
                     "wrote:\n\n> Frage?\n", "Danke!", id="gmail-en-wrapped"),
        pytest.param("Danke!\n\nAm Mo., 3. Juni 2024 um 10:15 Uhr schrieb Example Support <\n"
                     "support@example.com>:\n\n> Frage?\n", "Danke!", id="gmail-de-wrapped"),
        pytest.param("Danke!\n\nAm 03.06.2024 um 10:15 schrieb Support:\nFrage ohne Zitatzeichen?\n",
                     "Danke!", id="attribution-over-unquoted-history"),
        pytest.param("Ja.\n\n--- On Mon, 6/3/24, Support <s@example.com> wrote:\n\nFrom: Support\n",
                     "Ja.", id="yahoo-dashes"),
        pytest.param("bob wrote:\n> Frage?\nAntwort.", "Antwort.", id="bottom-posted"),
        pytest.param("Ja.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nTo: Kunde\n"
                     "Subject: Frage\n\nFrage?", "Ja.", id="original-message"),
        pytest.param("Ja.\n\n----- Original Message -----\nFrom: s@example.com\nFrage?", "Ja.",
                     id="original-message-spaced"),
        pytest.param("Ja.\n\n-----Ursprüngliche Nachricht-----\nVon: Support\nFrage?", "Ja.",
                     id="urspruengliche-nachricht"),
        pytest.param("Ja.\n\nVon: Support <s@example.com>\nGesendet: Montag, 3. Juni 2024 10:15\n"
                     "An: Kunde\nBetreff: Frage\n\nFrage?", "Ja.", id="outlook-de-block"),
        pytest.param("Ja.\n\n*From:* Support <s@example.com>\n*Sent:* Monday, June 3, 2024 10:15 AM\n"
                     "*To:* Kunde\n*Subject:* Frage\n\nFrage?", "Ja.", id="outlook-block-bold"),
        pytest.param("Ja.\n\n________________________________\nVon: Support <s@example.com>\n"
                     "Gesendet: Montag\nAn: Kunde\nBetreff: Frage\n\nFrage?", "Ja.", id="outlook-rule"),
        pytest.param("Ja.\n\n-- \nMax Mustermann\nTel. 123", "Ja.", id="sig-dashes"),
        pytest.param("Ja.\n\n--\nMax Mustermann", "Ja.", id="sig-dashes-space-lost"),
        pytest.param("Ja.\n\nSent from my iPhone\n\n> Frage?", "Ja.", id="sent-from-iphone"),
        pytest.param("Ja.\n\nVon meinem iPhone gesendet", "Ja.", id="von-meinem-iphone"),
        pytest.param("Ja.\r\n\r\n> Frage?\r\n", "Ja.", id="crlf"),
        pytest.param("> Frage 1?\n\nAntwort 1.\n\n> Frage 2?\n\nAntwort 2.\n", "Antwort 1.\n\nAntwort 2.",
                     id="interleaved"),
    ],
)  # fmt: skip
def test_quoted_history_and_signature_are_cut(text: str, expected: str) -> None:
    assert new_part(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Der Drucker druckt nicht.\n\nVon: 8 Uhr\nBis: 16 Uhr",
        "Unser Termin:\nDate: Montag\nFrom: 10:00\nTo: 12:00",
        "On Monday the printer stopped. My colleague wrote:\nIt says E-04.",
        "Die Datei kam an -- danke.\nGruß",
        "Sent from my office PC this morning: the export still fails.",
    ],
)
def test_ordinary_text_is_kept_whole(text: str) -> None:
    assert new_part(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "-----Original Message-----\nFrom: Support\nSent: Monday\nTo: Kunde\nSubject: Frage\n\nFrage?",
        "--\nMax Mustermann",
        "> nur zitiert\n> nichts Neues",
    ],
)
def test_without_new_text_the_whole_text_is_kept(text: str) -> None:
    assert new_part(text) == text


def test_blank_runs_and_trailing_spaces_are_tidied() -> None:
    assert new_part("\n\nEins  \n\n\n\nZwei\t\n\n") == "Eins\n\nZwei"
