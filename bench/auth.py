"""What sender authentication costs per mail: the judge step (parse, verdict, rules) on the
same mail unsigned (the baseline), with a trusted Authentication-Results header, and DKIM-signed
(RSA 2048, verified here; the key comes from memory, so DNS time is left out: in production
it is bounded by `[security] dns_timeout_seconds`). Then the same for a mail with a 5 MB
attachment, where DKIM hashes the whole body.

Run: .venv/bin/python bench/auth.py [--seconds N]
"""

from __future__ import annotations

import argparse
import base64
import os
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailbot import config
from mailbot.judge import judge
from mailbot.mail import Envelope

ENVELOPE = Envelope("erika@kunde.example", ("support@example.com",), "smtp")
SETTINGS = config.parse(
    {"service": {"addresses": ["support@example.com"], "noreply": "noreply@example.com"},
     "tokens": {"secret": "0123456789abcdef"}, "security": {"trusted_authserv_ids": ["mx.example.com"]},
     "limits": {"judge_seconds": 60.0}},
    Path("config.toml"),
)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
PUBLISHED = b"v=DKIM1; k=rsa; p=" + base64.b64encode(KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def dns(name: bytes, timeout: float = 5.0) -> bytes | None:
    return PUBLISHED if name == b"bench._domainkey.kunde.example." else None


def mail(attachment: int) -> bytes:
    message = EmailMessage()
    message["From"] = "Erika Mustermann <erika@kunde.example>"
    message["To"] = "support@example.com"
    message["Subject"] = "Drucker im 2. OG druckt nicht"
    message["Message-ID"] = "<bench@kunde.example>"
    message.set_content("Guten Tag,\n\nder Drucker druckt seit heute Morgen nicht mehr.\n\nGrüße\nErika\n" * 5)
    if attachment:
        jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + os.urandom(attachment)
        message.add_attachment(jpeg, maintype="image", subtype="jpeg", filename="foto.jpg")
    return message.as_bytes(policy=policy.SMTP)


def rate(raw: bytes, seconds: float) -> float:
    """Mails judged per second, the same mail over and over."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        judge(raw, ENVELOPE, SETTINGS, dns)
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()
    for label, size in (("short mail", 0), ("mail with 5 MB attachment", 5 * 1024 * 1024)):
        raw = mail(size)
        header = b"Authentication-Results: mx.example.com; dmarc=pass header.from=kunde.example\r\n"
        signed = dkim.sign(raw, b"bench", b"kunde.example", PRIVATE, include_headers=[b"from", b"subject"]) + raw
        verdicts = [judged.mail.auth.result for judged in (judge(m, ENVELOPE, SETTINGS, dns) for m in (raw, signed))
                    if judged.mail is not None]
        assert verdicts == ["none", "pass"], verdicts
        baseline = rate(raw, args.seconds)
        print(f"{label}, unsigned (baseline): {baseline:,.1f} mails/s")
        for name, data in (("trusted Authentication-Results", header + raw), ("DKIM verified here", signed)):
            value = rate(data, args.seconds)
            print(f"{label}, {name}: {value:,.1f} mails/s ({value / baseline:.2f} x baseline)")


if __name__ == "__main__":
    main()
