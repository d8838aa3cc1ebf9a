"""The session store: one SQLite file (WAL), opened, migrated, written and queried here.

>>> from exposure_ctrl.store import Store
>>> with Store.open(path) as store:                              # doctest: +SKIP
...     with store.begin_session(patient="P-0042", scenario=sc, mode="autonomous") as w:
...         w.sample(sample)
...         w.end(clock.now(), "completed")
...     store.list_sessions(patient="P-0042")

Opening creates the file (mode 0600, its directory 0700 if created), switches it to WAL, and
migrates it forward; a file written by newer software is refused with ``StoreVersionError``.
SQL is parameterised everywhere.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import sqlite3
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exposure_ctrl import __version__
from exposure_ctrl.clock import utc_now
from exposure_ctrl.errors import ConfigError, StoreError
from exposure_ctrl.store.files import (
    create_private_file,
    default_store_path,
    ensure_private_dir,
    tighten_file,
)
from exposure_ctrl.store.records import (
    Baseline,
    Command,
    Decision,
    Event,
    Gap,
    Mode,
    ModelEstimate,
    Note,
    PhaseChange,
    Sample,
    SceneChange,
    SessionInfo,
    SessionRecord,
    SessionSummary,
    Suds,
    validate_patient_code,
)
from exposure_ctrl.store.schema import MIGRATIONS, migrate, schema_version
from exposure_ctrl.store.writer import DEFAULT_COMMIT_INTERVAL_S, SessionWriter

if TYPE_CHECKING:
    from exposure_ctrl.scenario import Scenario

__all__ = ["Store", "software_versions"]

log = logging.getLogger(__name__)

_PACKAGES = (
    "numpy",
    "torch",
    "stable-baselines3",
    "sb3-contrib",
    "gymnasium",
    "pydantic",
    "pyzmq",
    "msgpack",
    "bleak",
    "bumble",
)


def software_versions() -> dict[str, str]:
    """Versions of exposure-ctrl, Python, SQLite and the libraries a session depends on.

    Read from package metadata (nothing is imported); a missing package is recorded as
    ``"not installed"``.
    """
    out = {
        "exposure-ctrl": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(terse=True),
    }
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _iso(dt: _dt.datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError(f"wall-clock times must be timezone-aware (UTC); found {dt!r}")
    return dt.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds")


def _dt_or_none(text: str | None) -> _dt.datetime | None:
    return None if text is None else _dt.datetime.fromisoformat(text)


def _estimate(t: float, doc: dict[str, Any]) -> ModelEstimate:
    if "parameters" not in doc:  # a bare {parameter: {...}} mapping
        return ModelEstimate(t=t, estimates=doc)
    return ModelEstimate(
        t=t, estimates=doc["parameters"], unit=doc.get("unit", "bpm"), detail=doc.get("detail", {})
    )


class Store:
    """An open session store. Use :meth:`open`; close with ``close()`` or ``with``."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> "Store":
        """Open (and with ``create``, create) the store at ``path`` (default: the per-user
        store, see :func:`~exposure_ctrl.store.files.default_store_path`)."""
        p = Path(path).expanduser() if path is not None else default_store_path()
        if p.is_dir():
            raise ConfigError(f"{p} is a directory; the store is a file, e.g. {p / 'sessions.sqlite'}")
        if not p.exists():
            if not create:
                raise StoreError(
                    f"no session store at {p}: run a session first, or pass --store with the "
                    "path of an existing store"
                )
            ensure_private_dir(p.parent)
            create_private_file(p)
        else:
            tighten_file(p)
        try:
            conn = sqlite3.connect(str(p), isolation_level=None, timeout=5.0)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the session store {p}: {e}") from None
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{p}: cannot switch the store to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, MIGRATIONS, path=str(p))
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(
                f"{p} is not a usable session store ({e}); pass the path of a store or of a new "
                "file"
            ) from None
        except BaseException:
            conn.close()
            raise
        for suffix in ("-wal", "-shm"):
            side = Path(str(p) + suffix)
            if side.exists():
                tighten_file(side)
        return cls(p, conn)

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._conn

    @property
    def schema_version(self) -> int:
        return schema_version(self.conn)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` when the file is sound."""
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    # --- writing -----------------------------------------------------------------------------

    def add_patient(self, code: str) -> str:
        """Register a pseudonymous patient code (idempotent); ``PatientCodeError`` for names."""
        validate_patient_code(code)
        self.conn.execute(
            "INSERT OR IGNORE INTO patients (code, created_at) VALUES (?, ?)",
            (code, _iso(utc_now())),
        )
        return code

    def begin_session(
        self,
        *,
        patient: str,
        scenario: "Scenario",
        mode: Mode | str,
        policy_id: str | None = None,
        policy_sha256: str | None = None,
        seed: int | None = None,
        settings: Mapping[str, Any] | None = None,
        started_at: _dt.datetime | None = None,
        t_origin: float = 0.0,
        software: Mapping[str, str] | None = None,
        commit_interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
        synchronous: str = "FULL",
    ) -> SessionWriter:
        """Record a new session and return its writer.

        ``started_at`` is the UTC wall-clock time of session time 0 and ``t_origin`` the
        session clock's ``now()`` at that moment (``clock.wall()`` and ``clock.now()``).
        ``software`` defaults to :func:`software_versions`.
        """
        m = Mode.parse(mode, "mode").value
        self.add_patient(patient)
        started = started_at if started_at is not None else utc_now()
        snapshot = scenario.model_dump(mode="json", by_alias=True)
        cur = self.conn.execute(
            "INSERT INTO sessions (uid, patient, scenario_id, scenario_version, scenario_sha256, "
            "scenario_source, scenario_json, policy_id, policy_sha256, software_json, "
            "settings_json, seed, mode, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                uuid.uuid4().hex,
                patient,
                scenario.id,
                scenario.version,
                scenario.sha256,
                scenario.source,
                json.dumps(snapshot, ensure_ascii=False),
                policy_id,
                policy_sha256,
                json.dumps(dict(software if software is not None else software_versions())),
                json.dumps(dict(settings or {}), default=str),
                None if seed is None else int(seed),
                m,
                _iso(started),
            ),
        )
        sid = int(cur.lastrowid)  # type: ignore[arg-type]
        log.info("session %d for patient %s started in %s", sid, patient, self.path)
        return SessionWriter(
            self.path,
            sid,
            started_at=started.astimezone(_dt.timezone.utc),
            t_origin=t_origin,
            scenario=scenario,
            commit_interval_s=commit_interval_s,
            synchronous=synchronous,
        )

    # --- queries -----------------------------------------------------------------------------

    def patients(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT code FROM patients ORDER BY code")]

    def list_sessions(self, patient: str | None = None) -> list[SessionSummary]:
        """Sessions, oldest first, optionally of one patient, with their sample and scene
        change counts."""
        sql = (
            "SELECT s.id, s.patient, s.scenario_id, s.started_at, s.ended_at, s.outcome, s.mode, "
            "(SELECT count(*) FROM hr_samples h WHERE h.session_id = s.id), "
            "(SELECT count(*) FROM scene_changes c WHERE c.session_id = s.id) "
            "FROM sessions s"
        )
        params: tuple[Any, ...] = ()
        if patient is not None:
            sql += " WHERE s.patient = ?"
            params = (patient,)
        sql += " ORDER BY s.started_at, s.id"
        return [
            SessionSummary(
                id=r[0],
                patient=r[1],
                scenario=r[2],
                started_at=_dt.datetime.fromisoformat(r[3]),
                ended_at=_dt_or_none(r[4]),
                outcome=r[5],
                mode=r[6],
                n_samples=r[7],
                n_scene_changes=r[8],
            )
            for r in self.conn.execute(sql, params)
        ]

    def resolve_session(self, ref: str | int) -> int:
        """A session id from ``ref``: its number, or ``latest``; ``ConfigError`` if unknown."""
        text = str(ref).strip()
        if text.lower() in ("latest", "last"):
            row = self.conn.execute(
                "SELECT id FROM sessions ORDER BY started_at DESC, id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise ConfigError(f"the store {self.path} holds no sessions yet")
            return int(row[0])
        try:
            sid = int(text)
        except ValueError:
            row = self.conn.execute("SELECT id FROM sessions WHERE uid = ?", (text,)).fetchone()
            if row is None:
                raise ConfigError(
                    f"{ref!r} is not a session: give its number (see `exposure-ctrl sessions "
                    "list`) or `latest`"
                ) from None
            return int(row[0])
        if self.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone() is None:
            raise ConfigError(
                f"no session {sid} in {self.path}; `exposure-ctrl sessions list` shows them"
            )
        return sid

    def session_info(self, session_id: int) -> SessionInfo:
        row = self.conn.execute(
            "SELECT id, uid, patient, scenario_id, scenario_version, scenario_sha256, "
            "scenario_source, scenario_json, policy_id, policy_sha256, software_json, "
            "settings_json, seed, mode, started_at, ended_at, duration_s, outcome, end_reason "
            "FROM sessions WHERE id = ?",
            (int(session_id),),
        ).fetchone()
        if row is None:
            raise ConfigError(f"no session {session_id} in {self.path}")
        return SessionInfo(
            id=row[0],
            uid=row[1],
            patient=row[2],
            scenario_id=row[3],
            scenario_version=row[4],
            scenario_sha256=row[5],
            scenario_source=row[6],
            scenario_snapshot=json.loads(row[7]) if row[7] else None,
            policy_id=row[8],
            policy_sha256=row[9],
            software=json.loads(row[10]),
            settings=json.loads(row[11]),
            seed=row[12],
            mode=row[13],
            started_at=_dt.datetime.fromisoformat(row[14]),
            ended_at=_dt_or_none(row[15]),
            duration_s=row[16],
            outcome=row[17],
            end_reason=row[18],
        )

    def _rows(self, sql: str, session_id: int) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, (int(session_id),)).fetchall()

    def samples(self, session_id: int) -> list[Sample]:
        return [
            Sample(
                t=r[0],
                bpm=r[1],
                rr_ms=tuple(json.loads(r[2])) if r[2] else (),
                contact=None if r[3] is None else bool(r[3]),
                flags=r[4],
                source=r[5],
            )
            for r in self._rows(
                "SELECT t, bpm, rr_ms, contact, flags, source FROM hr_samples "
                "WHERE session_id = ? ORDER BY t, rowid",
                session_id,
            )
        ]

    def load_session(self, session_id: int) -> SessionRecord:
        """Everything recorded about one session."""
        sid = int(session_id)
        info = self.session_info(sid)
        q = self._rows
        return SessionRecord(
            info=info,
            samples=self.samples(sid),
            baselines=[
                Baseline(*r)
                for r in q(
                    "SELECT t, bpm, sd_bpm, quality, n_samples FROM baselines "
                    "WHERE session_id = ? ORDER BY t, rowid",
                    sid,
                )
            ],
            decisions=[
                Decision(
                    seq=r[0],
                    t=r[1],
                    phase=r[2],
                    mode=r[3],
                    observation=json.loads(r[4]),
                    proposed_action=r[5],
                    proposed_label=r[6],
                    proposal_reason=r[7],
                    verdict=r[8],
                    verdict_reason=r[9],
                    executed_action=r[10],
                    executed_label=r[11],
                    response=r[12],
                    responded_by=r[13],
                    response_t=r[14],
                )
                for r in q(
                    "SELECT seq, t, phase, mode, observation_json, proposed_action, "
                    "proposed_label, proposal_reason, verdict, verdict_reason, executed_action, "
                    "executed_label, response, responded_by, response_t FROM decisions "
                    "WHERE session_id = ? ORDER BY seq",
                    sid,
                )
            ],
            scene_changes=[
                SceneChange(
                    seq=r[0],
                    t=r[1],
                    state=json.loads(r[2]),
                    intensity=r[3],
                    hierarchy_index=r[4],
                    trigger=r[5],
                    who=r[6],
                    reason=r[7],
                    sent_t=r[8],
                    acked_t=r[9],
                    rtt_ms=r[10],
                    wire_seq=r[11],
                    resends=r[12],
                )
                for r in q(
                    "SELECT seq, t, state_json, intensity, hierarchy_index, trigger, who, reason, "
                    "sent_t, acked_t, rtt_ms, wire_seq, resends FROM scene_changes "
                    "WHERE session_id = ? ORDER BY seq",
                    sid,
                )
            ],
            headset_events=[
                Event(t=r[0], kind=r[1], detail=json.loads(r[2]))
                for r in q(
                    "SELECT t, kind, detail_json FROM headset_events WHERE session_id = ? "
                    "ORDER BY t, rowid",
                    sid,
                )
            ],
            sensor_events=[
                Event(t=r[0], kind=r[1], detail=json.loads(r[2]))
                for r in q(
                    "SELECT t, kind, detail_json FROM sensor_events WHERE session_id = ? "
                    "ORDER BY t, rowid",
                    sid,
                )
            ],
            gaps=[
                Gap(*r)
                for r in q(
                    "SELECT seq, kind, start_t, end_t, reason FROM gaps WHERE session_id = ? "
                    "ORDER BY start_t, seq",
                    sid,
                )
            ],
            suds=[
                Suds(*r)
                for r in q(
                    "SELECT t, value, source, who FROM suds WHERE session_id = ? ORDER BY t, rowid",
                    sid,
                )
            ],
            notes=[
                Note(*r)
                for r in q(
                    "SELECT t, text, author FROM notes WHERE session_id = ? ORDER BY t, rowid",
                    sid,
                )
            ],
            estimates=[
                _estimate(r[0], json.loads(r[1]))
                for r in q(
                    "SELECT t, estimates_json FROM model_estimates WHERE session_id = ? "
                    "ORDER BY t, rowid",
                    sid,
                )
            ],
            phases=[
                PhaseChange(*r)
                for r in q(
                    "SELECT t, phase, reason FROM phases WHERE session_id = ? ORDER BY t, rowid",
                    sid,
                )
            ],
            commands=[
                Command(t=r[0], who=r[1], command=r[2], args=json.loads(r[3]), result=r[4])
                for r in q(
                    "SELECT t, who, command, args_json, result FROM commands "
                    "WHERE session_id = ? ORDER BY t, rowid",
                    sid,
                )
            ],
        )
