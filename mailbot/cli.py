"""The `mailbot` command: subcommands, exit codes, and never a traceback to a user.

Exit codes: 0 success, 1 the thing asked for failed or does not exist, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url

from mailbot import config, db, inbox, logs, pipeline, views
from mailbot.config import Settings
from mailbot.mail import Envelope


class UserError(Exception):
    """A failure to report as one line with exit code 1."""


def _engine(settings: Settings, *, read_only: bool = False) -> Engine:
    url = make_url(settings.database.url)
    if read_only and url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return db.make_engine("sqlite://")  # nothing stored yet: look, but create no file
    return db.make_engine(settings.database.url)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from mailbot.daemon import Daemon

    return asyncio.run(Daemon(args.config, settings).run())


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    print(f"{args.config}: ok")
    return 0


def _replay_envelope(raw: bytes, settings: Settings) -> Envelope:
    header_end = raw.find(b"\n\n")
    head = raw[: header_end if header_end >= 0 else len(raw)].decode("latin-1")
    from_lines = [line[5:] for line in head.splitlines() if line.lower().startswith("from:")]
    senders = getaddresses(from_lines)
    return Envelope(mail_from=senders[0][1] if senders else "", rcpt_to=settings.service.addresses[:1], source="replay")


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings, read_only=args.dry_run)
    results = []
    for name in args.files:
        try:
            raw = Path(name).read_bytes()
        except OSError as exc:
            raise UserError(f"{name}: {exc.strerror}") from None
        envelope = _replay_envelope(raw, settings)
        if args.dry_run:
            outcome = pipeline.dry_run(engine, settings, raw, envelope)
        else:
            stored = inbox.store(engine, raw, envelope)
            state, decided = pipeline.run(engine, settings, stored.spool_id)
            outcome = decided or pipeline.Outcome("ignored", reason="duplicate" if stored.duplicate else state)
        results.append({"file": name, **outcome.as_dict()})
    if args.json:
        _print_json(results)
    else:
        for r in results:
            print(f"{r['file']}: {r['verdict']}" + (f" ({r['reason']})" if r["reason"] else "")
                  + (f" case {r['case']}" if r["case"] else ""))
    return 0


def cmd_cases(args: argparse.Namespace, settings: Settings) -> int:
    rows = views.list_cases(_engine(settings, read_only=True), args.status)
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['number']}  {r['status']:<9} {r['requester']:<30} {r['subject']}")
    return 0


def cmd_case_show(args: argparse.Namespace, settings: Settings) -> int:
    data = views.show_case(_engine(settings, read_only=True), args.number, full=args.full)
    if data is None:
        raise UserError(f"case {args.number}: no such case")
    if args.json:
        _print_json(data)
    else:
        print(views.render_case(data))
    return 0


def cmd_case_close(args: argparse.Namespace, settings: Settings) -> int:
    if not views.set_status(_engine(settings), settings, args.number, "closed"):
        raise UserError(f"case {args.number}: no such case")
    print(f"case {args.number}: closed")
    return 0


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings, read_only=args.action == "list")
    if args.action == "list":
        rows = [views.spool_summary(row) for row in inbox.quarantined(engine)]
        if args.json:
            _print_json(rows)
        else:
            for r in rows:
                print(f"{r['id']}  {r['received_at']}  {r['mail_from']:<30} {r['verdict']}: {r['reason']}")
        return 0
    if args.id is None:
        raise UserError(f"quarantine {args.action}: needs the quarantined mail's id")
    if args.action == "show":
        row = inbox.get(engine, args.id)
        if row is None or row.status != "quarantined":
            raise UserError(f"quarantine {args.id}: no such quarantined mail")
        if args.json:
            _print_json(views.spool_summary(row))
        else:
            sys.stdout.buffer.write(row.raw)
        return 0
    if args.action == "release":
        if not inbox.release(engine, args.id):
            raise UserError(f"quarantine {args.id}: no such quarantined mail")
        state = pipeline.process(engine, settings, args.id)
        print(f"quarantine {args.id}: released, now {state}")
        return 0
    if not inbox.delete(engine, args.id):
        raise UserError(f"quarantine {args.id}: no such quarantined mail")
    print(f"quarantine {args.id}: deleted")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailbot", description="Email-first ticketing daemon.")
    parser.add_argument("--config", default=os.environ.get("MAILBOT_CONFIG", config.DEFAULT_CONFIG),
                        help="config file (default ./config.toml, or $MAILBOT_CONFIG)")
    parser.add_argument("--log-format", choices=["kv", "json"], default="kv", help="log line format")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace, Settings], int], help_text: str,
            parent: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("run", cmd_run, "run the daemon (SMTP intake, processing, outbox)")
    add("check-config", cmd_check_config, "validate the config file; exit 2 with one line per problem")
    p = add("replay", cmd_replay, "run raw RFC 5322 files through the pipeline")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="decide only: write nothing, send nothing")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    p = add("cases", cmd_cases, "list cases")
    p.add_argument("--status", choices=["open", "closed", "all"], default="open")
    p.add_argument("--json", action="store_true")
    case = sub.add_parser("case", help="show or change one case", description="show or change one case")
    case_sub = case.add_subparsers(dest="case_command", required=True, metavar="ACTION")
    p = add("show", cmd_case_show, "show a case and its messages", case_sub)
    p.add_argument("number", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--full", action="store_true", help="show full bodies, with quoted history")
    p = add("close", cmd_case_close, "close a case", case_sub)
    p.add_argument("number", type=int)
    p = add("quarantine", cmd_quarantine, "list, show, release or delete quarantined mail")
    p.add_argument("action", choices=["list", "show", "release", "delete"])
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_format)
    try:
        settings = config.load(args.config)
    except config.ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        return int(args.handler(args, settings))
    except UserError as exc:
        print(f"mailbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the one place a surprise is turned into one line, not a traceback
        logs.event("command-failed", error=f"{type(exc).__name__}: {exc}")
        print(f"mailbot: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
