"""No placeholder token secret (issue 9): an install without one generates its own on first use,
so no two installs share tokens and none can be forged offline from the bundled config."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select
from support import base_sections, compose, write_config

from mailbot import cli, config, db, secret
from mailbot.models import Case


@pytest.fixture(autouse=True)
def _keep_log_handlers() -> Iterator[None]:
    """cli.main points logging at the stderr of the moment; give pytest its handlers back after."""
    root, saved = logging.getLogger(), logging.getLogger().handlers[:]
    yield
    root.handlers[:] = saved


def install(folder: Path, token_secret: str = "") -> Path:
    folder.mkdir()
    sections = base_sections(folder, f"sqlite:///{folder / 'data' / 'mailbot.db'}", tokens={"secret": token_secret})
    return write_config(folder / "config.toml", sections)


def test_two_fresh_installs_make_different_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = []
    for name in ("one", "two"):
        path = install(tmp_path / name)
        (tmp_path / name / "mail.eml").write_bytes(compose(message_id=name))
        assert cli.main(["--config", str(path), "replay", "--json", str(tmp_path / name / "mail.eml")]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)[0]["case"] == 10001
        assert "event=token-secret-generated" in err
        made = tmp_path / name / "data" / "token-secret"
        assert stat.S_IMODE(made.stat().st_mode) == 0o600 and len(made.read_text().strip()) >= 40
        engine = db.make_engine(config.load(path).database.url)
        with Session(engine) as session:
            tokens.append(session.exec(select(Case.token)).one())
        engine.dispose()
        # the next start reads it back: old tokens keep matching
        assert secret.ensure(config.load(path)).tokens.secret == made.read_text().strip()
    assert tokens[0] != tokens[1] and all(t and t.startswith("SVC-10001-") for t in tokens)


def test_the_old_placeholder_counts_as_unset(tmp_path: Path) -> None:
    settings = config.load(install(tmp_path / "old", "change-me-to-a-long-random-string"))
    assert not secret.configured(settings)
    assert secret.ensure(settings).tokens.secret not in secret.PLACEHOLDERS


def test_check_config_warns_but_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = install(tmp_path / "fresh")
    assert cli.main(["--config", str(path), "check-config"]) == 0
    out, err = capsys.readouterr()
    assert out.endswith(": ok\n") and "warning: config.toml: tokens.secret: not set" in err
    assert not (tmp_path / "fresh" / "data" / "token-secret").exists()  # check-config only looks


def test_a_short_secret_or_an_unwritable_state_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"config.toml: tokens.secret: at least 16 characters"):
        config.load(install(tmp_path / "short", "too-short"))
    path = install(tmp_path / "blocked")
    (tmp_path / "blocked" / "data").write_text("a file where the folder should be")
    with pytest.raises(config.ConfigError, match=r"config.toml: tokens.secret_file: .*token-secret"):
        secret.ensure(config.load(path))


def test_the_bundled_config_holds_no_secret() -> None:
    bundled = config.load(Path(__file__).resolve().parents[1] / "config.toml")
    assert not secret.configured(bundled)
