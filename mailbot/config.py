"""config.toml -> frozen, validated settings.

Every problem is reported as `<file>: <key>: <what is wrong>`, one line each, so an operator
can fix a broken edit without reading a traceback. Unknown keys are errors: a typo must not
silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_CONFIG = "config.toml"


class ConfigError(Exception):
    """A config file that cannot be used; `problems` are ready-to-print lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Int = Annotated[int, Field(strict=True)]
Bool = Annotated[bool, Field(strict=True)]
Address = Annotated[str, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+$")]


class ServiceSettings(_Section):
    addresses: tuple[Address, ...] = Field(min_length=1)
    noreply: Address
    company: str = "Example GmbH"
    portal_url: str = "https://support.example.com"
    business_hours: str = "Mo-Fr 09:00-16:00"

    @field_validator("addresses", mode="after")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(a.lower() for a in value)


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535, strict=True)] = 8025
    max_message_size: Annotated[int, Field(ge=1024, strict=True)] = 25 * 1024 * 1024
    hostname: str = "mailbot.localhost"


class RelaySettings(_Section):
    mode: Literal["smtp", "maildir"] = "maildir"
    host: str = "127.0.0.1"
    port: Port = 25
    starttls: Bool = False
    username: str = ""
    password: str = ""
    maildir: str = "data/outgoing"
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0


class DatabaseSettings(_Section):
    url: str = "sqlite:///data/mailbot.db"


class StorageSettings(_Section):
    attachments_dir: str = "data/attachments"


class PolicySettings(_Section):
    receipt_window_minutes: Annotated[int, Field(ge=1, strict=True)] = 30
    max_attempts: Annotated[int, Field(ge=1, strict=True)] = 5
    retry_base_seconds: Annotated[float, Field(gt=0)] = 30.0
    retry_max_seconds: Annotated[float, Field(gt=0)] = 3600.0
    max_send_attempts: Annotated[int, Field(ge=1, strict=True)] = 20


class TemplateSettings(_Section):
    dir: str = "templates"
    language: Literal["de", "en"] = "de"


class TokenSettings(_Section):
    prefix: Annotated[str, Field(pattern=r"^[A-Z]{2,8}$")] = "SVC"
    secret: Annotated[str, Field(min_length=16)]
    previous_secrets: tuple[str, ...] = ()


class Settings(_Section):
    service: ServiceSettings
    smtp: SmtpSettings = SmtpSettings()
    relay: RelaySettings = RelaySettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    policy: PolicySettings = PolicySettings()
    templates: TemplateSettings = TemplateSettings()
    tokens: TokenSettings
    source: str = DEFAULT_CONFIG


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind in ("int_type", "int_parsing"):
        return f"{key}: expected an integer"
    if kind in ("string_type",):
        return f"{key}: expected a string"
    if kind in ("bool_type", "bool_parsing"):
        return f"{key}: expected true or false"
    return f"{key}: {error['msg'][0].lower()}{error['msg'][1:]}"


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative paths in the file mean 'beside the config file', not 'beside the cwd'."""
    for section, key in (("relay", "maildir"), ("storage", "attachments_dir"), ("templates", "dir")):
        value = data.get(section, {}).get(key)
        if isinstance(value, str):
            data[section][key] = str(base / value) if not os.path.isabs(value) else value
    url = data.get("database", {}).get("url")
    if isinstance(url, str) and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            data["database"]["url"] = f"sqlite:///{base / relative}"


def parse(data: dict[str, Any], source: Path) -> Settings:
    """Validate an already-read TOML document; raises ConfigError naming file and key."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    _resolve_paths(data, source.resolve().parent)
    data["source"] = str(source)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        name = source.name
        raise ConfigError([f"{name}: {_describe(e)}" for e in exc.errors()]) from None


def load(path: str | os.PathLike[str]) -> Settings:
    """Read and validate a config file."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source.name}: not valid TOML: {exc}"]) from None
    return parse(data, source)
