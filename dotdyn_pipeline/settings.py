"""Where the pipeline keeps its files and databases, from the environment.

With nothing set, everything is embedded: Dagster's instance and the state store are SQLite files under
`DOTDYN_HOME` (default `.dotdyn/` in the working directory). With `DOTDYN_POSTGRES_URL` set, both use that
PostgreSQL database: Dagster through dagster-postgres, the state store in its own schema.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: The checkout the code location runs from: holds dagster.yaml, workspace.yaml and sql/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """The pipeline's storage settings."""

    home: Path
    postgres_url: str | None
    state_schema: str

    @classmethod
    def from_env(cls) -> Settings:
        schema = os.environ.get("DOTDYN_STATE_SCHEMA", "dotdyn")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ValueError(f"DOTDYN_STATE_SCHEMA must be a lower-case SQL identifier, got {schema!r}")
        return cls(
            home=Path(os.environ.get("DOTDYN_HOME", ".dotdyn")).resolve(),
            postgres_url=os.environ.get("DOTDYN_POSTGRES_URL") or None,
            state_schema=schema,
        )

    @property
    def state_url(self) -> str:
        """The state store's database: PostgreSQL when configured, else a SQLite file under home."""
        return self.postgres_url or f"sqlite:///{self.home / 'state.db'}"

    @property
    def dagster_home(self) -> Path:
        """The DAGSTER_HOME the CLI uses (the storage inside follows DOTDYN_POSTGRES_URL)."""
        return self.home / "dagster"
