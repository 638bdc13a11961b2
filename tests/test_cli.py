"""The operator's commands over a real database with real cases (both backends).

Behaviour is driven through `cli.main(argv)`, the function the `mailbot` script runs, because
each `python -m mailbot` pays about 1.5 s of imports; the last tests run the real process to
show what reaches a terminal: one line per error, the right exit code, never a traceback
(on SQLite only: what they show does not depend on the database).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from support import ROOT, compose
from test_status import Office, make_office

from mailbot import cases, cli, db
from mailbot.models import Outbox, utcnow
from mailbot.parse import parse

AGENT = "anna@example.com"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error(self) -> str:
        """The error line: stderr must hold exactly one."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


@dataclass
class Shell:
    office: Office
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> Result:
        try:
            code = cli.main(["--config", str(self.office.config_path), *args])
        except SystemExit as exc:  # argparse: --help and usage errors
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return Result(code, out, err)


@pytest.fixture
def mailbot(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> Iterator[Shell]:
    # cli.main points logging at the stderr of the moment; give pytest its handlers back after.
    root, saved = logging.getLogger(), logging.getLogger().handlers[:]
    office = make_office(tmp_path, db_url)
    yield Shell(office, capsys)
    office.engine.dispose()
    root.handlers[:] = saved


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_case_reply_status_close_and_reopen(mailbot: Shell, tmp_path: Path) -> None:
    number = mailbot.office.open_case(headers={"Cc": "kollegin@customer.test"})
    customers = "kunde@customer.test, kollegin@customer.test"

    assert mailbot("case", "status", str(number), "waiting", "--silent").out == f"case {number}: new -> waiting\n"
    reply = mailbot("case", "reply", str(number), "--from", AGENT, "--file", write(tmp_path, "a.txt", "Ist erledigt."))
    assert reply.out == f"case {number}: reply added; mailed agent_reply to {customers}\n"
    note = write(tmp_path, "n.txt", "#status resolved\nKunde bestätigt am Telefon.")
    assert mailbot("case", "reply", str(number), "--from", AGENT, "--file", note, "--internal").out == (
        f"case {number}: internal note added; mailed status_changed to {customers}\n")
    assert mailbot("case", "close", str(number)).out == (
        f"case {number}: resolved -> closed; mailed status_changed to {customers}\n")
    assert mailbot("case", "close", str(number)).out == f"case {number}: already closed\n"
    assert mailbot("case", "reopen", str(number)).out == (
        f"case {number}: closed -> open; mailed status_changed to {customers}\n")

    shown = mailbot("case", "show", str(number), "--json").json()
    assert shown["status"] == "open" and shown["answered_at"] is not None
    agent = [(m["internal"], m["text"]) for m in shown["messages"] if m["kind"] == "agent"]
    assert agent == [(False, "Ist erledigt."), (True, "#status resolved\nKunde bestätigt am Telefon.")]
    relayed = [m for m in shown["messages"] if m["direction"] == "out" and m["from"] == "service@example.com"]
    assert [m["to"] for m in relayed] == ["kunde@customer.test", "kollegin@customer.test"]
    assert all(m["text"].startswith("Ist erledigt.") for m in relayed)


def test_cases_lists_by_status_as_text_and_json(mailbot: Shell) -> None:
    first = mailbot.office.open_case(subject="Drucker")
    second = mailbot.office.open_case(subject="Scanner", sender="chef@customer.test")
    assert mailbot("case", "close", str(second)).code == 0

    active = mailbot("cases", "--json").json()
    assert [c["number"] for c in active] == [first]
    assert set(active[0]) == {"number", "token", "subject", "status", "requester", "language", "participants",
                              "created", "updated", "answer_due", "answered_at", "priority", "estimate_minutes",
                              "callback_requested_at", "callback_phone"}
    assert active[0]["participants"] == [{"address": "kunde@customer.test", "role": "requester"}]
    assert [c["number"] for c in mailbot("cases", "--status", "closed", "--json").json()] == [second]
    assert [c["number"] for c in mailbot("cases", "--status", "all", "--json").json()] == [first, second]
    assert mailbot("cases", "--overdue", "--json").json() == []
    text = mailbot("cases", "--status", "all").out.splitlines()
    assert text[0].split()[:3] == [str(first), "new", "kunde@customer.test"] and text[1].endswith("Scanner")


def test_outbox_lists_and_retries(mailbot: Shell) -> None:
    assert mailbot("outbox").out == "outbox: nothing queued; --status all shows sent mail\n"
    assert mailbot("outbox", "--status", "all").out == "outbox: nothing at all\n"
    number = mailbot.office.open_case()
    queued = mailbot("outbox", "--json").json()
    assert [(r["kind"], r["recipient"], r["case"], r["status"]) for r in queued] == [
        ("receipt", "kunde@customer.test", number, "queued")]
    row_id = queued[0]["id"]
    with db.session(mailbot.office.engine) as session:
        row = session.get(Outbox, row_id)
        assert row is not None
        row.status, row.attempts, row.last_error = "failed", 20, "550 5.1.1 mailbox unknown"
        session.add(row)

    failed = mailbot("outbox", "--status", "failed")
    assert failed.out.split()[:4] == [str(row_id), "failed", "receipt", "kunde@customer.test"]
    assert "550 5.1.1 mailbox unknown" in failed.out
    assert mailbot("outbox", "retry", str(row_id)).out == f"outbox {row_id}: failed -> queued, due now\n"
    again = mailbot("outbox", "--status", "all", "--json").json()[0]
    assert (again["status"], again["attempts"], again["last_error"]) == ("queued", 0, None)

    with db.session(mailbot.office.engine) as session:
        session.exec(select(Outbox).where(Outbox.id == row_id)).one().status = "sent"
    assert mailbot("outbox", "retry", str(row_id)).error == f"mailbot: outbox {row_id}: already sent"


def test_outbox_flush_makes_queued_and_failed_mail_due_now(mailbot: Shell) -> None:
    for sender in ("a@customer.test", "b@customer.test", "c@customer.test"):
        mailbot.office.open_case(sender=sender)
    with db.session(mailbot.office.engine) as session:
        waiting, failed, sent = session.exec(select(Outbox).order_by(col(Outbox.id))).all()
        waiting.attempts, waiting.next_attempt_at = 4, utcnow() + timedelta(hours=1)
        failed.status, failed.attempts, failed.last_error = "failed", 20, "550 5.1.1 mailbox unknown"
        sent.status, sent.attempts = "sent", 1
    assert mailbot("outbox", "flush").out == "outbox: 2 mail(s) due now\n"
    rows = mailbot("outbox", "--status", "all", "--json").json()
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows] == [
        ("queued", 0, None), ("queued", 0, None), ("sent", 1, None)]
    assert all(datetime.fromisoformat(r["next_attempt_at"]) <= utcnow() for r in rows[:2])
    with db.session(mailbot.office.engine) as session:
        for row in session.exec(select(Outbox)).all():
            row.status = "sent"
    assert mailbot("outbox", "flush").out == "outbox: nothing queued or failed\n"


