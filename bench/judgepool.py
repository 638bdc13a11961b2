"""What the judge pool costs: start-up, and per mail beside judge() in-process on the same mails.

Run: .venv/bin/python bench/judgepool.py [--mails 2000]
Start-up is the time from JudgePool() to the first verdict (forkserver, preloaded imports,
workers). Per mail: judge() in this process (the baseline: the mail work alone, one core),
the pool one mail at a time (IPC round trip on top), and the pool in batches of 50 as the
pipeline uses it (all cores). The ratios say what bounding each mail costs and what the
cores give back.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mailbot import config
from mailbot.judge import judge
from mailbot.judgepool import JudgePool
from mailbot.mail import Envelope

ENVELOPE = Envelope("kunde@customer.test", ("service@example.com",), "smtp")
SETTINGS = config.parse(
    {"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
     "tokens": {"secret": "0123456789abcdef"}},
    Path("config.toml"),
)


def mail(number: int) -> bytes:
    return (
        f"From: Kunde {number} <kunde{number}@customer.test>\r\nTo: service@example.com\r\n"
        f"Subject: Drucker {number}\r\nMessage-ID: <pool{number}@customer.test>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Der Drucker druckt nicht.\r\n" * 40
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    count = parser.parse_args().mails
    mails = [mail(n) for n in range(count)]

    start = time.perf_counter()
    for raw in mails:
        judge(raw, ENVELOPE, SETTINGS)
    alone = count / (time.perf_counter() - start)

    start = time.perf_counter()
    pool = JudgePool()
    pool.judge(mails[0], ENVELOPE, SETTINGS)
    startup = time.perf_counter() - start

    start = time.perf_counter()
    for raw in mails:
        pool.judge(raw, ENVELOPE, SETTINGS)
    single = count / (time.perf_counter() - start)

    start = time.perf_counter()
    for first in range(0, count, 50):
        pool.judge_many([(raw, ENVELOPE) for raw in mails[first:first + 50]], SETTINGS)
    batched = count / (time.perf_counter() - start)
    pool.close()

    print(f"{count} mails of {len(mails[0])} bytes, {os.cpu_count()} cores, {pool.workers} workers")
    print(f"pool start-up to first verdict   {startup * 1000:8.0f} ms")
    print(f"judge() in-process (baseline)    {alone:8.0f} mails/s   {1000 / alone:6.2f} ms/mail")
    print(f"pool, one mail at a time         {single:8.0f} mails/s   {1000 / single:6.2f} ms/mail"
          f"   {single / alone:.2f}x")
    print(f"pool, batches of 50              {batched:8.0f} mails/s   {1000 / batched:6.2f} ms/mail"
          f"   {batched / alone:.2f}x")


if __name__ == "__main__":
    main()
