"""Schema version table, forward migrations, and refusing files we must not touch."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from exposure_ctrl.errors import StoreError, StoreVersionError
from exposure_ctrl.store import SCHEMA_VERSION, Store
from exposure_ctrl.store.schema import MIGRATIONS, migrate, schema_version


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def test_a_new_store_is_at_the_current_version_with_a_history_row(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    rows = store.conn.execute("SELECT version, software FROM schema_version").fetchall()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert all(r[1].startswith("exposure-ctrl ") for r in rows)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_check() == "ok"


def test_reopening_does_not_migrate_again(store_path: Path) -> None:
    Store.open(store_path).close()
    with Store.open(store_path) as s:
        n = s.conn.execute("SELECT count(*) FROM schema_version").fetchone()[0]
    assert n == SCHEMA_VERSION


def test_a_newer_store_is_refused_and_left_unchanged(store_path: Path) -> None:
    Store.open(store_path).close()
    c = _conn(store_path)
    c.execute(
        "INSERT INTO schema_version (version, applied_at, software) VALUES (?, ?, ?)",
        (SCHEMA_VERSION + 1, "2030-01-01T00:00:00+00:00", "exposure-ctrl 9.0"),
    )
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    before = hashlib.sha256(store_path.read_bytes()).hexdigest()
    with pytest.raises(StoreVersionError, match=rf"schema version {SCHEMA_VERSION + 1}.*Upgrade"):
        Store.open(store_path)
    assert hashlib.sha256(store_path.read_bytes()).hexdigest() == before


def test_forward_migration_keeps_the_data(tmp_path: Path) -> None:
    """A store at version 1 with data gains version 2's column and keeps every row."""
    path = tmp_path / "old.sqlite"
    c = _conn(path)
    migrate(c, MIGRATIONS[:1])
    c.execute("INSERT INTO patients (code, created_at) VALUES (?, ?)", ("P-1", "2026-01-01"))

    def v2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE patients ADD COLUMN cohort TEXT DEFAULT 'none'")

    assert migrate(c, (*MIGRATIONS[:1], v2)) == 1
    assert schema_version(c) == 2
    assert c.execute("SELECT code, cohort FROM patients").fetchall() == [("P-1", "none")]
    c.close()


def test_a_failing_migration_leaves_the_store_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    c = _conn(path)
    migrate(c, MIGRATIONS[:1])

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE patients ADD COLUMN half_done TEXT")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        migrate(c, (*MIGRATIONS[:1], broken))
    assert schema_version(c) == 1
    cols = [r[1] for r in c.execute("PRAGMA table_info(patients)")]
    assert "half_done" not in cols
    c.close()


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    c = _conn(path)
    c.execute("CREATE TABLE accounts (id INTEGER)")
    c.close()
    with pytest.raises(StoreError, match="not an exposure-ctrl session store"):
        Store.open(path)
    c = _conn(path)
    assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["accounts"]
    c.close()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are not the droids " * 100)
    with pytest.raises(StoreError, match="not a usable session store"):
        Store.open(path)


def test_a_missing_store_is_not_created_when_reading(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite"
    with pytest.raises(StoreError, match="no session store at"):
        Store.open(path, create=False)
    assert not path.exists()