def test_a_refusal_names_the_case_it_concerns(mailbot: Shell) -> None:
    number = mailbot.office.open_case()
    assert mailbot("case", "close", str(number)).code == 0
    mailbot.office.on_case(number, lambda ctx, case: cases.refuse(
        ctx, parse(compose(subject="Noch was")), "case_closed", (), case))
    mailbot.office.act(lambda ctx: cases.refuse(ctx, parse(compose(subject="Hallo")), "no_new_cases", ()))
    lines = mailbot("outbox").out.splitlines()
    assert [line.split()[2] for line in lines] == ["receipt", "status_changed", "case_closed", "no_new_cases"]
    assert f"case {number}" in lines[2] and "no case" in lines[3]


def test_refusals_are_one_line_with_exit_code(mailbot: Shell, tmp_path: Path) -> None:
    number = mailbot.office.open_case()
    body = write(tmp_path, "body.txt", "Hallo")
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("case", "show", "99"), 1, "mailbot: case 99: no such case"),
        (("case", "close", "99"), 1, "mailbot: case 99: no such case"),
        (("case", "reopen", str(number)), 1, f"mailbot: case {number}: is new, not resolved or closed"),
        (("case", "reply", str(number), "--from", "kunde@customer.test", "--file", body), 1,
         "mailbot: kunde@customer.test: not an agent (config [agents] addresses and domains)"),
        (("case", "reply", str(number), "--from", AGENT, "--file", str(tmp_path / "missing.txt")), 1,
         f"mailbot: {tmp_path / 'missing.txt'}: No such file or directory"),
        (("case", "reply", str(number), "--from", AGENT, "--file", write(tmp_path, "bad.txt", "#status done\nx")),
         1, f"mailbot: case {number}: cannot read the command line '#status done'"),
        (("outbox", "retry", "99"), 1, "mailbot: outbox 99: no such mail"),
        (("case", "status", str(number), "archived"), 2, "mailbot case status: argument status: invalid choice: "
         "'archived' (choose from 'new', 'open', 'waiting', 'resolved', 'closed') (see mailbot case status --help)"),
        (("cases", "--status", "gone"), 2, "mailbot cases: argument --status: invalid choice: 'gone' (choose from "
         "'open', 'closed', 'all', 'new', 'waiting', 'resolved') (see mailbot cases --help)"),
    ]
    for args, code, line in cases:
        result = mailbot(*args)
        assert (result.code, result.error, result.out) == (code, line, ""), args
    assert mailbot("case", "show", str(number), "--json").json()["status"] == "new"  # nothing half-done


