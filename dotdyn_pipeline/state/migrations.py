"""Apply the ordered SQL migrations in `sql/` once each, atomically, on either backend.

A migration is `NNNN_name.sql`. Each runs in its own transaction together with its row in
`schema_migrations`, so a failing migration leaves nothing behind; a migration whose file changed after it
was applied is an error, not a silent skip.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dotdyn_pipeline.settings import PROJECT_ROOT
from dotdyn_pipeline.state.backend import Backend

MIGRATIONS_DIR = PROJECT_ROOT / "sql"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    """A migration could not be applied, or an applied one no longer matches its file."""


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `directory`, in version order; versions must be unique."""
    if not directory.is_dir():
        raise MigrationError(f"no migrations folder at {directory}")
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_case_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return migrations


def migrate(backend: Backend, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is not applied yet; return the versions applied by this call (empty when up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    applied_now: list[int] = []
    with backend.transaction():
        backend.lock_migrations()
        backend.script("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                       "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for migration in migrations:
        with backend.transaction():
            backend.lock_migrations()
            done = backend.query("SELECT checksum FROM schema_migrations WHERE version = ?", (migration.version,))
            if done:
                if done[0][0] != migration.checksum:
                    raise MigrationError(f"migration {migration.version:04d}_{migration.name} changed after it "
                                         "was applied; add a new migration instead of editing an applied one")
                continue
            try:
                backend.script(migration.sql)
            except Exception as exc:
                raise MigrationError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
            backend.execute("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                            (migration.version, migration.name, migration.checksum, datetime.now(UTC).isoformat()))
            applied_now.append(migration.version)
    return applied_now


def applied_versions(backend: Backend) -> list[int]:
    """The versions recorded as applied."""
    return [row[0] for row in backend.query("SELECT version FROM schema_migrations ORDER BY version")]
