"""Case-token find rate (subjects/s), beside a bare regex search of a fixed string in the same run.

The baseline is the least any finder must do: scan each subject once for "[#SVC-". The ratio
says what the HMAC check and the tolerant pattern cost on top, independent of the machine.
Each measurement is one function returning subjects/s; add new ones (e.g. the database lookup
at 1k and 1M cases) the same way and print them with `report`.
Usage: python bench/match.py [--subjects 20000] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable, Sequence

from mailbot import casetoken
from mailbot.config import TokenSettings

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


def report(name: str, value: float, unit: str, baseline: float) -> None:
    print(f"{name}: {value:,.0f} {unit} ({value / baseline:.2f} x baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    args = parser.parse_args()
    replies = subjects(args.subjects, with_token=True)
    new_mail = subjects(args.subjects, with_token=False)
    assert all(casetoken.find(s, SETTINGS) for s in replies[:100])
    baseline = baseline_search(replies, args.seconds)
    report("baseline re.search fixed string", baseline, "subjects/s", baseline)
    report("token find, subjects with a token", token_find(replies, args.seconds), "subjects/s", baseline)
    report("token find, subjects without one", token_find(new_mail, args.seconds), "subjects/s", baseline)


if __name__ == "__main__":
    main()
