"""Migrations apply once, atomically, on both backends."""

from __future__ import annotations

import hashlib
import threading

import pytest

from dotdyn_pipeline.state.backend import connect
from dotdyn_pipeline.state.migrations import (
    EARLIER_TEXT_CHECKSUMS,
    Migration,
    MigrationError,
    applied_versions,
    load_migrations,
    migrate,
)

STATE_TABLES = {"sync_cursor", "contact_map", "import_job", "quarantine", "unsubscribe_ledger", "api_calls"}


def _tables(backend) -> set[str]:
    if backend.name == "sqlite":
        rows = backend.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = backend.query("SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                             (backend.schema,))
    return {row[0] for row in rows}


def test_applies_every_migration_once(state_url):
    backend = connect(*state_url)
    first = migrate(backend)
    assert first == [m.version for m in load_migrations()]
    assert STATE_TABLES <= _tables(backend)
    assert migrate(backend) == []  # a second run is a no-op
    assert applied_versions(backend) == first


def test_failing_migration_leaves_nothing_half_applied(state_url):
    backend = connect(*state_url)
    broken = Migration(9001, "broken", "CREATE TABLE half_done (id INTEGER);\nCREATE TABLE half_done (id INTEGER);")
    with pytest.raises(MigrationError, match="9001_broken failed"):
        migrate(backend, [broken])
    assert "half_done" not in _tables(backend)
    assert 9001 not in applied_versions(backend)
    fixed = Migration(9001, "broken", "CREATE TABLE half_done (id INTEGER)")
    assert migrate(backend, [fixed]) == [9001]


def test_an_edited_applied_migration_is_refused(state_url):
    backend = connect(*state_url)
    migrate(backend, [Migration(9002, "first", "CREATE TABLE first_table (id INTEGER)")])
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(backend, [Migration(9002, "first", "CREATE TABLE first_table (id BIGINT)")])


def test_a_comment_or_layout_change_is_accepted(state_url):
    backend = connect(*state_url)
    first = "-- a table\nCREATE TABLE notes (id INTEGER, note TEXT DEFAULT 'a  b');"
    migrate(backend, [Migration(9003, "notes", first)])
    reworded = Migration(9003, "notes", "-- the same table, said differently\nCREATE TABLE notes (\n"
                                        "    id INTEGER,  -- its key\n    note TEXT DEFAULT 'a  b'\n);\n")
    assert migrate(backend, [reworded]) == []


def test_a_changed_quoted_string_is_a_changed_statement(state_url):
    backend = connect(*state_url)
    migrate(backend, [Migration(9004, "notes", "CREATE TABLE notes (note TEXT DEFAULT 'a  b')")])
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(backend, [Migration(9004, "notes", "CREATE TABLE notes (note TEXT DEFAULT 'a b')")])


def _checksums(backend) -> dict[int, str]:
    return dict(backend.query("SELECT version, checksum FROM schema_migrations"))


def _stamp_the_old_way(backend, checksums: dict[int, str]) -> None:
    """Record checksums as migrations did before they left comments out."""
    with backend.transaction():
        for version, checksum in checksums.items():
            backend.execute("UPDATE schema_migrations SET checksum = ? WHERE version = ?", (checksum, version))


def _whole_text_checksum(migration: Migration) -> str:
    return hashlib.sha256(migration.sql.encode()).hexdigest()


def test_an_installation_stamped_the_old_way_is_accepted_and_stamped_again(state_url):
    """Before, the checksum was the sha256 of a file's whole text; the files whose comments were edited since
    are recognised by the checksums of their earlier text."""
    backend = connect(*state_url)
    migrations = load_migrations()
    migrate(backend, migrations)
    earlier = {version: text for text, (version, _) in EARLIER_TEXT_CHECKSUMS.items()}
    old_way = {m.version: earlier.get(m.version, _whole_text_checksum(m)) for m in migrations}
    _stamp_the_old_way(backend, old_way)
    assert _checksums(backend) == old_way
    assert migrate(backend, migrations) == []
    assert _checksums(backend) == {m.version: m.checksum for m in migrations}
    assert migrate(backend, migrations) == []


def test_an_installation_stamped_the_old_way_still_refuses_a_changed_statement(state_url):
    backend = connect(*state_url)
    applied = Migration(9005, "first", "-- the first table\nCREATE TABLE first_table (id INTEGER)")
    migrate(backend, [applied])
    _stamp_the_old_way(backend, {9005: _whole_text_checksum(applied)})
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(backend, [Migration(9005, "first", "-- the first table\nCREATE TABLE first_table (id BIGINT)")])
    assert _checksums(backend)[9005] == _whole_text_checksum(applied)


def test_an_earlier_text_is_known_only_for_its_own_migration(state_url):
    """A recorded checksum of an earlier text vouches for that text's statements in its own version only."""
    backend = connect(*state_url)
    text = next(iter(EARLIER_TEXT_CHECKSUMS))
    other = Migration(9006, "other", "CREATE TABLE other_table (id INTEGER)")
    migrate(backend, [other])
    _stamp_the_old_way(backend, {9006: text})
    with pytest.raises(MigrationError, match="9006_other changed after it was applied"):
        migrate(backend, [other])


def _at_once(work, threads: int) -> tuple[list, list[Exception]]:
    """Run `work` on several threads at once; return its results and the exceptions it raised."""
    results, errors = [], []

    def run():
        try:
            results.append(work())
        except Exception as exc:  # noqa: BLE001 - returned to the test, which asserts on them
            errors.append(exc)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return results, errors


def test_concurrent_runs_apply_each_migration_once(state_url):
    results, errors = _at_once(lambda: migrate(connect(*state_url)), 4)
    assert errors == []
    applied = sorted(v for result in results for v in result)
    assert applied == [m.version for m in load_migrations()]


def test_migration_files_are_named_by_version(tmp_path):
    (tmp_path / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="NNNN_lower_case_name"):
        load_migrations(tmp_path)


def test_connections_opened_together_on_a_new_sqlite_file_all_succeed(tmp_path):
    """Switching a new file to write-ahead logging is refused at once while another connection opens it."""
    for attempt in range(30):
        url = f"sqlite:///{tmp_path}/fresh-{attempt}.db"
        _, errors = _at_once(lambda url=url: connect(url).close(), 6)
        assert errors == [], f"attempt {attempt}"
        assert connect(url).query("PRAGMA journal_mode") == [("wal",)]
