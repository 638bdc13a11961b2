"""The `mailbot` command: subcommands, exit codes, and never a traceback to a user.

Exit codes: 0 success, 1 the thing asked for failed or does not exist, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from mailbot import agents, config, db, inbox, logs, outbox, pipeline, priority, secret, selfcheck, views
from mailbot.cases import Context
from mailbot.config import Settings
from mailbot.files import FileStore
from mailbot.mail import Envelope
from mailbot.models import Case
from mailbot.notices import Notices
from mailbot.parse import reverse_path
from mailbot.status import STATUSES, change_status
from mailbot.web import links


class UserError(Exception):
    """A failure to report as one line with exit code 1."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line with exit code 2, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


_engines: list[Engine] = []  # disposed by main() when the command ends: no connection outlives it


def _engine(settings: Settings, *, read_only: bool = False) -> Engine:
    url = make_url(settings.database.url)
    if read_only and url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        engine = db.make_engine("sqlite://")  # nothing stored yet: look, but create no file
    else:
        engine = db.make_engine(settings.database.url, timeout=settings.database.store_timeout_seconds)
    _engines.append(engine)
    return engine


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from mailbot.daemon import Daemon

    return asyncio.run(Daemon(args.config, settings).run())


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    problems = selfcheck.problems(settings)
    if args.connect:
        problems += selfcheck.connection_problems(settings)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    warning = secret.warning(settings)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.config}: ok" + (" (relay and IMAP accounts answer)" if args.connect else ""))
    return 0


def _replay_envelope(raw: bytes, settings: Settings) -> Envelope:
    return Envelope(mail_from=reverse_path(raw), rcpt_to=settings.service.addresses[:1], source="replay")


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
    rows = views.list_cases(_engine(settings, read_only=True), args.status, overdue_only=args.overdue,
                            priority=args.priority)
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            due = f"  (due {r['answer_due']})" if args.overdue else ""
            print(f"{r['number']}  {r['status']:<9} {r['requester']:<30} {r['subject']}{due}")
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


@contextmanager
def _on_case(settings: Settings, number: int) -> Iterator[tuple[Context, Case]]:
    """One transaction on case `number` with what case actions need; rolled back on any error."""
    with db.session(_engine(settings)) as session:
        case = session.exec(select(Case).where(Case.number == number)).first()
        if case is None:
            raise UserError(f"case {number}: no such case")
        files = FileStore(settings.storage.attachments_dir)
        yield Context(session, settings, Notices(settings), files, spool_id=None), case


def _mailed(ctx: Context) -> str:
    """What the action queued, e.g. '; mailed status_changed to a@x, b@y'."""
    kinds: dict[str, list[str]] = {}
    for notice in ctx.queued:
        kinds.setdefault(notice["kind"], []).append(notice["to"])
    return "".join(f"; mailed {kind} to {', '.join(to)}" for kind, to in kinds.items())


def _set_status(
    settings: Settings, number: int, status: str, *, silent: bool = False, only_from: tuple[str, ...] = STATUSES
) -> int:
    with _on_case(settings, number) as (ctx, case):
        previous = case.status
        if previous not in only_from:
            raise UserError(f"case {number}: is {previous}, not {' or '.join(only_from)}")
        changed = change_status(ctx, case, status, silent=silent, actor="cli")
    print(f"case {number}: {previous} -> {status}{_mailed(ctx)}" if changed else f"case {number}: already {status}")
    return 0


def cmd_case_status(args: argparse.Namespace, settings: Settings) -> int:
    return _set_status(settings, args.number, args.status, silent=args.silent)


def cmd_case_close(args: argparse.Namespace, settings: Settings) -> int:
    return _set_status(settings, args.number, "closed")


def cmd_case_reopen(args: argparse.Namespace, settings: Settings) -> int:
    return _set_status(settings, args.number, "open", only_from=("resolved", "closed"))


