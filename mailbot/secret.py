"""The token secret: never a placeholder shared by every install.

A bundled default secret would let anyone forge tokens offline for every site that kept it
(issue 9). So an empty `tokens.secret` (or the placeholder older configs carried) means "make
one": the first command that needs it writes 32 random bytes, base64, into
`tokens.secret_file` (mode 0600, beside the database by default) and logs that it did; later
starts read it back. `make run` thus works from a clean clone, and no two installs share tokens.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from mailbot.config import ConfigError, Settings
from mailbot.logs import event

PLACEHOLDERS = frozenset({"", "change-me-to-a-long-random-string"})


def configured(settings: Settings) -> bool:
    """Whether config.toml itself holds a real secret."""
    return settings.tokens.secret not in PLACEHOLDERS


def warning(settings: Settings) -> str | None:
    """check-config's line when the secret is left to `ensure`."""
    if configured(settings):
        return None
    return (f"{Path(settings.source).name}: tokens.secret: not set; mailbot uses the generated one in "
            f"{settings.tokens.secret_file} (made on first start if missing)")


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    event("token-secret-generated", logging.WARNING, path=str(path))


def ensure(settings: Settings) -> Settings:
    """`settings` with a usable token secret: the configured one, else the generated file's."""
    if configured(settings):
        return settings
    path = Path(settings.tokens.secret_file)
    name = Path(settings.source).name
    try:
        if not path.exists():
            _create(path)
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeError) as exc:
        raise ConfigError([f"{name}: tokens.secret_file: {path}: {getattr(exc, 'strerror', None) or exc}"]) from None
    if len(value) < 16:
        raise ConfigError([f"{name}: tokens.secret_file: {path}: holds no secret of 16 characters or more"])
    return settings.model_copy(update={"tokens": settings.tokens.model_copy(update={"secret": value})})
