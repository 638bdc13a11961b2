"""config.toml -> frozen, validated settings.

Every problem is reported as `<file>: <key>: <what is wrong>`, one line each, so an operator
can fix a broken edit without reading a traceback. Unknown keys are errors: a typo must not
silently fall back to a default.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import typing
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

DEFAULT_CONFIG = "config.toml"


class ConfigError(Exception):
    """A config file that cannot be used; `problems` are ready-to-print lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Bool = Annotated[bool, Field(strict=True)]
Address = Annotated[str, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+$")]


class ServiceSettings(_Section):
    addresses: tuple[Address, ...] = Field(min_length=1)
    noreply: Address
    company: str = "Example GmbH"
    portal_url: str = "https://support.example.com"

    @field_validator("addresses", mode="after")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(a.lower() for a in value)


Count = Annotated[int, Field(ge=1, strict=True)]


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535, strict=True)] = 8025
    max_message_size: Annotated[int, Field(ge=1024, strict=True)] = 25 * 1024 * 1024
    hostname: str = "mailbot.localhost"
    max_connections: Count = 100
    max_connections_per_ip: Count = 20
    max_mails_per_ip_per_minute: Annotated[int, Field(ge=0, strict=True)] = 600
    max_recipients: Count = 100
    idle_timeout_seconds: Annotated[float, Field(gt=0)] = 300.0
    tls_cert: str = ""
    tls_key: str = ""
    require_tls: Bool = False

    @model_validator(mode="after")
    def _check_tls(self) -> SmtpSettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise PydanticCustomError("smtp_tls", "set both tls_cert and tls_key, or neither")
        if self.require_tls and not self.tls_cert:
            raise PydanticCustomError("smtp_tls", "require_tls needs tls_cert and tls_key")
        for path in (self.tls_cert, self.tls_key):
            if path and not os.path.isfile(path):
                raise PydanticCustomError("smtp_tls", "{path} does not exist", {"path": path})
        return self


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
    # A locked or hung database answers SMTP with 451 within this time instead of stalling it.
    store_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0


class DaemonSettings(_Section):
    # A worker busy this long without finishing a mail counts as stalled (logged, shown by
    # `mailbot status`, and the systemd watchdog is no longer pinged).
    stall_seconds: Annotated[float, Field(gt=0)] = 300.0


class StorageSettings(_Section):
    attachments_dir: str = "data/attachments"
    min_free_mb: Annotated[int, Field(ge=0, strict=True)] = 100