def run_all(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run `python -m mailbot` once per argument list, side by side (each pays the imports)."""
    procs = [subprocess.Popen([sys.executable, "-m", "mailbot", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=str(ROOT)) for args in commands]
    results = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results


def test_help_lists_every_command() -> None:
    top, case = run_all(["--help"], ["case", "--help"])
    for command in ("run", "check-config", "replay", "cases", "case", "outbox", "quarantine"):
        assert f"\n    {command} " in top.stdout
    for action in ("show", "reply", "status", "language", "close", "reopen", "priority", "link", "relink"):
        assert f"\n    {action} " in case.stdout


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path, sqlite_url: str) -> None:
    office = make_office(tmp_path, sqlite_url)
    for n in range(3):
        office.open_case(sender=f"k{n}@customer.test")
    office.engine.dispose()
    # `mailbot cases --json | head -0`: the reader is gone before the first line is written.
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(office.config_path), "cases", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read()
    assert (proc.wait(timeout=60), err) == (0, b"")


def test_the_real_process_prints_one_line_and_no_traceback(tmp_path: Path, sqlite_url: str) -> None:
    office = make_office(tmp_path, sqlite_url)
    office.engine.dispose()
    config = str(office.config_path)
    broken = tmp_path / "broken.toml"
    broken.write_text(office.config_path.read_text().replace("[smtp]\n", '[smtp]\nhostname = 25\n'))
    expected = [
        (1, "mailbot: case 12345: no such case"),
        (2, "mailbot case: argument ACTION: invalid choice: 'frobnicate' (choose from 'show', 'reply', 'status', "
            "'language', 'close', 'reopen', 'priority', 'link', 'relink') (see mailbot case --help)"),
        (2, "broken.toml: smtp.hostname: expected a string"),
    ]
    failures = run_all(
        ["--config", config, "case", "show", "12345"],
        ["--config", config, "case", "frobnicate"],
        ["--config", str(broken), "cases"],
    )
    for result, (code, line) in zip(failures, expected, strict=True):
        assert (result.returncode, result.stderr, result.stdout) == (code, line + "\n", ""), result.args