def cmd_case_language(args: argparse.Namespace, settings: Settings) -> int:
    offered = settings.templates.languages
    if args.language not in offered:
        raise UserError(f"{args.language}: not one of the languages in config [templates] languages "
                        f"({', '.join(offered)})")
    with _on_case(settings, args.number) as (ctx, case):
        previous, case.language = case.language, args.language
        ctx.db.add(case)
    logs.event("language-changed", case=args.number, language=args.language, previous=previous, actor="cli")
    print(f"case {args.number}: language {previous} -> {args.language}; its next mail is written in it")
    return 0


def cmd_case_reply(args: argparse.Namespace, settings: Settings) -> int:
    agent = args.sender.strip().lower()
    if not settings.agents.covers(agent):
        raise UserError(f"{agent}: not an agent (config [agents] addresses and domains)")
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.strip():
        raise UserError(f"{args.file}: empty reply")
    trace: list[str] = []
    with _on_case(settings, args.number) as (ctx, case):
        try:
            agents.reply(ctx, case, agents.as_mail(settings, case, agent, text), text, trace, internal=args.internal)
        except agents.CommandError as exc:
            raise UserError(f"case {args.number}: {exc}") from None
    what = "internal note added" if "agent_note" in trace else "reply added"
    print(f"case {args.number}: {what}{_mailed(ctx)}")
    return 0


def cmd_case_priority(args: argparse.Namespace, settings: Settings) -> int:
    with _on_case(settings, args.number) as (ctx, case):
        previous = case.priority
        changed = priority.change_priority(ctx, case, args.level, actor="cli")
    print(f"case {args.number}: priority {previous} -> {args.level}" if changed
          else f"case {args.number}: already {args.level}")
    return 0


def cmd_case_link(args: argparse.Namespace, settings: Settings) -> int:
    with _on_case(settings, args.number) as (_, case):
        if args.case_command == "relink":
            case.link_salt = links.new_salt()
        link = links.url(settings, case)
    if args.case_command == "relink":
        logs.event("case-relinked", case=args.number)
    print(link)
    if not settings.web.enabled:
        print(f"mailbot: note: [web] enabled = false in {args.config}: nothing serves this page", file=sys.stderr)
    return 0


def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    rows = views.list_outbox(_engine(settings, read_only=True), args.status)
    if args.json:
        _print_json(rows)
    elif not rows:
        hint = "; --status all shows sent mail" if args.status != "all" else ""
        print(f"outbox: nothing {args.status if args.status != 'all' else 'at all'}{hint}")
    else:
        for r in rows:
            error = f"  {r['last_error']}" if r["last_error"] else ""
            case = f"case {r['case']}" if r["case"] else "no case"
            print(f"{r['id']}  {r['status']:<6} {r['kind']:<15} {r['recipient']:<30} {case}  "
                  f"attempts {r['attempts']}{error}")
    return 0


def cmd_outbox_retry(args: argparse.Namespace, settings: Settings) -> int:
    previous = outbox.retry(_engine(settings), args.id)
    if previous is None:
        raise UserError(f"outbox {args.id}: no such mail")
    if previous == "sent":
        raise UserError(f"outbox {args.id}: already sent")
    print(f"outbox {args.id}: {previous} -> queued, due now")
    return 0


