"""2,000 mutated real-world mails through the judge pool: every one gets a verdict in time.

The pool's time limit is set to the 2 s the issue allows per mail, so a mail that takes
longer comes back as `judge_timeout` and fails the test, as does any mail whose judging
raised (`judge_failed`) or killed its worker (`judge_crashed`). bench/fuzz.py runs 20,000 of
them with p99, max and peak memory.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mutations import CORPUS, candidates, mutated

from mailbot import config, judgepool
from mailbot.mail import Envelope
from mailbot.verdicts import Quarantine

ENVELOPE = Envelope("replay@localhost", ("service@example.com",), "replay")
COUNT = 2_000
BATCH = 100


def test_every_mutated_mail_gets_a_verdict_within_two_seconds() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    settings = config.parse(
        {"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
         "tokens": {"secret": "0123456789abcdef"}, "limits": {"judge_seconds": 2.0}},
        Path("config.toml"),
    )
    mails = list(mutated(candidates(), COUNT))
    pool = judgepool.shared()
    failures: list[str] = []
    verdicts: Counter[str] = Counter()
    for start in range(0, COUNT, BATCH):
        batch = mails[start:start + BATCH]
        for (label, _), judged in zip(batch, pool.judge_many([(raw, ENVELOPE) for _, raw in batch], settings),
                                      strict=True):
            decision = judged.decision
            verdicts[type(decision).__name__] += 1
            if isinstance(decision, Quarantine) and decision.reason.startswith("judge_"):
                failures.append(f"{label}: {decision.reason}")
    assert not failures, "\n".join(failures)
    assert sum(verdicts.values()) == COUNT and verdicts["Accept"] > COUNT // 10, verdicts
