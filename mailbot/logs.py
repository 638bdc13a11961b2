"""One line per event: `event=stored spool=12 message_id=<...> verdict=new_case`.

Operators tail and grep these lines, so every event is a past-tense verb and every field a
stable key. `--log-format json` writes the same fields as one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LOGGER = logging.getLogger("mailbot")
LogFormat = Literal["kv", "json"]


def _kv_value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    return text


class _EventFormatter(logging.Formatter):
    def __init__(self, fmt: LogFormat) -> None:
        super().__init__()
        self.fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        fields.update(getattr(record, "fields", {}))
        if record.exc_info and record.levelno >= logging.ERROR:
            fields["error"] = f"{record.exc_info[0].__name__ if record.exc_info[0] else ''}: {record.exc_info[1]}"
        if self.fmt == "json":
            return json.dumps(fields, ensure_ascii=False, default=str)
        return " ".join(f"{key}={_kv_value(value)}" for key, value in fields.items())


def setup(fmt: LogFormat = "kv", level: int = logging.INFO) -> None:
    """Route mailbot's events to stderr (journald picks stderr up under systemd)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_EventFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    LOGGER.setLevel(level)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event; fields whose value is None are left out."""
    present = {key: value for key, value in fields.items() if value is not None}
    LOGGER.log(level, name, extra={"event": name, "fields": present})
