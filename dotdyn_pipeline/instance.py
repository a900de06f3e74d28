"""The Dagster instance: one dagster.yaml whose storage is PostgreSQL or SQLite as the environment says."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import Field, StringSource
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from dotdyn_pipeline.settings import PROJECT_ROOT, Settings

INSTANCE_FILE = PROJECT_ROOT / "dagster.yaml"


class EnvironmentSelectedStorage(DagsterStorage, ConfigurableClass):
    """Selects Dagster's storage when the instance loads: PostgreSQL if the named variable holds a URL,
    else SQLite under `base_dir` (default DAGSTER_HOME, else DOTDYN_HOME/dagster). It is never instantiated itself."""

    @classmethod
    def config_type(cls) -> dict:
        return {"postgres_url_env": Field(str, default_value="DOTDYN_POSTGRES_URL"),
                "base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> DagsterStorage:
        url = os.environ.get(config_value["postgres_url_env"])
        if url:
            from dagster_postgres import DagsterPostgresStorage

            return DagsterPostgresStorage(postgres_url=psycopg2_url(url), inst_data=inst_data)
        base_dir = (config_value.get("base_dir") or os.environ.get("DAGSTER_HOME")
                    or str(Settings.from_env().dagster_home))
        return DagsterSqliteStorage.from_local(base_dir, inst_data=inst_data)


def psycopg2_url(url: str) -> str:
    """Name psycopg2 (the driver dagster-postgres installs) explicitly: SQLAlchemy 2.1 would pick psycopg 3."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg2://{rest}" if sep and scheme in ("postgresql", "postgres") else url


def prepare_dagster_home(settings: Settings) -> Path:
    """Put the project's dagster.yaml in the settings' DAGSTER_HOME, export it, and return the folder."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_FILE, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
