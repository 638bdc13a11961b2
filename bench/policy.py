"""Throughput and peak memory of parse + checks, beside plain `email` on the same bytes.

Run: .venv/bin/python bench/policy.py [--seconds N]
Prints mails/s and peak traced memory for a short plain mail and for a mail with a 10 MB
attachment; the baseline is email.message_from_bytes plus decoding every part, so the ratio
shows what mail-parser, libmagic and the rules cost on top of the standard library. Peak
memory is also given in multiples of the raw mail, which shows how often the attachment is
copied.
"""

from __future__ import annotations

import argparse
import email
import os
import time
import tracemalloc
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path

from mailbot import checks, config
from mailbot.mail import Envelope
from mailbot.parse import parse

ENVELOPE = Envelope("erika@kunde.example", ("support@example.com",), "smtp")
SETTINGS = config.parse(
    {"service": {"addresses": ["support@example.com"], "noreply": "noreply@example.com"},
     "tokens": {"secret": "0123456789abcdef"}},
    Path("config.toml"),
)


def plain_mail() -> bytes:
    message = EmailMessage()
    message["From"] = "Erika Mustermann <erika@kunde.example>"
    message["To"] = "support@example.com"
    message["Subject"] = "Drucker im 2. OG druckt nicht"
    message.set_content("Guten Tag,\n\nder Drucker druckt seit heute Morgen nicht mehr.\n\nGrüße\nErika\n" * 5)
    return message.as_bytes(policy=policy.SMTP)


def attachment_mail(size: int) -> bytes:
    message = EmailMessage()
    message["From"] = "Erika Mustermann <erika@kunde.example>"
    message["To"] = "support@example.com"
    message["Subject"] = "Foto vom Fehler"
    message.set_content("Guten Tag,\nanbei ein Foto.\n")
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + os.urandom(size)
    message.add_attachment(jpeg, maintype="image", subtype="jpeg", filename="foto.jpg")
    return message.as_bytes(policy=policy.SMTP)


def policy_run(raw: bytes) -> None:
    checks.run(parse(raw), ENVELOPE, SETTINGS)


def baseline_run(raw: bytes) -> None:
    for part in email.message_from_bytes(raw).walk():
        part.get_payload(decode=True)


def rate(work: Callable[[bytes], None], raw: bytes, seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or done < 3:
        work(raw)
        done += 1
    return done / elapsed


def peak(work: Callable[[bytes], None], raw: bytes) -> int:
    tracemalloc.start()
    try:
        work(raw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def human(size: float) -> str:
    return f"{size / 1024 ** 2:.1f} MB" if size >= 1024 ** 2 else f"{size / 1024:.0f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    seconds = parser.parse_args().seconds
    print(f"{'mail':<22}{'policy/s':>10}{'email/s':>10}{'ratio':>8}{'policy peak':>14}{'email peak':>13}{'ratio':>8}")
    for label, raw in (("plain", plain_mail()), ("10 MB attachment", attachment_mail(10 * 1024 * 1024))):
        policy_rate, base_rate = rate(policy_run, raw, seconds), rate(baseline_run, raw, seconds)
        policy_peak, base_peak = peak(policy_run, raw), peak(baseline_run, raw)
        print(f"{label:<22}{policy_rate:>10.1f}{base_rate:>10.1f}{base_rate / policy_rate:>7.1f}x"
              f"{human(policy_peak):>14}{human(base_peak):>13}{policy_peak / base_peak:>7.1f}x"
              f"   (raw {human(len(raw))}, policy peak = {policy_peak / len(raw):.1f} x raw)")


if __name__ == "__main__":
    main()
