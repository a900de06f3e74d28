"""`dotdyn doctor`: say which instance and state store the environment selects, and whether they answer."""

from __future__ import annotations

from dotdyn_pipeline.settings import Settings
from dotdyn_pipeline.state import StateStore


def run_doctor() -> int:
    """Print one line per check; exit non-zero if any failed. Never prints a URL's password."""
    settings = Settings.from_env()
    backend = "PostgreSQL (DOTDYN_POSTGRES_URL)" if settings.postgres_url else f"SQLite under {settings.home}"
    print(f"instance and state store: {backend}")
    try:
        store = StateStore.open(settings.state_url, settings.state_schema)
    except Exception as exc:  # noqa: BLE001 - the point is to report any failure
        print(f"state store: FAILED ({type(exc).__name__}: {exc})")
        return 1
    with store:
        print(f"state store: schema version {store.schema_versions()[-1]}")
    return 0
