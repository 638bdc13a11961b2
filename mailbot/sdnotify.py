"""The systemd notify protocol (sd_notify(3)): tell the service manager we are ready, alive, stopping.

With `Type=notify` systemd holds dependants back until READY=1 and, with `WatchdogSec=`, restarts a
daemon whose WATCHDOG=1 pings stop - a hung event loop is found even though the process still lives.
The protocol is one datagram of newline-separated assignments to $NOTIFY_SOCKET, small enough to
speak directly instead of depending on a binding. Outside systemd (tests, a shell) every call is a
no-op. Errors of a set but broken socket propagate as OSError; the caller decides whether to log.
"""

from __future__ import annotations

import os
import socket

_STATUS_LINE = str.maketrans({"\n": " ", "\r": " "})


def notify(*assignments: str) -> bool:
    """Send `KEY=value` assignments as one datagram; False when not run under a notify socket."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(assignments).encode())
    return True


def ready(status: str | None = None) -> bool:
    """Start-up finished: intakes listen, the spool is open."""
    return notify("READY=1", *_status(status))


def stopping(status: str | None = None) -> bool:
    """Shutdown began; systemd now waits up to TimeoutStopSec instead of assuming a crash."""
    return notify("STOPPING=1", *_status(status))


def watchdog() -> bool:
    """Alive ping; send it every `watchdog_interval()` seconds from the event loop."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """Free-form one-line state shown by `systemctl status`."""
    return notify(*_status(text))


def _status(text: str | None) -> tuple[str, ...]:
    # One datagram carries several newline-separated assignments: a newline in the text would
    # start a new (bogus) assignment, so it becomes a space.
    return () if text is None else (f"STATUS={text.translate(_STATUS_LINE)}",)


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises).

    None when no watchdog is set, or when $WATCHDOG_PID names another process (the variables were
    inherited, not meant for us).
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000
