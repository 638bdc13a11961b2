"""`mailbot replay`: the same pipeline as intake, from files; --dry-run writes and sends nothing.

The shared real-world corpus runs through `replay --dry-run --json` in one process: every file
gets a verdict, none crashes, and the kinds with a known outcome get it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, base_sections, compose, write_config
from test_checks_corpus import CORPUS, NOT_RECOGNISABLE_AS_ROBOT, ROBOT_KINDS

VERDICTS = {"new_case", "reply", "rejected", "ignored", "quarantined"}


def replay(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config), "replay", *args],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=600)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.toml", base_sections(tmp_path, f"sqlite:///{tmp_path / 'db' / 'm.db'}"))


def test_dry_run_decides_without_writing(tmp_path: Path, config: Path) -> None:
    (tmp_path / "new.eml").write_bytes(compose(message_id="dry"))
    result = replay(config, "--dry-run", "--json", str(tmp_path / "new.eml"))
    assert result.returncode == 0, result.stderr
    (outcome,) = json.loads(result.stdout)
    assert outcome == {
        "file": str(tmp_path / "new.eml"), "verdict": "new_case", "reason": None, "case": 10001,
        "notices": [{"kind": "receipt", "to": "kunde@customer.test"}], "attachments": [],
        "auth": {"result": "none", "why": "no dkim signature of the from domain"},
        "trace": ["parse", "auth_none", "loop", "bounce", "auto_reply", "bulk", "too_large", "shape", "rich_text",
                  "encrypted", "attachments", "match_none"],
    }
    assert not (tmp_path / "db").exists() and not (tmp_path / "outgoing").exists()


def test_replay_stores_like_intake_and_dedupes(tmp_path: Path, config: Path) -> None:
    (tmp_path / "new.eml").write_bytes(compose(message_id="once"))
    first = json.loads(replay(config, "--json", str(tmp_path / "new.eml")).stdout)[0]
    again = json.loads(replay(config, "--json", str(tmp_path / "new.eml")).stdout)[0]
    assert (first["verdict"], first["case"]) == ("new_case", 10001)
    assert (again["verdict"], again["reason"]) == ("ignored", "duplicate")
    missing = replay(config, str(tmp_path / "missing.eml"))
    assert missing.stderr.strip().endswith("missing.eml: No such file or directory")


def _kinds() -> dict[str, str]:
    rows = (line.split("\t") for line in (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:])
    return {row[0]: row[2] for row in rows}


def test_whole_corpus_through_replay_dry_run(tmp_path: Path) -> None:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"corpus not found at {CORPUS}")
    # Old mail's DKIM keys come and go in public DNS: judge the content alone, the same everywhere.
    config = write_config(tmp_path / "config.toml", base_sections(
        tmp_path, f"sqlite:///{tmp_path / 'db' / 'm.db'}", security={"verify_dkim": False}))
    kinds = _kinds()
    files = sorted(str(CORPUS / name) for name in kinds)
    result = replay(config, "--dry-run", "--json", *files)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    outcomes: dict[str, dict[str, Any]] = {Path(o["file"]).name: o for o in json.loads(result.stdout)}
    assert sorted(outcomes) == sorted(kinds)
    assert {o["verdict"] for o in outcomes.values()} <= VERDICTS

    def where(*wanted: str) -> dict[str, dict[str, Any]]:
        return {name: o for name, o in outcomes.items() if kinds[name] in wanted}

    answered = [name for name, o in where(*ROBOT_KINDS).items()
                if o["verdict"] not in ("ignored", "quarantined") and name not in NOT_RECOGNISABLE_AS_ROBOT]
    assert answered == []
    assert all(o["notices"] == [] for o in where(*ROBOT_KINDS).values() if o["verdict"] == "ignored")
    assert {(o["verdict"], o["reason"]) for o in where("tnef").values()} == {("rejected", "rich_text")}
    assert not [n for n, o in where("outlook", "winmail-declared").items() if o["reason"] == "rich_text"]
    assert {o["verdict"] for o in where("winmail-blob", "outlook-msg").values()} <= {"quarantined", "rejected"}
    quarantined = [o for o in outcomes.values() if o["verdict"] == "quarantined"]
    assert all(o["reason"] for o in quarantined)  # kept with its reason, never silently
