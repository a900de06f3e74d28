"""ConfigurableResources that build the pipeline's connections from configuration wired with EnvVar."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from dotdyn_pipeline.connectors.dataverse import DataverseClient, DataverseConfig
from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient, DotdigitalConfig, connect
from dotdyn_pipeline.connectors.dotdigital.config import DEFAULT_BASE_URL
from dotdyn_pipeline.settings import DEFAULT_SECRET_PREFIX, OWN_SECRETS, Settings
from dotdyn_pipeline.state import StateStore


class StateStoreResource(dg.ConfigurableResource):
    """The state store: PostgreSQL (in `schema_name`) when `postgres_url` is set, else SQLite under `home`."""

    postgres_url: str | None = None
    schema_name: str = "dotdyn"
    home: str = ".dotdyn"

    @property
    def backend_name(self) -> str:
        return "postgresql" if self.postgres_url else "sqlite"

    def open(self) -> StateStore:
        """Connect and bring the schema up to date: `with state.open() as store:` closes it after the block."""
        url = self.postgres_url or f"sqlite:///{Path(self.home).resolve() / 'state.db'}"
        return StateStore.open(url, self.schema_name)


class DataverseResource(dg.ConfigurableResource):
    """The Dynamics 365 organisation, reached as an app registered in Entra ID (client credentials)."""

    org_url: str
    authority: str
    client_id: str
    client_secret: str
    ca_bundle: str | None = None
    api_version: str = "v9.2"
    change_tracking: bool = True
    token_scope: str | None = None
    max_page_size: int = 5000
    max_concurrency: int = 4

    def client(self) -> DataverseClient:
        """A new client; the caller closes it."""
        return DataverseClient(DataverseConfig(
            org_url=self.org_url, authority=self.authority, client_id=self.client_id,
            client_secret=self.client_secret, ca_bundle=self.ca_bundle or None, api_version=self.api_version,
            change_tracking=self.change_tracking, token_scope=self.token_scope or None,
            max_page_size=self.max_page_size, max_concurrency=self.max_concurrency))


class MissingSecret(RuntimeError):
    """An account's row names an environment variable for its API password that is not set."""


class SecretNotAllowed(RuntimeError):
    """An account's row names an environment variable that no account may name: it is not read."""


class DotdigitalResource(dg.ConfigurableResource):
    """Dotdigital: one client per account, each with the API user and secret its esc_emailaccount row names.

    The row is CRM data: the variable it names is read only when its name begins with `secret_prefix` or is one
    of `secret_names`, so that no one who can edit an account can have another secret sent to Dotdigital."""

    base_url: str = DEFAULT_BASE_URL
    ca_bundle: str | None = None
    max_active_imports: int = 10
    #: Seconds from an import's upload to the first look at its status while the account's import throughput is
    #: not yet known (the connector's `poll_initial`).
    import_first_poll: float = 2.0
    secret_prefix: str = DEFAULT_SECRET_PREFIX
    secret_names: list[str] = []

    def may_read(self, secret_name: str | None) -> bool:
        """Whether an account may have its password read from the variable `secret_name`."""
        return bool(secret_name) and secret_name not in OWN_SECRETS and (
            secret_name in self.secret_names or secret_name.startswith(self.secret_prefix))

    def client(self, *, api_user: str, secret_name: str, transport: str = "rest") -> DotdigitalClient:
        """A connected client (region discovered); the password comes from the variable `secret_name`."""
        if not self.may_read(secret_name):
            raise SecretNotAllowed(
                f"the API password of Dotdigital user {api_user!r} is to be read from the environment variable "
                f"{secret_name!r}, which an account may not name: esc_secretname must begin with "
                f"{self.secret_prefix!r} (DOTDYN_SECRET_PREFIX) or be listed in DOTDYN_SECRET_NAMES. "
                "The variable was not read")
        password = os.environ.get(secret_name)
        if not password:
            raise MissingSecret(f"the API password of Dotdigital user {api_user!r} is read from the environment "
                                f"variable {secret_name!r}, which is not set")
        return connect(DotdigitalConfig(api_user=api_user, api_password=password, base_url=self.base_url,
                                        transport=transport, ca_bundle=self.ca_bundle or None,
                                        max_active_imports=self.max_active_imports,
                                        poll_initial=self.import_first_poll))


def state_store_resource(settings: Settings | None = None) -> StateStoreResource:
    """The state store as the environment configures it; the PostgreSQL URL stays an EnvVar (it holds a password)."""
    settings = settings or Settings.from_env()
    return StateStoreResource(
        postgres_url=dg.EnvVar("DOTDYN_POSTGRES_URL") if settings.postgres_url else None,
        schema_name=settings.state_schema, home=str(settings.home))


def resources() -> dict[str, dg.ConfigurableResource]:
    """Every resource, wired to the environment (secrets as EnvVar, resolved when a run starts)."""
    settings = Settings.from_env()
    return {
        "state": state_store_resource(settings),
        "dataverse": DataverseResource(
            org_url=dg.EnvVar("DOTDYN_DATAVERSE_URL"), authority=dg.EnvVar("DOTDYN_AUTHORITY"),
            client_id=dg.EnvVar("DOTDYN_CLIENT_ID"), client_secret=dg.EnvVar("DOTDYN_CLIENT_SECRET"),
            ca_bundle=settings.ca_bundle, api_version=settings.dataverse_api_version,
            change_tracking=settings.dataverse_change_tracking, token_scope=settings.token_scope),
        "dotdigital": DotdigitalResource(base_url=settings.dotdigital_url, ca_bundle=settings.ca_bundle,
                                         secret_prefix=settings.secret_prefix,
                                         secret_names=sorted(settings.secret_names),
                                         import_first_poll=settings.import_first_poll),
    }
