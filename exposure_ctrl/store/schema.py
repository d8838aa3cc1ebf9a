"""The store's schema and its forward migrations.

``MIGRATIONS[i]`` takes a store from schema version ``i`` to ``i + 1`` (version 0 is an empty
file). Each migration runs in one transaction together with the row that records it in
``schema_version``, so a store is always at a whole version. A store whose version is higher than
``SCHEMA_VERSION`` was written by newer software and is refused with
:class:`~exposure_ctrl.errors.StoreVersionError`, never modified.

To change the schema: append a migration (never edit a released one), and describe it in
docs/store.md.
"""

from __future__ import annotations

import datetime as _dt
import logging
import sqlite3
from collections.abc import Callable, Sequence

from exposure_ctrl import __version__
from exposure_ctrl.errors import StoreError, StoreVersionError

__all__ = ["SCHEMA_VERSION", "MIGRATIONS", "Migration", "schema_version", "migrate"]

log = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]

_V1 = """
CREATE TABLE patients (
    code        TEXT PRIMARY KEY,            -- pseudonymous code only, never a name
    created_at  TEXT NOT NULL                -- UTC, ISO 8601
);

CREATE TABLE sessions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uid               TEXT NOT NULL UNIQUE,  -- random, unique across stores
    patient           TEXT NOT NULL REFERENCES patients(code),
    scenario_id       TEXT NOT NULL,
    scenario_version  INTEGER,
    scenario_sha256   TEXT,                  -- of the scenario file's bytes
    scenario_source   TEXT,                  -- path it was loaded from
    scenario_json     TEXT,                  -- the scenario as used (targets, hierarchy, ...)
    policy_id         TEXT,
    policy_sha256     TEXT,
    software_json     TEXT NOT NULL,         -- {package: version}
    settings_json     TEXT NOT NULL,
    seed              INTEGER,
    mode              TEXT NOT NULL,
    started_at        TEXT NOT NULL,         -- UTC wall clock at session time 0
    ended_at          TEXT,                  -- UTC; NULL while running or after a crash
    duration_s        REAL,                  -- session time at the end
    outcome           TEXT,                  -- completed | therapist_ended | aborted_by_patient | safety
    end_reason        TEXT
);
CREATE INDEX sessions_patient ON sessions(patient, started_at);

-- every time below is in session seconds (0 = sessions.started_at, monotonic clock)

CREATE TABLE hr_samples (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    bpm         REAL NOT NULL,
    rr_ms       TEXT,                        -- JSON array, oldest first; NULL when none
    contact     INTEGER,                     -- 1, 0, or NULL when not reported
    flags       INTEGER NOT NULL,            -- exposure_ctrl.sensors.Quality bits
    source      TEXT NOT NULL
);
CREATE INDEX hr_samples_session ON hr_samples(session_id, t);

CREATE TABLE baselines (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    bpm         REAL NOT NULL,
    sd_bpm      REAL NOT NULL,
    quality     REAL NOT NULL,               -- fraction of usable samples, 0..1
    n_samples   INTEGER
);

CREATE TABLE decisions (
    session_id       INTEGER NOT NULL REFERENCES sessions(id),
    seq              INTEGER NOT NULL,
    t                REAL NOT NULL,
    phase            TEXT,
    mode             TEXT NOT NULL,
    observation_json TEXT NOT NULL,
    proposed_action  INTEGER,
    proposed_label   TEXT,
    proposal_reason  TEXT,
    verdict          TEXT NOT NULL,          -- the shield's: allow, or what it did instead
    verdict_reason   TEXT,                   -- the shield's reason code
    executed_action  INTEGER,
    executed_label   TEXT,
    response         TEXT,                   -- advisory mode: accepted | rejected
    responded_by     TEXT,
    response_t       REAL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE scene_changes (
    session_id       INTEGER NOT NULL REFERENCES sessions(id),
    seq              INTEGER NOT NULL,
    t                REAL NOT NULL,
    state_json       TEXT NOT NULL,
    intensity        REAL,
    hierarchy_index  INTEGER,
    trigger          TEXT NOT NULL,          -- policy | shield | therapist | system
    who              TEXT,
    reason           TEXT,
    sent_t           REAL,
    acked_t          REAL,
    rtt_ms           REAL,
    wire_seq         INTEGER,
    resends          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE headset_events (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    kind        TEXT NOT NULL,               -- connected, lost, replaced, panic, removed, worn, gaze...
    detail_json TEXT NOT NULL
);
CREATE INDEX headset_events_session ON headset_events(session_id, t);

CREATE TABLE sensor_events (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    kind        TEXT NOT NULL,               -- connected, disconnected, stale, reconnected...
    detail_json TEXT NOT NULL
);
CREATE INDEX sensor_events_session ON sensor_events(session_id, t);

CREATE TABLE gaps (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,               -- sensor | headset
    start_t     REAL NOT NULL,
    end_t       REAL,                        -- NULL: still open when the record ends
    reason      TEXT,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE suds (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    value       INTEGER NOT NULL CHECK (value BETWEEN 0 AND 100),
    source      TEXT NOT NULL,               -- therapist | headset
    who         TEXT
);
CREATE INDEX suds_session ON suds(session_id, t);

CREATE TABLE notes (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    text        TEXT NOT NULL,
    author      TEXT NOT NULL
);
CREATE INDEX notes_session ON notes(session_id, t);

CREATE TABLE model_estimates (
    session_id     INTEGER NOT NULL REFERENCES sessions(id),
    t              REAL NOT NULL,
    estimates_json TEXT NOT NULL             -- {"unit", "parameters": {id: {"mean", "sd"}}, "detail"}
);
CREATE INDEX model_estimates_session ON model_estimates(session_id, t);

CREATE TABLE phases (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    phase       TEXT NOT NULL,               -- baseline | exposure | recovery | ended
    reason      TEXT
);
CREATE INDEX phases_session ON phases(session_id, t);

CREATE TABLE commands (
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    t           REAL NOT NULL,
    who         TEXT NOT NULL,
    command     TEXT NOT NULL,
    args_json   TEXT NOT NULL,
    result      TEXT
);
CREATE INDEX commands_session ON commands(session_id, t);
"""


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (``executescript`` would commit midway)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement in a migration: {buf.strip()[:60]!r}")
    return out


