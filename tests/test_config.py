"""check-config and `run` on good and broken files: one line per problem, naming file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, base_sections, write_config


def mailbot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config), *args],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=60)


def test_bundled_config_is_valid() -> None:
    result = mailbot(ROOT / "config.toml", "check-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{ROOT / 'config.toml'}: ok"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"smtp": {"port": "abc"}}, "config.toml: smtp.port: expected an integer"),
        ({"smtp": {"prot": 25}}, "config.toml: smtp.prot: unknown key; did you mean 'port'?"),
        ({"polcy": {"max_attempts": 2}}, "config.toml: polcy: unknown key; did you mean 'policy'?"),
        ({"imap": {"acounts": []}}, "config.toml: imap.acounts: unknown key; did you mean 'accounts'?"),
        ({"relay": {"mode": "carrier-pigeon"}}, "config.toml: relay.mode: "),
        ({"service": {"noreply": "not an address"}}, "config.toml: service.noreply: "),
        ({"tokens": {"secret": "short"}}, "config.toml: tokens.secret: "),
        ({"hours": {"timezone": "Mars/Olympus"}}, "config.toml: hours.timezone: "),
    ],
)
def test_broken_config_names_file_and_key(tmp_path: Path, change: dict[str, dict[str, object]], expected: str) -> None:
    config = write_config(tmp_path / "config.toml", base_sections(tmp_path, "sqlite://", **change))
    for command in ("check-config", "run"):
        result = mailbot(config, command)
        assert result.returncode == 2
        assert result.stderr.splitlines()[0].startswith(expected), result.stderr
        assert "Traceback" not in result.stderr


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml",
                          base_sections(tmp_path, "sqlite://", smtp={"port": "x", "colour": "red"}))
    lines = mailbot(config, "check-config").stderr.splitlines()
    assert sorted(lines) == ["config.toml: smtp.colour: unknown key", "config.toml: smtp.port: expected an integer"]


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = mailbot(tmp_path / "nope.toml", "check-config")
    assert (missing.returncode, missing.stderr.strip()) == (2, f"{tmp_path / 'nope.toml'}: file not found")
    (tmp_path / "bad.toml").write_text("[smtp\nport = 1\n")
    broken = mailbot(tmp_path / "bad.toml", "check-config")
    assert broken.returncode == 2 and broken.stderr.startswith("bad.toml: not valid TOML")


def test_relative_paths_resolve_beside_the_config_file(tmp_path: Path) -> None:
    from mailbot import config

    settings = config.parse(base_sections(tmp_path, "sqlite:///data/x.db", relay={"maildir": "out"}),
                            tmp_path / "etc" / "config.toml")
    assert settings.database.url == f"sqlite:///{tmp_path / 'etc' / 'data' / 'x.db'}"
    assert settings.relay.maildir == str(tmp_path / "etc" / "out")


def test_check_config_renders_every_template(tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "en" / "receipt.txt.j2").write_text("{% block subject %}{{ tag }{% endblock %}")
    (templates / "de" / "case_closed.txt.j2").unlink()
    both = {"dir": str(templates), "languages": ["de", "en"]}
    config = write_config(tmp_path / "config.toml", base_sections(tmp_path, "sqlite://", templates=both))
    result = mailbot(config, "check-config")
    assert result.returncode == 2
    assert sorted(line.split(": ")[0] for line in result.stderr.splitlines()) == [
        str(templates / "de" / "case_closed.txt.j2"), str(templates / "en" / "receipt.txt.j2")]
    assert "TemplateSyntaxError" in result.stderr and "TemplateNotFound" in result.stderr


def test_check_config_names_folders_it_could_not_use(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should go")
    config = write_config(tmp_path / "config.toml", base_sections(
        tmp_path, "sqlite://", templates={"dir": str(tmp_path / "gone")},
        storage={"attachments_dir": str(tmp_path / "blocker" / "attachments")}))
    result = mailbot(config, "check-config")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"config.toml: templates.dir: {tmp_path / 'gone'} is not a folder",
        f"config.toml: storage.attachments_dir: {tmp_path / 'blocker'} is not a folder",
    ]
