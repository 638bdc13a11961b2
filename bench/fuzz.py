"""Fuzzing figures: N mutated corpus mails through judge(), beside the plain stdlib parse of the same bytes.

Run: .venv/bin/python bench/fuzz.py [--count 20000] [--seed 10]
Each side runs in a fresh process over the same mutated mails (tests/mutations.py), timing
every mail: judge() is the pure verdict the pool's workers run (pre-checks, mail-parser with
its fallbacks, libmagic, ZIP inspection, the rules), here in-process so its own time is
measured, not the pool's limit; the baseline is email.message_from_bytes plus decoding
every part. Printed: crashes (an exception out of judge), p50/p99/max seconds per mail and
the process's peak RSS, each with the ratio to the baseline. Goals (issue 10): 0 crashes,
p99 <= 0.5 s, max <= 5 s, peak RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import email
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from mutations import CORPUS, candidates, mutated  # noqa: E402

from mailbot import config  # noqa: E402
from mailbot.judge import judge  # noqa: E402
from mailbot.mail import Envelope  # noqa: E402

ENVELOPE = Envelope("replay@localhost", ("service@example.com",), "replay")


def _stdlib(raw: bytes) -> None:
    for part in email.message_from_bytes(raw).walk():
        part.get_payload(decode=True)


def run_side(side: str, count: int, seed: int) -> tuple[list[float], list[str], int]:
    """In a fresh process: seconds per mail, crash labels, peak RSS in KB."""
    settings = config.parse(
        {"service": {"addresses": ["service@example.com"], "noreply": "noreply@example.com"},
         "tokens": {"secret": "0123456789abcdef"}},
        Path("config.toml"),
    )
    times: list[float] = []
    crashes: list[str] = []
    for label, raw in mutated(candidates(), count, seed):
        start = time.perf_counter()
        try:
            if side == "judge":
                judge(raw, ENVELOPE, settings)
            else:
                _stdlib(raw)
        except Exception as exc:
            crashes.append(f"{label}: {type(exc).__name__}: {exc}"[:200])
        times.append(time.perf_counter() - start)
    return times, crashes, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="mutated mails")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}: nothing to fuzz")
        return
    results = {}
    context = multiprocessing.get_context("spawn")
    for side in ("stdlib", "judge"):  # one fresh process each: peak RSS is that side's alone
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
            results[side] = executor.submit(run_side, side, args.count, args.seed).result()
    base_times, base_crashes, base_rss = results["stdlib"]
    times, crashes, rss = results["judge"]
    print(f"{args.count} mutated mails from {len(candidates())} corpus files, seed {args.seed}")
    print(f"{'':<12}{'judge':>12}{'stdlib':>12}{'ratio':>9}")
    print(f"{'crashes':<12}{len(crashes):>12}{len(base_crashes):>12}")
    for name, q in (("p50 s", 0.5), ("p99 s", 0.99), ("max s", 1.0)):
        ours, base = quantile(times, q), quantile(base_times, q)
        print(f"{name:<12}{ours:>12.4f}{base:>12.4f}{ours / max(base, 1e-9):>8.1f}x")
    print(f"{'total s':<12}{sum(times):>12.1f}{sum(base_times):>12.1f}{sum(times) / sum(base_times):>8.1f}x")
    print(f"{'peak RSS MB':<12}{rss / 1024:>12.0f}{base_rss / 1024:>12.0f}{rss / base_rss:>8.1f}x")
    slowest = sorted(zip(times, (label for label, _ in mutated(candidates(), args.count, args.seed)),
                         strict=True), reverse=True)[:3]
    for seconds, label in slowest:
        print(f"slowest: {seconds:.3f} s  {label}")
    for crash in crashes[:10]:
        print(f"crash: {crash}")


if __name__ == "__main__":
    main()
