"""Every setting the pipeline reads from the environment, read and validated here and nowhere else.

With nothing set, everything is embedded: Dagster's instance and the state store are SQLite files under
`DOTDYN_HOME` (default `.dotdyn/` in the working directory). With `DOTDYN_POSTGRES_URL` set, both use that
PostgreSQL database: Dagster through dagster-postgres, the state store in its own schema.

The organisation's sign-in (`DOTDYN_DATAVERSE_URL`, `DOTDYN_AUTHORITY`, `DOTDYN_CLIENT_ID`,
`DOTDYN_CLIENT_SECRET`) is not read here: resources receive it as Dagster `EnvVar`s, resolved when a run starts,
so that its values never appear in the UI; how the organisation's Web API is spoken to (its version, change
tracking, the token's scope) is. docs/configuration.md lists every variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from dotdyn_pipeline.connectors.dataverse.versions import check_version
from dotdyn_pipeline.connectors.dotdigital.config import DEFAULT_BASE_URL

#: The checkout the code location runs from: holds dagster.yaml, workspace.yaml and sql/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")

#: Where the environment variables that hold the Dotdigital API passwords begin by default: an account's
#: esc_secretname (CRM data) may name only such a variable or one that DOTDYN_SECRET_NAMES lists.
DEFAULT_SECRET_PREFIX = "DOTDYN_DOTDIGITAL_"  # noqa: S105 (the start of a name, not a secret)
#: The pipeline's own secrets: no account may name them, whatever the prefix or the list allow.
OWN_SECRETS = ("DOTDYN_CLIENT_SECRET", "DOTDYN_POSTGRES_URL")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SettingsError(ValueError):
    """A variable holds a value the pipeline cannot use; the message names the variable and what it takes."""


def _number(parse: Callable[[str], T], low: float, high: float | None = None) -> Callable[[str], T]:
    """A parser of numbers from `low` up to `high` (no upper bound when None)."""
    bounds = f"from {low} to {high}" if high is not None else f"{low} or more"

    def check(text: str) -> T:
        value = parse(text)
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {bounds}")
        return value
    return check


def _schema(text: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", text):
        raise ValueError("must be a lower-case SQL identifier")
    return text


def _cron(text: str) -> str:
    if len(text.split()) != 5:
        raise ValueError("must be a cron expression of five fields, such as '*/15 * * * *'")
    return text


def _switch(text: str) -> bool:
    if text not in ("on", "off"):
        raise ValueError("must be on or off")
    return text == "on"


def _scope(text: str) -> str | None:
    if not text:
        return None  # the client's default, {DOTDYN_DATAVERSE_URL}/.default
    if len(text.split()) != 1 or not text.isprintable():
        raise ValueError("must be one scope, such as https://crm.contoso.com/.default, without spaces")
    return text


def _secret_prefix(text: str) -> str:
    if not _VARIABLE_NAME.fullmatch(text):
        raise ValueError("must be the start of an environment variable's name (letters, digits and _)")
    if covered := [name for name in OWN_SECRETS if name.startswith(text)]:
        raise ValueError(f"must not cover the pipeline's own secret {covered[0]}")
    return text


def _secret_names(text: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    for name in sorted(names):
        if not _VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable's name (letters, digits and _)")
        if name in OWN_SECRETS:
            raise ValueError(f"must not list the pipeline's own secret {name}")
    return names


@dataclass(frozen=True)
class Settings:
    """The pipeline's settings as the environment gives them, each with its variable's default."""

    home: Path
    postgres_url: str | None
    state_schema: str
    dotdigital_url: str
    ca_bundle: str | None
    audience_cron: str
    engagement_cron: str
    engagement_start: date
    consent_interval: int
    consent_tick_budget: float
    max_quarantine_share: float
    quarantine_min_rows: int
    members_in_two_from: int
    max_string_length: int
    secret_prefix: str
    secret_names: frozenset[str]
    dataverse_api_version: str
    dataverse_change_tracking: bool
    token_scope: str | None
    send_interval: int
    send_max_sync_age: float
    send_follow_seconds: float
    import_first_poll: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; a bad value raises SettingsError naming it."""
        env = os.environ if environ is None else environ

        def read(name: str, default: str, parse: Callable[[str], T]) -> T:
            text = env.get(name) or default
            try:
                return parse(text)
            except ValueError as error:
                raise SettingsError(f"{name}={text!r}: {error}") from None

        return cls(
            home=Path(env.get("DOTDYN_HOME") or ".dotdyn").resolve(),
            postgres_url=env.get("DOTDYN_POSTGRES_URL") or None,
            state_schema=read("DOTDYN_STATE_SCHEMA", "dotdyn", _schema),
            dotdigital_url=(env.get("DOTDYN_DOTDIGITAL_URL") or DEFAULT_BASE_URL).rstrip("/"),
            ca_bundle=env.get("DOTDYN_CA_BUNDLE") or None,
            audience_cron=read("DOTDYN_AUDIENCE_CRON", "*/15 * * * *", _cron),
            engagement_cron=read("DOTDYN_ENGAGEMENT_CRON", "5 * * * *", _cron),
            engagement_start=read("DOTDYN_ENGAGEMENT_START", "2025-01-01", date.fromisoformat),
            consent_interval=read("DOTDYN_CONSENT_INTERVAL", "60", _number(int, 1)),
            consent_tick_budget=read("DOTDYN_CONSENT_TICK_BUDGET", "30", _number(float, 1)),
            max_quarantine_share=read("DOTDYN_MAX_QUARANTINE_SHARE", "0.25", _number(float, 0, 1)),
            quarantine_min_rows=read("DOTDYN_QUARANTINE_MIN_ROWS", "100", _number(int, 0)),
            members_in_two_from=read("DOTDYN_MEMBERS_IN_TWO_FROM", "200000", _number(int, 0)),
            max_string_length=read("DOTDYN_MAX_STRING_LENGTH", "255", _number(int, 1)),
            secret_prefix=read("DOTDYN_SECRET_PREFIX", DEFAULT_SECRET_PREFIX, _secret_prefix),
            secret_names=read("DOTDYN_SECRET_NAMES", "", _secret_names),
            dataverse_api_version=read("DOTDYN_DATAVERSE_API_VERSION", "v9.2", check_version),
            dataverse_change_tracking=read("DOTDYN_DATAVERSE_CHANGE_TRACKING", "on", _switch),
            token_scope=read("DOTDYN_TOKEN_SCOPE", "", _scope),
            send_interval=read("DOTDYN_SEND_INTERVAL", "60", _number(int, 1)),
            send_max_sync_age=read("DOTDYN_SEND_MAX_SYNC_AGE", "3600", _number(float, 0)),
            send_follow_seconds=read("DOTDYN_SEND_FOLLOW_SECONDS", "600", _number(float, 0)),
            import_first_poll=read("DOTDYN_IMPORT_FIRST_POLL", "2", _number(float, 0)),
        )

    @property
    def state_url(self) -> str:
        """The state store's database: PostgreSQL when configured, else a SQLite file under home."""
        return self.postgres_url or f"sqlite:///{self.home / 'state.db'}"

    @property
    def dagster_home(self) -> Path:
        """The DAGSTER_HOME the CLI uses (the storage inside follows DOTDYN_POSTGRES_URL)."""
        return self.home / "dagster"
