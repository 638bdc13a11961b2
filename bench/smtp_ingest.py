"""SMTP intake throughput and receipt latency, beside a bare aiosmtpd in the same run.

Prints messages/s through mailbot's full path (SMTP -> spool commit -> 250) with N concurrent
clients, the same clients against `python -m aiosmtpd` with its Sink handler (answers 250,
stores nothing), their ratio, receipt latency (p50/p99 from our 250 to the relay's 250), and
the daemon's peak RSS. Usage: python bench/smtp_ingest.py [--clients 8] [--messages 100]
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import DaemonProcess, base_sections, free_port, wait_for, write_config  # noqa: E402


class TimedRelay:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"")
        with self.lock:
            self.arrived[str(message["In-Reply-To"])] = time.monotonic()
        return "250 OK"


def blast(port: int, clients: int, per_client: int, tag: str) -> tuple[float, dict[str, float]]:
    """Send clients x per_client mails, one connection per client; returns (seconds, 250 times)."""
    accepted: dict[str, float] = {}
    lock = threading.Lock()

    def client(worker: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for n in range(per_client):
                message_id = f"<{tag}-{worker}-{n}@bench.test>"
                raw = (f"From: c{worker}@customer.test\r\nTo: service@example.com\r\nSubject: Problem {n}\r\n"
                       f"Message-ID: {message_id}\r\n\r\n" + "Text der Anfrage.\r\n" * 40).encode()
                smtp.sendmail(f"c{worker}@customer.test", ["service@example.com"], raw)
                with lock:
                    accepted[message_id] = time.monotonic()

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - start, accepted


def paced(port: int, rate: float, count: int) -> dict[str, float]:
    """One client sending `count` mails at `rate` per second: latency when mailbot keeps up."""
    accepted: dict[str, float] = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        start = time.monotonic()
        for n in range(count):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            message_id = f"<paced-{n}@bench.test>"
            raw = (f"From: p{n}@customer.test\r\nTo: service@example.com\r\nSubject: Frage {n}\r\n"
                   f"Message-ID: {message_id}\r\n\r\nText.\r\n").encode()
            smtp.sendmail(f"p{n}@customer.test", ["service@example.com"], raw)
            accepted[message_id] = time.monotonic()
    return accepted


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=100, help="per client")
    parser.add_argument("--paced-rate", type=float, default=10.0, help="msg/s of the paced latency run")
    parser.add_argument("--paced-messages", type=int, default=100)
    parser.add_argument("--database-url", default="", help="an empty database to use instead of a fresh SQLite file")
    args = parser.parse_args()
    total = args.clients * args.messages

    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{bare_port}",
                             "-c", "aiosmtpd.handlers.Sink"])
    relay = TimedRelay()
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sections = base_sections(folder, args.database_url or f"sqlite:///{folder / 'mailbot.db'}",
                                 relay={"mode": "smtp", "host": "127.0.0.1", "port": controller.port},
                                 policy={"notice_limit": 100000, "domain_hourly_limit": 100000,
                                         "global_hourly_limit": 100000},
                                 smtp={"max_mails_per_ip_per_minute": 0})
        daemon = DaemonProcess(write_config(folder / "config.toml", sections), folder / "mailbot.log").start()
        try:
            import socket

            wait_for(lambda: socket.create_connection(("127.0.0.1", bare_port), timeout=1).close() or True)
            bare_seconds, _ = blast(bare_port, args.clients, args.messages, "bare")
            seconds, accepted = blast(daemon.port, args.clients, args.messages, "mailbot")
            wait_for(lambda: len(relay.arrived) >= total, timeout=600, interval=0.2)
            steady = paced(daemon.port, args.paced_rate, args.paced_messages)
            wait_for(lambda: len(relay.arrived) >= total + args.paced_messages, timeout=600, interval=0.2)
            assert daemon.proc is not None
            peak_kib = next(int(line.split()[1]) for line in Path(f"/proc/{daemon.proc.pid}/status").read_text()
                            .splitlines() if line.startswith("VmHWM"))
        finally:
            daemon.stop()
            bare.terminate()
            bare.wait()
            controller.stop()
    latencies = [relay.arrived[mid] - accepted[mid] for mid in accepted]
    steady_latencies = [relay.arrived[mid] - steady[mid] for mid in steady]
    mailbot_rate, bare_rate = total / seconds, total / bare_seconds
    print(f"smtp_ingest: {args.clients} clients x {args.messages} messages")
    print(f"mailbot intake:      {mailbot_rate:8.1f} msg/s")
    print(f"bare aiosmtpd sink:  {bare_rate:8.1f} msg/s")
    print(f"ratio mailbot/bare:  {mailbot_rate / bare_rate:8.3f}")
    print(f"receipt latency p50: {percentile(latencies, 50) * 1000:8.1f} ms   (burst: every mail sent at once)")
    print(f"receipt latency p99: {percentile(latencies, 99) * 1000:8.1f} ms")
    print(f"paced {args.paced_rate:g} msg/s p50:  {percentile(steady_latencies, 50) * 1000:8.1f} ms")
    print(f"paced {args.paced_rate:g} msg/s p99:  {percentile(steady_latencies, 99) * 1000:8.1f} ms")
    print(f"daemon peak RSS:     {peak_kib / 1024:8.1f} MiB")


if __name__ == "__main__":
    main()
