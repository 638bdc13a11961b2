"""parse.py on its own: fields, body text, and every non-body part typed by its content."""

from __future__ import annotations

import base64

from mailbot.parse import html_text, parse


def test_html_only_mail_gets_a_readable_text() -> None:
    raw = (b"From: Kunde <kunde@customer.test>\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n"
           b"<html><head><style>p {color: red}</style></head><body><p>Hallo &amp; Tsch&uuml;ss</p>"
           b"<p>Zeile<br>zwei</p><script>track()</script></body></html>")
    mail = parse(raw)
    assert (mail.subject, mail.from_addr, mail.from_name) == ("Grüße", "kunde@customer.test", "Kunde")
    assert mail.text == "Hallo & Tschüss\n\nZeile\nzwei"
    assert mail.html.startswith("<html>")


def test_plain_text_wins_over_html() -> None:
    raw = (b"From: a@customer.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nPlain\r\n"
           b"--b\r\nContent-Type: text/html\r\n\r\n<p>Html</p>\r\n--b--\r\n")
    mail = parse(raw)
    assert (mail.text.strip(), mail.attachments) == ("Plain", ())


def test_nameless_binary_part_is_a_file_typed_by_content() -> None:
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
    raw = (b"From: a@customer.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nSiehe Bild\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode(png) + b"\r\n--b--\r\n")
    (part,) = parse(raw).attachments
    assert (part.filename, part.declared_type, part.detected_type, part.payload) == (
        None, "application/octet-stream", "image/png", png)


def test_html_text_drops_hidden_content() -> None:
    assert html_text("<title>T</title><div>a</div><div>b</div>") == "a\n\nb"
