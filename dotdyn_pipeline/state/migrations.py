"""Apply the ordered SQL migrations in `sql/` once each, atomically, on either backend.

A migration is `NNNN_name.sql`. Each runs in its own transaction together with its row in
`schema_migrations`, so a failing migration leaves nothing behind; a migration whose statements changed after
it was applied is an error, not a silent skip. Its comments and layout may change: the checksum recorded for it
covers the statements alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dotdyn_pipeline.settings import PROJECT_ROOT
from dotdyn_pipeline.state.backend import Backend, split_statements

MIGRATIONS_DIR = PROJECT_ROOT / "sql"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: A quoted string or name (kept whole, whatever it holds), whitespace that parts two words, or other whitespace.
_QUOTED_OR_SPACE = re.compile(r"""(?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*")|(?P<parting>(?<=\w)\s+(?=\w))|\s+""")

#: Installations migrated before checksums left comments out recorded the sha256 of each file's whole text.
#: For a file whose comments were edited since, that text's checksum is kept here with the version it
#: belongs to and the checksum of its statements, so that an installation which applied it is still known.
EARLIER_TEXT_CHECKSUMS: dict[str, tuple[int, str]] = {
    "7494a34b2a57ffb276befaf9cff224c3479b399bd6de07c869bcea8815e7e9df":
        (9, "8ffc767f56d2eaef85c57b1fed6183b4a15e1e1ed2bc6326d3f0cbd03fc2a580"),
    "f853e4fac1240f5bfd4d81dc411799f91e60e4badc4bc3b3ff23609bc84b48fd":
        (10, "9c47b4171238ccf2e7295ab4b68d85f2194e035a82eb0f85b2d40a3bc040e8bd"),
}


def statements(sql: str) -> str:
    """The statements of `sql` as the backend runs them, without comments and without layout: whitespace outside
    quotes is one space where it parts two words and none elsewhere. What a migration's checksum covers, since
    comments and layout change no schema."""
    return "; ".join(_QUOTED_OR_SPACE.sub(_without_layout, statement) for statement in split_statements(sql))


def _without_layout(match: re.Match[str]) -> str:
    return match["quoted"] or (" " if match["parting"] else "")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """The checksum of the statements, recorded when the migration is applied."""
        return hashlib.sha256(statements(self.sql).encode()).hexdigest()

    def recorded_before_comments_were_left_out(self, recorded: str) -> bool:
        """Whether `recorded` is this migration's checksum as it was taken of the whole text, before."""
        return (recorded == hashlib.sha256(self.sql.encode()).hexdigest()
                or EARLIER_TEXT_CHECKSUMS.get(recorded) == (self.version, self.checksum))


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
                recorded = done[0][0]
                if recorded == migration.checksum:
                    continue
                if not migration.recorded_before_comments_were_left_out(recorded):
                    raise MigrationError(f"migration {migration.version:04d}_{migration.name} changed after it "
                                         "was applied; add a new migration instead of editing an applied one")
                backend.execute("UPDATE schema_migrations SET checksum = ? WHERE version = ?",
                                (migration.checksum, migration.version))
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
