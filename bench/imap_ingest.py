"""IMAP intake throughput: a Dovecot mailbox of N messages drained into cases, beside a bare fetch.

The baseline is the least any IMAP reader must do: one imapclient session fetching every
message of the same mailbox with BODY.PEEK[] in batches of the same size. mailbot's run adds
the spool commit, the whole pipeline (case, receipt queued) and the UID MOVE per batch, so
the ratio says what exactly-once costs on top of the wire. Each side runs in its own process
so its peak RSS is its own (VmHWM). Usage: python bench/imap_ingest.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from dovecot import Dovecot, mail  # noqa: E402
from support import base_sections, wait_for  # noqa: E402


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bare(port: int, batch: int) -> dict[str, Any]:
    from imapclient import IMAPClient

    start = time.monotonic()
    with IMAPClient("127.0.0.1", port, ssl=False) as client:
        client.login("tester", "secret")
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        count = 0
        for first in range(0, len(uids), batch):
            count += len(client.fetch(uids[first:first + batch], ["BODY.PEEK[]"]))
    return {"messages": count, "seconds": time.monotonic() - start}


def mailbot(port: int, batch: int, total: int) -> dict[str, Any]:
    from mailbot import config, db
    from mailbot.config import ImapAccount
    from mailbot.intake_imap import ImapWatcher

    folder = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    settings = config.parse(base_sections(folder, f"sqlite:///{folder / 'mailbot.db'}"), folder / "config.toml")
    engine = db.make_engine(settings.database.url)
    account = ImapAccount(name="bench", host="127.0.0.1", port=port, tls="none", username="tester",
                          password="secret", batch_size=batch, poll_interval=600.0)
    handled: list[int] = []
    watcher = ImapWatcher(account, engine, lambda: settings, handled.append)
    start = time.monotonic()
    watcher.start()
    wait_for(lambda: len(handled) >= total, timeout=3600, interval=0.2)
    seconds = time.monotonic() - start
    watcher.stop()
    return {"messages": len(handled), "seconds": seconds}


def run_phase(phase: str, port: int, batch: int, total: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--port", str(port), "--batch", str(batch),
               "--messages", str(total)]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, cwd=ROOT).stdout)
    return dict(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--size", type=int, default=4000, help="approximate bytes per message")
    parser.add_argument("--phase", choices=["bare", "mailbot"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        measure = bare(args.port, args.batch) if args.phase == "bare" else \
            mailbot(args.port, args.batch, args.messages)
        print(json.dumps(measure | {"peak_rss_mb": peak_rss_mb()}))
        return

    server = Dovecot()
    try:
        server.start()
        server.drop(mail(n, sender=f"c{n % 50}@customer.test", size=args.size) for n in range(args.messages))
        server.uids()  # let Dovecot index the new files before either side is timed
        baseline = run_phase("bare", server.port, args.batch, args.messages)
        ours = run_phase("mailbot", server.port, args.batch, args.messages)
        assert server.uids("INBOX") == [] and len(server.uids("Processed")) == args.messages
    finally:
        server.close()
    ours_rate = ours["messages"] / ours["seconds"]
    bare_rate = baseline["messages"] / baseline["seconds"]
    print(f"imap ingest, {args.messages} messages of ~{args.size} bytes, batches of {args.batch}")
    print(f"  mailbot (fetch, spool, pipeline, move): {ours_rate:9.1f} messages/s"
          f"  peak RSS {ours['peak_rss_mb']:.0f} MB")
    print(f"  bare imapclient fetch:                  {bare_rate:9.1f} messages/s"
          f"  peak RSS {baseline['peak_rss_mb']:.0f} MB")
    print(f"  ratio mailbot / bare: {ours_rate / bare_rate:.3f}")


if __name__ == "__main__":
    main()
