"""Case-token find rate (subjects/s), beside a bare regex search of a fixed string in the same run.

The baseline is the least any finder must do: scan each subject once for "[#SVC-". The ratio
says what the HMAC check and the tolerant pattern cost on top, independent of the machine.
Each measurement is one function returning subjects/s; add new ones (e.g. the database lookup
at 1k and 1M cases) the same way and print them with `report`.
The database part opens one SQLite store with 1,000 cases and one with 1,000,000 (each case with
one message), and measures `match.find_case` by token and by In-Reply-To in both: the rate at
1M must stay within 20% of the rate at 1k (indexed lookups, no scans).
Usage: python bench/match.py [--subjects 20000] [--seconds 1.0] [--large 1000000]
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot import casetoken, config, db, match
from mailbot.config import TokenSettings
from mailbot.mail import ParsedMail
from mailbot.models import Case, Message
from mailbot.parse import parse

SETTINGS = TokenSettings(prefix="SVC", secret="bench-secret-0123456789", previous_secrets=("old-secret-0123456789",))
TOPICS = ("Drucker druckt nicht", "Rechnung 2024-117: USt-IdNr. fehlt", "Zugang für neue Mitarbeiterin",
          "Export fails with error 500", "Lizenz verlängern", "Termin Wartung Donnerstag 9 Uhr")  # fmt: skip
CHAINS = ("", "Re: ", "AW: ", "AW: WG: ", "RE: [EXTERN] ", "Antwort: Re[2]: ")


def subjects(count: int, with_token: bool, seed: int = 1) -> list[str]:
    """Subjects as replies (token somewhere after a reply chain) or as new mail (no token)."""
    pick = random.Random(seed)
    made = []
    for _ in range(count):
        topic = pick.choice(TOPICS)
        if with_token:
            tag = casetoken.tag(casetoken.make(pick.randrange(1, 10**6), SETTINGS))
            made.append(f"{pick.choice(CHAINS)}{tag} {topic}")
        else:
            made.append(f"{pick.choice(CHAINS)}{topic}")
    return made


def rate(work: Callable[[], object], items: int, seconds: float) -> float:
    """Items per second of `work` (which handles `items` items), best of repeated runs."""
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == float("inf"):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return items / best


def baseline_search(lines: Sequence[str], seconds: float) -> float:
    fixed = re.compile(re.escape("[#SVC-"))
    return rate(lambda: [fixed.search(s) for s in lines], len(lines), seconds)


def token_find(lines: Sequence[str], seconds: float) -> float:
    return rate(lambda: [casetoken.find(s, SETTINGS) for s in lines], len(lines), seconds)


def filled_store(folder: Path, cases: int) -> Engine:
    """A SQLite store with `cases` cases, each with its opening message, inserted in bulk."""
    engine = db.make_engine(f"sqlite:///{folder / f'cases-{cases}.db'}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(1, cases + 1, 50_000):
            numbers = range(start, min(start + 50_000, cases + 1))
            conn.execute(insert(Case), [
                {"id": n, "number": n, "token": casetoken.make(n, SETTINGS), "subject": "Drucker", "status": "open",
                 "requester": f"c{n}@customer.test", "created": now, "updated": now} for n in numbers])
            conn.execute(insert(Message), [
                {"case_id": n, "direction": "in", "message_id": f"<m{n}@customer.test>", "from_addr": "c@x.test",
                 "date": now} for n in numbers])
    return engine


def lookups(cases: int, count: int, by_token: bool) -> list[ParsedMail]:
    pick = random.Random(cases)
    template = parse(b"From: c@customer.test\r\nSubject: x\r\nMessage-ID: <x@customer.test>\r\n\r\nText\r\n")
    mails = []
    for _ in range(count):
        number = pick.randrange(1, cases + 1)
        if by_token:
            subject = f"AW: {casetoken.tag(casetoken.make(number, SETTINGS))} Drucker"
            mails.append(replace(template, subject=subject))
        else:
            mails.append(replace(template, subject="AW: Drucker", in_reply_to=(f"<m{number}@customer.test>",)))
    return mails


def database_match(stores: Sequence[tuple[Engine, int]], count: int, by_token: bool,
                   rounds: int) -> list[float]:
    """find_case rate in each (engine, case count) store, in mails/s.

    The stores take turns, round after round, and each keeps its best round: a load spike on
    this shared machine then hits both alike instead of skewing the ratio.
    """
    settings = config.parse({"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
                             "tokens": SETTINGS.model_dump()}, Path("bench.toml"))
    work = [(engine, lookups(cases, count, by_token)) for engine, cases in stores]
    best = [float("inf")] * len(stores)
    for _ in range(rounds):
        for index, (engine, mails) in enumerate(work):
            with Session(engine) as session:
                start = time.perf_counter()
                for mail in mails:
                    assert match.find_case(session, mail, settings)[0] is not None
                best[index] = min(best[index], time.perf_counter() - start)
    return [count / seconds for seconds in best]


def report(name: str, value: float, unit: str, baseline: float) -> None:
    print(f"{name}: {value:,.0f} {unit} ({value / baseline:.2f} x baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--large", type=int, default=1_000_000, help="cases in the large store")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per store")
    args = parser.parse_args()
    replies = subjects(args.subjects, with_token=True)
    new_mail = subjects(args.subjects, with_token=False)
    assert all(casetoken.find(s, SETTINGS) for s in replies[:100])
    baseline = baseline_search(replies, args.seconds)
    report("baseline re.search fixed string", baseline, "subjects/s", baseline)
    report("token find, subjects with a token", token_find(replies, args.seconds), "subjects/s", baseline)
    report("token find, subjects without one", token_find(new_mail, args.seconds), "subjects/s", baseline)
    with tempfile.TemporaryDirectory() as tmp:
        small, large = filled_store(Path(tmp), 1_000), filled_store(Path(tmp), args.large)
        for by_token, name in ((True, "by token"), (False, "by In-Reply-To")):
            at_small, at_large = database_match([(small, 1_000), (large, args.large)], 2_000, by_token, args.rounds)
            report(f"find_case {name}, 1k cases", at_small, "mails/s", at_small)
            report(f"find_case {name}, {args.large:,} cases", at_large, "mails/s", at_small)


if __name__ == "__main__":
    main()