class PolicySettings(_Section):
    receipt_window_minutes: Annotated[int, Field(ge=1, strict=True)] = 30
    max_attempts: Annotated[int, Field(ge=1, strict=True)] = 5
    retry_base_seconds: Annotated[float, Field(gt=0)] = 30.0
    retry_max_seconds: Annotated[float, Field(gt=0)] = 3600.0
    max_send_attempts: Annotated[int, Field(ge=1, strict=True)] = 20
    notice_limit: Annotated[int, Field(ge=1, strict=True)] = 10
    notice_window_minutes: Annotated[int, Field(ge=1, strict=True)] = 60
    closed_case_reply: Literal["reject", "reopen"] = "reject"
    reopen_window_days: Annotated[int, Field(ge=0, strict=True)] = 14
    new_cases_by_email: Bool = True
    new_case_senders: tuple[str, ...] = ()
    unknown_token: Literal["new_case", "reject"] = "new_case"
    reject_at_smtp: Bool = False
    disallowed_attachments: Literal["refuse_mail", "drop_file"] = "refuse_mail"
    subject_followup_days: Annotated[int, Field(ge=0, strict=True)] = 0
    cc_participants: Literal["authenticated", "opening_mail", "never"] = "authenticated"
    max_participants: Annotated[int, Field(ge=1, strict=True)] = 10
    max_recipients_considered: Annotated[int, Field(ge=1, strict=True)] = 50
    domain_hourly_limit: Annotated[int, Field(ge=1, strict=True)] = 100
    global_hourly_limit: Annotated[int, Field(ge=1, strict=True)] = 1000

    @field_validator("new_case_senders", mode="after")
    @classmethod
    def _lower_senders(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(entry.lower().lstrip("@") for entry in value)


class AgentSettings(_Section):
    """Who counts as a support agent: exact addresses, or whole domains."""

    addresses: tuple[Address, ...] = ()
    domains: tuple[str, ...] = ()

    def covers(self, address: str) -> bool:
        address = address.lower()
        return address in {a.lower() for a in self.addresses} or address.rsplit("@", 1)[-1] in {
            d.lower().lstrip("@") for d in self.domains
        }


Language = Literal["de", "en"]  # the languages templates and dates are written in


class SecuritySettings(_Section):
    """Who may act: whose Authentication-Results are read, whether DKIM is verified here."""

    trusted_authserv_ids: tuple[str, ...] = ()
    verify_dkim: Bool = True
    dns_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    token_failure_limit: Annotated[int, Field(ge=1, strict=True)] = 10
    token_failure_window_minutes: Annotated[int, Field(ge=1, strict=True)] = 60

    @field_validator("trusted_authserv_ids", mode="after")
    @classmethod
    def _lower_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(entry.lower() for entry in value)


class TemplateSettings(_Section):
    """Templates and the languages customers are answered in (each case keeps its own)."""

    dir: str = "templates"
    languages: tuple[Language, ...] = Field(default=("de", "en"), min_length=1)
    default: Language = "de"

    @model_validator(mode="after")
    def _default_is_offered(self) -> TemplateSettings:
        if self.default not in self.languages:
            raise PydanticCustomError("default_language", "default '{default}' is not one of languages",
                                      {"default": self.default})
        return self


class LimitsSettings(_Section):
    """Shape limits: a mail beyond any of them is quarantined for a human rather than judged."""

    header_count: Annotated[int, Field(ge=1, strict=True)] = 500
    header_length: Annotated[int, Field(ge=78, strict=True)] = 32 * 1024
    line_length: Annotated[int, Field(ge=998, strict=True)] = 128 * 1024
    mime_depth: Annotated[int, Field(ge=1, strict=True)] = 20
    part_count: Annotated[int, Field(ge=1, strict=True)] = 200
    address_count: Annotated[int, Field(ge=1, strict=True)] = 1000
    header_parameters: Annotated[int, Field(ge=1, strict=True)] = 100
    judge_seconds: Annotated[float, Field(gt=0)] = 10.0
    judge_memory_mb: Annotated[int, Field(ge=128, strict=True)] = 512


class AttachmentSettings(_Section):
    """Which attachments pass, judged by libmagic's type of the content, and the ZIP limits."""

    allowed_types: tuple[str, ...] = ("image/jpeg", "image/png")
    max_zip_files: Annotated[int, Field(ge=0, strict=True)] = 1
    zip_max_entries: Annotated[int, Field(ge=1, strict=True)] = 1000
    zip_max_total_uncompressed: Annotated[int, Field(ge=1, strict=True)] = 200 * 1024 * 1024
    zip_max_ratio: Annotated[float, Field(gt=1)] = 100.0
    zip_max_nesting: Annotated[int, Field(ge=0, strict=True)] = 2


class TokenSettings(_Section):
    prefix: Annotated[str, Field(pattern=r"^[A-Z]{2,8}$")] = "SVC"
    # Empty (or the old bundled placeholder): `mailbot.secret` generates one into secret_file.
    secret: str = ""
    secret_file: str = "data/token-secret"
    previous_secrets: tuple[str, ...] = ()

    @field_validator("secret", mode="after")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if 0 < len(value) < 16:
            raise PydanticCustomError("secret_short", "at least 16 characters, or empty to have one generated")
        return value


Priority = Literal["urgent", "high", "normal", "low"]


class PrioritySettings(_Section):
    """Whether an incoming mail may raise its new case's priority to high (urgent stays the agents'
    and the callback's): by Importance / X-Priority headers, or a word in the subject."""

    from_mail: Bool = False
    subject_words: tuple[Annotated[str, Field(min_length=1)], ...] = ("dringend", "urgent", "eilt")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
OpeningSpan = tuple[int, int]


def _span_minutes(day: str, text: Any) -> OpeningSpan:
    match = _SPAN.match(text) if isinstance(text, str) else None
    if match is None:
        raise PydanticCustomError("hours_span", "{day}: expected 'HH:MM-HH:MM', got '{text}'",
                                  {"day": day, "text": text})
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or not 0 <= start < end <= 24 * 60:
        raise PydanticCustomError("hours_span", "{day}: '{text}' is not a time range within one day",
                                  {"day": day, "text": text})
    return start, end


class HoursSettings(_Section):
    """Business hours: when the answer-time clock runs (mailbot/hours.py computes with them)."""

    timezone: str = "Europe/Berlin"
    # Read as a table day -> ["HH:MM-HH:MM", ...] (days left out are closed, "24:00" may end a
    # day); kept as seven tuples, Monday first, of (start, end) minutes after local midnight.
    weekly: tuple[tuple[OpeningSpan, ...], ...] = Field(
        default={day: ["09:00-16:00"] for day in WEEKDAYS[:5]}, validate_default=True
    )
    holidays: tuple[date, ...] = ()
    # Public holidays from the `holidays` package, besides the dates above: an ISO country code
    # ("DE") and, optionally, a subdivision ("BY"); "" for none.
    holidays_country: str = ""
    holidays_subdivision: str = ""
    target_hours: Annotated[float, Field(gt=0)] = 8.0
    # Answer targets of the other priorities; a priority left out uses target_hours.
    priority_targets: dict[Priority, Annotated[float, Field(gt=0)]] = {}

    @model_validator(mode="after")
    def _known_calendar(self) -> HoursSettings:
        if self.holidays_subdivision and not self.holidays_country:
            raise PydanticCustomError("holidays_country", "holidays_subdivision needs holidays_country")
        if self.holidays_country:
            import holidays  # only where a country is set: the package is large

            try:
                holidays.country_holidays(self.holidays_country, subdiv=self.holidays_subdivision or None)
            except NotImplementedError as exc:
                raise PydanticCustomError("holidays_country", "{error}", {"error": str(exc)}) from None
        return self

    @field_validator("timezone", mode="after")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError("unknown_zone", "unknown time zone '{zone}'", {"zone": value}) from None
        return value

    @field_validator("weekly", mode="before")
    @classmethod
    def _parse_week(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise PydanticCustomError("hours_table", "expected a table of days ({days})",
                                      {"days": ", ".join(WEEKDAYS)})
        unknown = sorted(set(value) - set(WEEKDAYS))
        if unknown:
            raise PydanticCustomError("hours_day", "unknown day '{day}'; use {days}",
                                      {"day": unknown[0], "days": ", ".join(WEEKDAYS)})
        week = []
        for day in WEEKDAYS:
            spans = value.get(day, [])
            if not isinstance(spans, list | tuple):
                raise PydanticCustomError("hours_span", "{day}: expected a list of 'HH:MM-HH:MM'",
                                          {"day": day})
            parsed = sorted(_span_minutes(day, span) for span in spans)
            if any(prev[1] > nxt[0] for prev, nxt in zip(parsed, parsed[1:], strict=False)):
                raise PydanticCustomError("hours_overlap", "{day}: time ranges overlap", {"day": day})
            week.append(tuple(parsed))
        if not any(week):
            raise PydanticCustomError("hours_closed", "at least one day needs opening hours")
        return tuple(week)


class WebSettings(_Section):
    """The customer's case page (mailbot/web/): where it listens, and the address mails link to."""

    enabled: Bool = False
    host: str = "127.0.0.1"
    port: Port = 8080
    # What customers open, e.g. "https://support.example.com" behind a TLS reverse proxy.
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] = "http://127.0.0.1:8080"
    # Peers whose X-Forwarded-For names the client (the reverse proxy); nobody else's is believed.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    action_limit: Annotated[int, Field(ge=1, le=1000, strict=True)] = 10
    action_window_minutes: Annotated[int, Field(ge=1, strict=True)] = 60
    failure_limit: Annotated[int, Field(ge=1, le=1000, strict=True)] = 10
    failure_delay_seconds: Annotated[float, Field(ge=0, le=60)] = 2.0


class OpsSettings(_Section):
    """The operators' listener: /healthz and /metrics (Prometheus), apart from the customers' page."""

    enabled: Bool = False
    host: str = "127.0.0.1"
    port: Port = 9025


class ImapAccount(_Section):
    """One mailbox the IMAP intake watches (a thread each); `port` defaults by `tls`: 993 or 143."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    host: Annotated[str, Field(min_length=1)]
    port: Port = 993
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    ca_file: str = ""  # PEM bundle to trust instead of the system CAs (a private CA)
    username: Annotated[str, Field(min_length=1)]
    password: str = Field(default="", repr=False)
    password_file: str = ""
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    poll_interval: Annotated[float, Field(gt=0)] = 60.0
    idle: Bool = True
    # RFC 2177 lets servers drop an IDLE after 30 minutes, NAT boxes often far sooner.
    idle_renew_seconds: Annotated[float, Field(gt=0, le=600)] = 540.0
    start: Literal["all", "new"] = "all"
    batch_size: Annotated[int, Field(ge=1, le=5000, strict=True)] = 100
    timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    trusted: Bool = False  # mail from this mailbox counts as authenticated (an internal, filtered box)

    @model_validator(mode="before")
    @classmethod
    def _port_by_tls(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" not in data and data.get("tls") in ("starttls", "none"):
            return {**data, "port": 143}
        return data

    @model_validator(mode="after")
    def _check(self) -> ImapAccount:
        if bool(self.password) == bool(self.password_file):
            raise PydanticCustomError("imap_secret", "set exactly one of password and password_file")
        if self.password_file and not os.path.isfile(self.password_file):
            raise PydanticCustomError("imap_secret", "password_file {path} does not exist",
                                      {"path": self.password_file})
        if len({self.folder, self.processed_folder, self.quarantine_folder}) != 3:
            raise PydanticCustomError("imap_folders", "folder, processed_folder and quarantine_folder "
                                      "must be three different folders")
        return self

    def secret(self) -> str:
        """The password, read from password_file at each login so a rotated file takes effect."""
        if self.password_file:
            with open(self.password_file, encoding="utf-8") as handle:
                return handle.read().rstrip("\r\n")
        return self.password


class ImapSettings(_Section):
    accounts: tuple[ImapAccount, ...] = ()

    @field_validator("accounts", mode="after")
    @classmethod
    def _unique_names(cls, value: tuple[ImapAccount, ...]) -> tuple[ImapAccount, ...]:
        names = [account.name for account in value]
        if len(set(names)) != len(names):
            raise PydanticCustomError("imap_names", "account names must be unique")
        return value


def _resolve_account(account: Any, base: Path) -> Any:
    if not isinstance(account, dict):
        return account
    paths = {k: str(base / v) for k in ("password_file", "ca_file")
             if isinstance(v := account.get(k), str) and v and not os.path.isabs(v)}
    return {**account, **paths}


class Settings(_Section):
    service: ServiceSettings
    smtp: SmtpSettings = SmtpSettings()
    relay: RelaySettings = RelaySettings()
    database: DatabaseSettings = DatabaseSettings()
    daemon: DaemonSettings = DaemonSettings()
    storage: StorageSettings = StorageSettings()
    policy: PolicySettings = PolicySettings()
    templates: TemplateSettings = TemplateSettings()
    agents: AgentSettings = AgentSettings()
    security: SecuritySettings = SecuritySettings()
    limits: LimitsSettings = LimitsSettings()
    attachments: AttachmentSettings = AttachmentSettings()
    hours: HoursSettings = HoursSettings()
    imap: ImapSettings = ImapSettings()
    web: WebSettings = WebSettings()
    ops: OpsSettings = OpsSettings()
    priority: PrioritySettings = PrioritySettings()
    tokens: TokenSettings = TokenSettings()
    source: str = DEFAULT_CONFIG


def _known_keys(path: list[str]) -> list[str]:
    """The keys the section at `path` (e.g. ["imap", "accounts"]) accepts."""
    model: Any = Settings
    for name in path:
        field = model.model_fields.get(name) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = field.annotation
        while typing.get_origin(model) is tuple:  # tuple[ImapAccount, ...]: the items' keys
            model = typing.get_args(model)[0]
    fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
    return [name for name in fields if name != "source"]


def _describe(error: ErrorDetails) -> str:
    path = [str(part) for part in error["loc"] if not isinstance(part, int)]
    key = ".".join(path) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(path[-1], _known_keys(path[:-1]), n=1)
        return f"{key}: unknown key" + (f"; did you mean '{close[0]}'?" if close else "")
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
    if isinstance(data.setdefault("tokens", {}), dict):
        data["tokens"].setdefault("secret_file", TokenSettings.model_fields["secret_file"].default)
    for section, key in (("relay", "maildir"), ("storage", "attachments_dir"), ("templates", "dir"),
                         ("smtp", "tls_cert"), ("smtp", "tls_key"), ("tokens", "secret_file")):
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and value:
            data[section][key] = str(base / value) if not os.path.isabs(value) else value
    url = data.get("database", {}).get("url")
    if isinstance(url, str) and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            data["database"]["url"] = f"sqlite:///{base / relative}"
    imap = data.get("imap")
    accounts = imap.get("accounts") if isinstance(imap, dict) else None
    if isinstance(imap, dict) and isinstance(accounts, list):
        data["imap"]["accounts"] = [_resolve_account(account, base) for account in accounts]


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
