"""One line per event, key=value or JSON, with the ids an operator greps for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import ROOT, base_sections, compose, write_config


def replay_log(tmp_path: Path, *options: str) -> list[str]:
    config = write_config(tmp_path / "config.toml", base_sections(tmp_path, f"sqlite:///{tmp_path / 'm.db'}"))
    (tmp_path / "m.eml").write_bytes(compose(message_id="logged", subject="Zeile\tmit \"Anführung\""))
    result = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config), *options, "replay",
                             str(tmp_path / "m.eml")], capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()


def test_key_value_lines(tmp_path: Path) -> None:
    lines = replay_log(tmp_path)
    opened = next(line for line in lines if "event=case-opened" in line)
    assert " spool=1 message_id=<logged@customer.test> case=10001 verdict=new_case " in opened
    assert opened.startswith("ts=") and " level=info " in opened
    assert any("event=notice-queued" in line and "case=10001" in line for line in lines)


def test_json_lines(tmp_path: Path) -> None:
    records = [json.loads(line) for line in replay_log(tmp_path, "--log-format", "json")]
    opened = next(r for r in records if r["event"] == "case-opened")
    assert (opened["spool"], opened["case"], opened["verdict"]) == (1, 10001, "new_case")
    assert opened["message_id"] == "<logged@customer.test>" and opened["trace"].endswith("match_none")