def _v1(conn: sqlite3.Connection) -> None:
    for statement in _statements(_V1):
        conn.execute(statement)


MIGRATIONS: tuple[Migration, ...] = (_v1,)
"""Forward migrations; ``MIGRATIONS[i]`` goes from version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def schema_version(conn: sqlite3.Connection) -> int:
    """The store's schema version: 0 for an empty file; ``StoreError`` for a foreign database."""
    if not _has_table(conn, "schema_version"):
        n_tables = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()[0]
        if n_tables:
            raise StoreError(
                "this SQLite file is not an exposure-ctrl session store (it has tables but no "
                "schema_version table); pass the path of a session store, or a new file"
            )
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    path: str = "the store",
) -> int:
    """Bring the store up to ``len(migrations)``; return the version it was at before.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises
    :class:`StoreVersionError` if the store is newer than this software.
    """
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_table(conn, "schema_version"):
            schema_version(conn)  # refuses a foreign database
            conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT "
                "NULL, software TEXT NOT NULL)"
            )
        before = schema_version(conn)
        if before > target:
            raise StoreVersionError(
                f"{path} has schema version {before}, but this exposure-ctrl ({__version__}) "
                f"knows versions up to {target}: it was written by newer software. Upgrade "
                "exposure-ctrl to read it (the file was not changed)"
            )
        for version in range(before, target):
            migrations[version](conn)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at, software) VALUES (?, ?, ?)",
                (
                    version + 1,
                    _dt.datetime.now(_dt.timezone.utc).isoformat(),
                    f"exposure-ctrl {__version__}",
                ),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if before < target:
        log.info("%s: schema migrated from version %d to %d", path, before, target)
    return before
