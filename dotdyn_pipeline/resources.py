"""ConfigurableResources that build the pipeline's connections from configuration wired with EnvVar."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

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
        """Connect and bring the schema up to date; the caller closes the store."""
        url = self.postgres_url or f"sqlite:///{Path(self.home).resolve() / 'state.db'}"
        return StateStore.open(url, self.schema_name)


def state_store_resource() -> StateStoreResource:
    """The state store as the environment configures it; the PostgreSQL URL stays an EnvVar (it holds a password)."""
    return StateStoreResource(
        postgres_url=dg.EnvVar("DOTDYN_POSTGRES_URL") if os.environ.get("DOTDYN_POSTGRES_URL") else None,
        schema_name=os.environ.get("DOTDYN_STATE_SCHEMA", "dotdyn"),
        home=os.environ.get("DOTDYN_HOME", ".dotdyn"),
    )
