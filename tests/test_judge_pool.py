"""The judge pool: mails are judged in worker processes, each bounded in time and memory.

A mail over a limit gets a quarantine verdict naming the limit; the worker is replaced and the
next mail is judged as usual, so one hostile mail never stops the daemon.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from support import compose

from mailbot import config
from mailbot.config import Settings
from mailbot.judgepool import JudgePool, JudgeUnavailable
from mailbot.mail import Envelope
from mailbot.verdicts import Accept, Quarantine

ENVELOPE = Envelope("kunde@customer.test", ("service@example.com",), "smtp")


def settings(**limits: object) -> Settings:
    return config.parse(
        {"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
         "tokens": {"secret": "0123456789abcdef"}, "limits": limits},
        Path("config.toml"),
    )


def big_mail(megabytes: int) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "kunde@customer.test", "service@example.com", "Foto"
    message.set_content("Anbei ein Foto.")
    message.add_attachment(b"\xff\xd8\xff\xe0" + os.urandom(megabytes << 20), maintype="image", subtype="jpeg",
                           filename="foto.jpg")
    return message.as_bytes()


@pytest.fixture(scope="module")
def pool() -> Iterator[JudgePool]:
    judges = JudgePool(workers=2)
    yield judges
    judges.close()


def test_a_plain_mail_is_accepted(pool: JudgePool) -> None:
    judged = pool.judge(compose(), ENVELOPE, settings())
    assert judged.decision == Accept() and judged.mail is not None
    assert judged.mail.subject == "Drucker druckt nicht"


def test_a_batch_comes_back_in_order(pool: JudgePool) -> None:
    mails = [compose(subject=f"Anfrage {n}") for n in range(20)]
    judged = pool.judge_many([(raw, ENVELOPE) for raw in mails], settings())
    assert [j.mail.subject if j.mail else None for j in judged] == [f"Anfrage {n}" for n in range(20)]


def test_over_the_time_limit_is_quarantined_and_the_next_mail_judged(pool: JudgePool) -> None:
    slow, plain = big_mail(20), compose()
    judged = pool.judge_many([(slow, ENVELOPE), (plain, ENVELOPE)], settings(judge_seconds=0.05))
    assert judged[0].decision == Quarantine("judge_timeout: judging took more than 0.05 s")
    assert judged[1].decision == Accept()
    assert pool.judge(plain, ENVELOPE, settings()).decision == Accept()


def test_over_the_memory_limit_is_quarantined_and_the_next_mail_judged(pool: JudgePool) -> None:
    judged = pool.judge(big_mail(20), ENVELOPE, settings(judge_memory_mb=128))
    assert judged.decision == Quarantine("judge_memory: judging needed more than 128 MB")
    assert pool.judge(big_mail(1), ENVELOPE, settings(judge_memory_mb=128)).decision == Accept()


def test_a_closed_pool_judges_nothing() -> None:
    judges = JudgePool(workers=1)
    assert judges.judge(compose(), ENVELOPE, settings()).decision == Accept()
    judges.close()
    with pytest.raises(JudgeUnavailable):
        judges.judge(compose(), ENVELOPE, settings())
