"""The shipped systemd files: systemd's own verifier accepts them, and the promises the daemon relies on
(notify start-up, watchdog, reload by SIGHUP, restart on failure, sandbox, own user) are in place."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD / "mailbot.service"
INSTALLED_BINARY = "/opt/mailbot/.venv/bin/mailbot"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package: systemd)")
    return path


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # systemd keys are case-sensitive
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    # verify insists the ExecStart binary exists; it lives under /opt only on a real install.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED_BINARY, sys.executable), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60,
                            env=os.environ | {"SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""})
    # Unknown keys and unparsable values are only warnings (exit code 0), so read what it said.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def test_unit_declares_the_daemon_contract() -> None:
    unit = _unit()
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["ExecStart"] == f"{INSTALLED_BINARY} --config /etc/mailbot/config.toml run"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["WatchdogSec"] == "30s"
    assert service["TimeoutStopSec"] and service["RestartSec"]
    assert (service["User"], service["Group"]) == ("mailbot", "mailbot")
    assert "DynamicUser" not in service
    assert service["StateDirectory"] == "mailbot"
    assert service["WorkingDirectory"] == "/var/lib/mailbot"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
        ("StandardOutput", "journal"),
        ("StandardError", "journal"),
    ],
)
def test_unit_sandbox(key: str, value: str) -> None:
    assert _unit()["Service"][key] == value


def test_no_capability_granted_by_default() -> None:
    assert "AmbientCapabilities" not in _unit()["Service"]


def test_sysusers_creates_the_unit_user(tmp_path: Path) -> None:
    sysusers = _tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    subprocess.run([sysusers, f"--root={tmp_path}", str(SYSTEMD / "mailbot.sysusers.conf")],
                   check=True, capture_output=True, timeout=60)
    passwd = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()}
    assert passwd["mailbot"][5] == "/var/lib/mailbot"
    assert passwd["mailbot"][6].endswith("nologin")
    assert any(line.startswith("mailbot:") for line in (tmp_path / "etc/group").read_text().splitlines())


def test_tmpfiles_keeps_config_private(tmp_path: Path) -> None:
    tmpfiles = _tool("systemd-tmpfiles")
    if os.geteuid() != 0:
        pytest.skip("setting a file's group to mailbot needs root")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/group").write_text("root:x:0:\nmailbot:x:4242:\n")
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "etc/mailbot").mkdir(mode=0o755)
    (tmp_path / "etc/mailbot/config.toml").write_text("")
    subprocess.run([tmpfiles, f"--root={tmp_path}", "--create", str(SYSTEMD / "mailbot.tmpfiles.conf")],
                   check=True, capture_output=True, timeout=60)
    for path, mode in (("etc/mailbot", 0o750), ("etc/mailbot/config.toml", 0o640)):
        status = (tmp_path / path).stat()
        assert (status.st_mode & 0o777, status.st_gid) == (mode, 4242), path
