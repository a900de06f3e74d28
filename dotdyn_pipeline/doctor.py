"""`dotdyn doctor`: check, one line each, what the pipeline needs before its first run, and say how to fix it.

The instance and state store the environment selects; a token from the authority; the Web API and its version;
the solution's tables, columns, many-to-many relationships and alternate keys (keys Active); change tracking
where the pipeline reads incrementally; the connector's role on the application user; and for each active email
account, its secret variable and its Dotdigital credentials (region, API calls left this hour). Never prints a
secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from dotdyn_pipeline.settings import Settings

PROVISION = "run dotdyn provision"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"{self.name}: {self.detail}"
        return f"{self.name}: FAILED: {self.detail}" + (f" - fix: {self.fix}" if self.fix else "")


def _listed(names: list[str], limit: int = 5) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit - 2])} and {len(names) - limit + 2} more"


def _state_store(settings: Settings) -> list[Check]:
    from dotdyn_pipeline.state import StateStore

    backend = "PostgreSQL (DOTDYN_POSTGRES_URL)" if settings.postgres_url else f"SQLite under {settings.home}"
    checks = [Check("instance and state store", True, backend)]
    try:
        store = StateStore.open(settings.state_url, settings.state_schema)
    except Exception as exc:  # noqa: BLE001 - the point is to report any failure
        return [*checks, Check("state store", False, f"{type(exc).__name__}: {exc}",
                               "check DOTDYN_POSTGRES_URL (or DOTDYN_HOME) and that the database answers")]
    with store:
        return [*checks, Check("state store", True, f"schema version {store.schema_versions()[-1]}")]


def _organisation(settings: Settings) -> list[Check]:
    """The organisation's checks, in order; each needs the ones before it to pass."""
    from dotdyn_pipeline.connectors.dataverse import DataverseError
    from dotdyn_pipeline.connectors.dataverse.metadata import MetadataClient
    from dotdyn_pipeline.organisation import dataverse_config
    from dotdyn_pipeline.settings import SettingsError

    try:
        config = dataverse_config(settings)
    except SettingsError as error:
        return [Check("sign-in", False, str(error), "set them")]
    checks: list[Check] = []
    with MetadataClient(config) as client:
        try:
            client.sign_in()
        except DataverseError as error:
            return [Check("sign-in", False, f"{config.authority} refused a token: {error}",
                          "check DOTDYN_AUTHORITY, DOTDYN_CLIENT_ID and DOTDYN_CLIENT_SECRET (and DOTDYN_CA_BUNDLE)")]
        checks.append(Check("sign-in", True, f"a token from {config.authority}"))
        steps: list[tuple[str, Callable[[MetadataClient], list[Check]]]] = [
            ("Web API", _web_api), ("solution", _solution_and_tracking), ("connector role", _connector_role),
            ("email accounts", lambda c: _email_accounts(c, settings))]
        for name, step in steps:
            try:
                found = step(client)
            except DataverseError as error:
                found = [Check(name, False, str(error))]
            checks += found
            if name == "Web API" and not found[0].ok:
                break  # nothing else can answer
    return checks


def _web_api(client) -> list[Check]:
    return [Check("Web API", True, f"{client.config.api_root} answers, version {client.version()}")]


def _solution_and_tracking(client) -> list[Check]:
    from dotdyn_pipeline.solution.provision import SolutionSpec, plan_tables

    spec = SolutionSpec()
    found = plan_tables(spec, client.tables(spec.table_names()))
    missing: dict[str, list[str]] = {}
    for change in found.changes:
        if change.kind != "change tracking":
            missing.setdefault(change.kind, []).append(change.name)
    problems = [f"{len(names)} {kind}{'s' if len(names) > 1 else ''} ({_listed(names)})"
                for kind, names in missing.items()] + [f"conflict: {c}" for c in found.conflicts] + [
        f"keys of {table} not Active yet" for table in found.keys_to_wait_for]
    untracked = [change.table for change in found.changes if change.kind == "change tracking"]
    tables = len(spec.tables)
    return [
        Check("solution", False, "missing " + "; ".join(problems), PROVISION) if problems else
        Check("solution", True, f"{tables} tables, their columns and alternate keys (Active), the columns on "
                                f"standard tables and {len(spec.many_to_many)} many-to-many relationships"),
        Check("change tracking", False, "off on " + ", ".join(untracked), PROVISION) if untracked else
        Check("change tracking", True, "on for every table the pipeline reads incrementally"),
    ]


def _connector_role(client) -> list[Check]:
    from dotdyn_pipeline.solution.schema import CONNECTOR_ROLE

    user_id, _ = client.who_am_i()
    if CONNECTOR_ROLE in client.user_roles(user_id).values():
        return [Check("connector role", True, f"the application user holds {CONNECTOR_ROLE!r}")]
    return [Check("connector role", False, f"the application user ({user_id}) does not hold {CONNECTOR_ROLE!r}",
                  PROVISION)]


def _email_accounts(client, settings: Settings) -> list[Check]:
    """Each active esc_emailaccount row: its secret variable is set (and may be read), its credentials work."""
    from dotdyn_pipeline.connectors.dotdigital import DotdigitalError
    from dotdyn_pipeline.defs.accounts.accounts import active_accounts
    from dotdyn_pipeline.resources import MissingSecret, SecretNotAllowed, resources

    if "esc_emailaccount" not in client.tables(["esc_emailaccount"]):
        return [Check("email accounts", False, "the table esc_emailaccount does not exist", PROVISION)]
    accounts = active_accounts(client)
    if not accounts:
        return [Check("email accounts", False, "no active esc_emailaccount row",
                      "add one row per Dotdigital account (docs/accounts.md)")]
    dotdigital, checks = resources()["dotdigital"], []
    for account in accounts:
        name = f"email account {account.name or account.api_user}"
        try:
            with account.dotdigital(dotdigital) as connected:
                info = connected.account
                region = (info.api_endpoint if info else None) or dotdigital.base_url
                left = info.properties.get("ApiCallsRemaining", "unknown") if info else "unknown"
                checks.append(Check(name, True, f"{account.api_user} signs in; region {region}; "
                                                f"{left} API calls left this hour"))
        except MissingSecret as error:
            checks.append(Check(name, False, str(error), f"set {account.secret_name} to the API user's password"))
        except SecretNotAllowed as error:
            checks.append(Check(name, False, str(error), "rename the variable, or list it in DOTDYN_SECRET_NAMES"))
        except DotdigitalError as error:
            checks.append(Check(name, False, f"Dotdigital refused {account.api_user}: {error}",
                                f"check the API user and the password in {account.secret_name}"))
    return checks


def run_doctor(as_json: bool = False) -> int:
    """Print one line per check (or, `as_json`, one JSON object); exit non-zero if any failed."""
    settings = Settings.from_env()
    checks = _state_store(settings) + _organisation(settings)
    ok = all(check.ok for check in checks)
    if as_json:
        print(json.dumps({"ok": ok, "checks": [asdict(check) for check in checks]}, sort_keys=True))
    else:
        for check in checks:
            print(check.line())
    return 0 if ok else 1