def cmd_outbox_flush(args: argparse.Namespace, settings: Settings) -> int:
    flushed = outbox.flush(_engine(settings))
    print(f"outbox: {flushed} mail(s) due now" if flushed else "outbox: nothing queued or failed")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    data = views.status(_engine(settings, read_only=True), settings.daemon.stall_seconds)
    if args.json:
        _print_json(data)
    else:
        print(views.render_status(data))
    return 0 if data["healthy"] else 1


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
        elif args.raw:
            sys.stdout.buffer.write(row.raw)
        else:
            print(views.render_spool(row).rstrip("\n"))
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
    parser = Parser(prog="mailbot", description="Email-first ticketing daemon.")
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
    p = add("check-config", cmd_check_config,
            "validate the config file and render every template; exit 2 with one line per problem")
    p.add_argument("--connect", action="store_true", help="also log in to the relay and every IMAP account")
    p = add("replay", cmd_replay, "run raw RFC 5322 files through the pipeline")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="decide only: write nothing, send nothing")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    p = add("cases", cmd_cases, "list cases")
    p.add_argument("--status", choices=views.CASE_FILTERS, default="open",
                   help="open (every case not closed; the default), closed, all, or one status")
    p.add_argument("--overdue", action="store_true", help="only cases without an agent answer past their target")
    p.add_argument("--priority", choices=priority.LEVELS, help="only cases of this priority")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per case")
    help_text = ("show, reply to, or change one case: "
                 "show | reply | status | language | close | reopen | priority | link | relink")
    case = sub.add_parser("case", help=help_text, description=help_text)
    case_sub = case.add_subparsers(dest="case_command", required=True, metavar="ACTION")
    p = add("show", cmd_case_show, "show a case and its messages", case_sub)
    p.add_argument("number", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--full", action="store_true", help="show full bodies, with quoted history")
    p = add("reply", cmd_case_reply, "answer as an agent: relayed to the customer side like an agent's mail",
            case_sub)
    p.add_argument("number", type=int)
    p.add_argument("--from", dest="sender", required=True, metavar="AGENT", help="a configured agent address")
    p.add_argument("--file", required=True, metavar="BODY",
                   help="text file with the answer (- for stdin); may start with #internal / #status lines")
    p.add_argument("--internal", action="store_true", help="an internal note: nothing goes to the customer side")
    p = add("status", cmd_case_status, "set the status and mail the customer side", case_sub)
    p.add_argument("number", type=int)
    p.add_argument("status", choices=STATUSES)
    p.add_argument("--silent", action="store_true", help="an internal change: send no status mail")
    p = add("language", cmd_case_language, "set the language the case's mail is written in", case_sub)
    p.add_argument("number", type=int)
    p.add_argument("language", metavar="LANGUAGE", help="one of config [templates] languages, e.g. de or en")
    p = add("close", cmd_case_close, "close a case and mail the customer side", case_sub)
    p.add_argument("number", type=int)
    p = add("reopen", cmd_case_reopen, "reopen a resolved or closed case and mail the customer side", case_sub)
    p.add_argument("number", type=int)
    p = add("priority", cmd_case_priority, "set the priority (its answer target follows); no mail", case_sub)
    p.add_argument("number", type=int)
    p.add_argument("level", choices=priority.LEVELS)
    p = add("link", cmd_case_link, "print the link to the customer's case page", case_sub)
    p.add_argument("number", type=int)
    p = add("relink", cmd_case_link, "make a new case page link; every link sent so far stops working", case_sub)
    p.add_argument("number", type=int)
    p = add("outbox", cmd_outbox,
            "list outgoing mail; 'outbox retry ID' sends a stuck one again now, 'outbox flush' all of them")
    p.add_argument("--status", choices=views.OUTBOX_FILTERS, default="queued")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per mail")
    outbox_sub = p.add_subparsers(dest="outbox_command", metavar="[retry ID | flush]")
    p = add("retry", cmd_outbox_retry, "make a queued or failed mail due now, attempts reset", outbox_sub)
    p.add_argument("id", type=int)
    add("flush", cmd_outbox_flush, "make every queued and failed mail due now (when the relay is back)",
        outbox_sub)
    p = add("status", cmd_status, "queue depths and each worker's state; exit 1 when a worker is stalled, "
            "failing or silent")
    p.add_argument("--json", action="store_true")
    p = add("quarantine", cmd_quarantine, "list, show, release or delete quarantined mail")
    p.add_argument("action", choices=["list", "show", "release", "delete"])
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--json", action="store_true")
    p.add_argument("--raw", action="store_true", help="show: the stored bytes only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_format)
    try:
        settings = config.load(args.config)
        if args.handler is not cmd_check_config:  # it only looks; everything else needs a token secret
            settings = secret.ensure(settings)
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
    except BrokenPipeError:
        # `mailbot cases --json | head`: the reader has all it wanted. Point stdout at /dev/null
        # so the interpreter's final flush cannot fail again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the one place a surprise is turned into one line, not a traceback
        logs.event("command-failed", error=f"{type(exc).__name__}: {exc}")
        print(f"mailbot: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        while _engines:
            _engines.pop().dispose()
