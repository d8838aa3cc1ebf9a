"""The session writer: cheap appends from the session loop, committed at least once a second.

Every ``append``-style method only validates its arguments and puts one row on an in-memory
list (a lock, a list append: about a microsecond). A background thread with its own SQLite
connection commits whatever is pending every ``commit_interval_s`` (default 0.25 s) in one
transaction, so the session's event loop never waits for the disk, and a crash of the controller
(even ``kill -9``) loses at most the last ``commit_interval_s`` plus one commit (DESIGN.md
invariant 3). ``flush()`` / ``await aflush()`` wait until everything appended so far is committed.

Times given to the writer are on the session's clock (``clock.now()``, like ``HeartSample.t``);
the writer stores them as session seconds, relative to ``t_origin`` given when the session began.

Failures: an I/O failure (disk full, file removed) keeps the rows pending and is retried at the
next interval; ``error`` holds the last failure and ``close()`` raises it if rows are still
unwritten. A row the database refuses (a bug: it violates a constraint) is dropped and logged,
never allowed to block the rows after it.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import datetime as _dt
import itertools
import json
import logging
import math
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exposure_ctrl.errors import ConfigError, StoreError
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.store.records import (
    GapKind,
    Mode,
    Outcome,
    Phase,
    Response,
    SudsSource,
    Trigger,
)

if TYPE_CHECKING:
    from exposure_ctrl.scenario import Scenario

__all__ = ["SessionWriter", "DEFAULT_COMMIT_INTERVAL_S"]

log = logging.getLogger(__name__)

DEFAULT_COMMIT_INTERVAL_S = 0.25
DEFAULT_SENSITIVITY_UNIT = "bpm, least to most feared level"
_MAX_COMMIT_INTERVAL_S = 1.0

_SQL: dict[str, str] = {
    "sample": "INSERT INTO hr_samples (session_id, t, bpm, rr_ms, contact, flags, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "baseline": "INSERT INTO baselines (session_id, t, bpm, sd_bpm, quality, n_samples) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "decision": "INSERT INTO decisions (session_id, seq, t, phase, mode, observation_json, "
    "proposed_action, proposed_label, proposal_reason, verdict, verdict_reason, executed_action, "
    "executed_label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "decision_response": "UPDATE decisions SET response = ?, responded_by = ?, response_t = ? "
    "WHERE session_id = ? AND seq = ?",
    "scene": "INSERT INTO scene_changes (session_id, seq, t, state_json, intensity, "
    "hierarchy_index, trigger, who, reason, sent_t, wire_seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "scene_sent": "UPDATE scene_changes SET sent_t = coalesce(sent_t, ?), wire_seq = ?, "
    "resends = resends + ? WHERE session_id = ? AND seq = ?",
    "scene_acked": "UPDATE scene_changes SET acked_t = ?1, "
    "rtt_ms = coalesce(?2, (?1 - sent_t) * 1000.0) "
    "WHERE session_id = ?3 AND seq = ?4 AND acked_t IS NULL",
    "headset_event": "INSERT INTO headset_events (session_id, t, kind, detail_json) "
    "VALUES (?, ?, ?, ?)",
    "sensor_event": "INSERT INTO sensor_events (session_id, t, kind, detail_json) "
    "VALUES (?, ?, ?, ?)",
    "gap_start": "INSERT INTO gaps (session_id, seq, kind, start_t, reason) VALUES (?, ?, ?, ?, ?)",
    "gap_end": "UPDATE gaps SET end_t = ? WHERE session_id = ? AND seq = ? AND end_t IS NULL",
    "suds": "INSERT INTO suds (session_id, t, value, source, who) VALUES (?, ?, ?, ?, ?)",
    "note": "INSERT INTO notes (session_id, t, text, author) VALUES (?, ?, ?, ?)",
    "estimate": "INSERT INTO model_estimates (session_id, t, estimates_json) VALUES (?, ?, ?)",
    "phase": "INSERT INTO phases (session_id, t, phase, reason) VALUES (?, ?, ?, ?)",
    "command": "INSERT INTO commands (session_id, t, who, command, args_json, result) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "end": "UPDATE sessions SET ended_at = ?, duration_s = ?, outcome = ?, end_reason = ? "
    "WHERE id = ?",
}

_FLUSH = "__flush__"

_live: "weakref.WeakSet[SessionWriter]" = weakref.WeakSet()


@atexit.register
def _close_live_writers() -> None:  # pragma: no cover - exercised at interpreter exit
    for w in list(_live):
        try:
            w.close()
        except Exception:
            log.exception("could not flush the session store at exit")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)


def _finite(name: str, value: float) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, found {value!r}")
    return x


def _sample_row(sid: int, origin: float, s: HeartSample) -> tuple[Any, ...]:
    rr = _json([round(float(x), 3) for x in s.rr_ms]) if s.rr_ms else None
    contact = None if s.contact is None else int(bool(s.contact))
    bpm = float(s.bpm)
    if not math.isfinite(bpm):
        bpm = -1.0  # kept (the sample happened) but marked impossible by its flags
    return (sid, s.t - origin, bpm, rr, contact, int(s.flags), s.source)


class SessionWriter:
    """Appends the records of one running session; see the module docstring.

    Made by :meth:`exposure_ctrl.store.Store.begin_session`. Use it as a context manager
    (``with`` or ``async with``) or call ``close()`` (safe to call twice).
    """

    def __init__(
        self,
        path: Path,
        session_id: int,
        *,
        started_at: _dt.datetime,
        t_origin: float = 0.0,
        scenario: "Scenario | None" = None,
        commit_interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
        synchronous: str = "FULL",
    ) -> None:
        if not (0 < commit_interval_s <= _MAX_COMMIT_INTERVAL_S):
            raise ConfigError(
                f"commit_interval_s must be in (0, {_MAX_COMMIT_INTERVAL_S:g}] s so that "
                f"nothing older than a second is ever uncommitted; found {commit_interval_s!r}"
            )
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigError(f"synchronous must be NORMAL, FULL or EXTRA; found {synchronous!r}")
        self.path = Path(path)
        self.session_id = int(session_id)
        self.started_at = started_at
        self.t_origin = float(t_origin)
        self.scenario = scenario
        self.commit_interval_s = float(commit_interval_s)
        self._synchronous = synchronous.upper()
        self._ops: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._closed = False
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._decision_seq = itertools.count(1)
        self._scene_seq = itertools.count(1)
        self._gap_seq = itertools.count(1)
        self._open_gaps: dict[int, float] = {}
        self.n_commits = 0
        self.n_rows = 0
        self.n_dropped = 0
        self.commit_durations_s: collections.deque[float] = collections.deque(maxlen=4096)
        """Wall time of the most recent commits (for benchmarks and health displays)."""
        self._thread = threading.Thread(
            target=self._run, name=f"store-writer-{self.session_id}", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._closed = True
            raise StoreError(f"cannot open {self.path} for writing: {self._error}")
        _live.add(self)

    # --- state -------------------------------------------------------------------------------

    @property
    def error(self) -> BaseException | None:
        """The last commit failure, or None (cleared by the next successful commit)."""
        return self._error

    @property
    def pending(self) -> int:
        """Rows appended but not yet committed."""
        with self._lock:
            return sum(1 for k, _ in self._ops if k != _FLUSH)

    @property
    def closed(self) -> bool:
        return self._closed

    def t(self, clock_t: float) -> float:
        """Session seconds of a time on the session's clock."""
        return _finite("t", clock_t) - self.t_origin

    # --- appends -----------------------------------------------------------------------------

    def _put(self, key: str, params: Any) -> None:
        if self._closed:
            raise StoreError(f"the writer of session {self.session_id} is closed")
        with self._lock:
            self._ops.append((key, params))

    def sample(self, s: HeartSample) -> None:
        """A heart-rate sample (its ``t`` is on the session clock). The hot path."""
        self._put("sample", s)

    def baseline(
        self,
        t: float,
        bpm: float,
        sd_bpm: float,
        quality: float,
        n_samples: int | None = None,
    ) -> None:
        """The resting baseline measured in the baseline phase; ``quality`` is 0..1."""
        q = _finite("quality", quality)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"baseline quality is a fraction 0..1, found {quality!r}")
        self._put(
            "baseline",
            (
                self.session_id,
                self.t(t),
                _finite("bpm", bpm),
                _finite("sd_bpm", sd_bpm),
                q,
                None if n_samples is None else int(n_samples),
            ),
        )

    def decision(
        self,
        t: float,
        *,
        mode: Mode | str,
        verdict: str,
        phase: Phase | str | None = None,
        observation: Mapping[str, Any] | None = None,
        proposed_action: int | None = None,
        proposed_label: str | None = None,
        proposal_reason: str | None = None,
        verdict_reason: str | None = None,
        executed_action: int | None = None,
        executed_label: str | None = None,
    ) -> int:
        """One decision: the policy's proposal and reason, the shield's verdict and reason
        code, what was executed. ``verdict`` is ``"allow"`` when the shield let the proposal
        through; anything else (``"replace"``, ``"block"``, ``"safe"``...) is an intervention.
        Returns the decision's number, for :meth:`decision_response`."""
        if not verdict:
            raise ValueError("verdict must name the shield's decision, e.g. 'allow'")
        seq = next(self._decision_seq)
        self._put(
            "decision",
            (
                self.session_id,
                seq,
                self.t(t),
                None if phase is None else Phase.parse(phase, "phase").value,
                Mode.parse(mode, "mode").value,
                _json(dict(observation or {})),
                None if proposed_action is None else int(proposed_action),
                proposed_label,
                proposal_reason,
                str(verdict),
                verdict_reason,
                None if executed_action is None else int(executed_action),
                executed_label,
            ),
        )
        return seq

    def decision_response(
        self, decision: int, t: float, response: Response | str, who: str
    ) -> None:
        """Advisory mode: the therapist accepted or rejected the proposal of ``decision``."""
        r = Response.parse(response, "response").value
        self._put("decision_response", (r, who, self.t(t), self.session_id, int(decision)))

    def scene_change(
        self,
        t: float,
        state: Mapping[str, Any],
        *,
        trigger: Trigger | str,
        who: str | None = None,
        reason: str | None = None,
        intensity: float | None = None,
        hierarchy_index: int | None = None,
        sent_t: float | None = None,
        wire_seq: int | None = None,
    ) -> int:
        """A new scene was decided (and, if ``sent_t`` is given, sent). Returns its number.

        ``intensity`` and ``hierarchy_index`` are computed from the session's scenario when not
        given. Record the send with :meth:`scene_sent` (also for re-sends) and the headset's
        ack with :meth:`scene_acked`."""
        trig = Trigger.parse(trigger, "trigger").value
        state = dict(state)
        if self.scenario is not None and (intensity is None or hierarchy_index is None):
            try:
                x = self.scenario.intensity(state)
            except ValueError as e:
                raise ValueError(f"scene state does not fit scenario {self.scenario.id!r}: {e}")
            intensity = x if intensity is None else intensity
            if hierarchy_index is None:
                hierarchy_index = int(self.scenario.hierarchy_index_of_intensity(x))
        seq = next(self._scene_seq)
        self._put(
            "scene",
            (
                self.session_id,
                seq,
                self.t(t),
                _json(state),
                None if intensity is None else _finite("intensity", intensity),
                None if hierarchy_index is None else int(hierarchy_index),
                trig,
                who,
                reason,
                None if sent_t is None else self.t(sent_t),
                wire_seq,
            ),
        )
        return seq

    def scene_sent(self, scene: int, t: float, wire_seq: int | None = None) -> None:
        """Scene ``scene`` went on the wire at ``t``; a second call counts a re-send."""
        # the first call sets sent_t; later calls only bump resends (coalesce keeps sent_t)
        self._put("scene_sent", (self.t(t), wire_seq, 0, self.session_id, int(scene)))

    def scene_resent(self, scene: int, t: float, wire_seq: int | None = None) -> None:
        """Scene ``scene`` was sent again (no ack within the protocol's timeout)."""
        self._put("scene_sent", (self.t(t), wire_seq, 1, self.session_id, int(scene)))

    def scene_acked(self, scene: int, acked_t: float, *, rtt_ms: float | None = None) -> None:
        """The headset acked scene ``scene`` at ``acked_t``. ``rtt_ms`` defaults to the time
        since the scene was first sent; pass it to measure from a re-send. Only the first ack
        counts."""
        self._put(
            "scene_acked",
            (
                self.t(acked_t),
                None if rtt_ms is None else _finite("rtt_ms", rtt_ms),
                self.session_id,
                int(scene),
            ),
        )

    def headset_event(self, t: float, kind: str, detail: Mapping[str, Any] | None = None) -> None:
        """connected, lost, replaced, panic, removed, worn, gaze, bye... with any detail."""
        if not kind:
            raise ValueError("a headset event needs a kind")
        self._put("headset_event", (self.session_id, self.t(t), str(kind), _json(dict(detail or {}))))

    def sensor_event(self, t: float, kind: str, detail: Mapping[str, Any] | None = None) -> None:
        """connected, disconnected, stale, reconnected, battery... with any detail."""
        if not kind:
            raise ValueError("a sensor event needs a kind")
        self._put("sensor_event", (self.session_id, self.t(t), str(kind), _json(dict(detail or {}))))

    def gap_start(self, t: float, kind: GapKind | str, reason: str | None = None) -> int:
        """A gap in the heart rate (``sensor``) or the headset link (``headset``) begins.
        Returns its number for :meth:`gap_end`; a gap never ended stays open in the record."""
        k = GapKind.parse(kind, "gap kind").value
        seq = next(self._gap_seq)
        st = self.t(t)
        self._open_gaps[seq] = st
        self._put("gap_start", (self.session_id, seq, k, st, reason))
        return seq

    def gap_end(self, gap: int, t: float) -> None:
        """Gap ``gap`` is over."""
        start = self._open_gaps.pop(int(gap), None)
        if start is None:
            raise ValueError(f"gap {gap} is not open in session {self.session_id}")
        self._put("gap_end", (max(self.t(t), start), self.session_id, int(gap)))

    @property
    def open_gaps(self) -> tuple[int, ...]:
        return tuple(self._open_gaps)

    def suds(self, t: float, value: int, source: SudsSource | str, who: str | None = None) -> None:
        """A SUDS rating, 0..100, from the therapist or the headset."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ValueError(f"SUDS is a whole number 0..100, found {value!r}")
        if not 0 <= value <= 100:
            raise ValueError(f"SUDS runs from 0 to 100, found {value!r}")
        src = SudsSource.parse(source, "SUDS source").value
        self._put("suds", (self.session_id, self.t(t), int(value), src, who))

    def note(self, t: float, text: str, author: str) -> None:
        """A free-text note (by the therapist, or the system)."""
        if not author:
            raise ValueError("a note needs an author")
        self._put("note", (self.session_id, self.t(t), str(text), str(author)))

    def model_estimate(
        self,
        t: float,
        sensitivities: Mapping[str, Any],
        *,
        unit: str = DEFAULT_SENSITIVITY_UNIT,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """The response model's estimate of how much each parameter moves this patient's
        heart rate: ``{parameter: {"mean": m, "sd": s}}`` or ``{parameter: (m, s)}``, in
        ``unit`` (default: bpm added by the parameter's whole range, least to most feared
        level, as ``arousal.ResponseModel.sensitivity_arrays`` gives it). ``detail`` keeps
        anything else worth keeping (e.g. ``ResponseModel.record()``); a ``"sensitivities"``
        list of readable lines in it is shown in the report."""
        out: dict[str, dict[str, float]] = {}
        for pid, v in sensitivities.items():
            if isinstance(v, Mapping):
                mean, sd = v["mean"], v.get("sd", float("nan"))
            else:
                mean, sd = v
            sd_f = float(sd)
            out[str(pid)] = {
                "mean": _finite(f"{pid} mean", mean),
                "sd": sd_f if math.isfinite(sd_f) else None,  # type: ignore[dict-item]
            }
        doc = {"unit": str(unit), "parameters": out, "detail": dict(detail or {})}
        self._put("estimate", (self.session_id, self.t(t), _json(doc)))

    def phase(self, t: float, phase: Phase | str, reason: str | None = None) -> None:
        """The session entered ``phase``."""
        p = Phase.parse(phase, "phase").value
        self._put("phase", (self.session_id, self.t(t), p, reason))

    def command(
        self,
        t: float,
        who: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        result: str | None = None,
    ) -> None:
        """A therapist command (pause, hold, step_down, safe, end, ...) and what came of it."""
        if not who or not command:
            raise ValueError("a command needs who and what")
        self._put(
            "command",
            (self.session_id, self.t(t), str(who), str(command), _json(dict(args or {})), result),
        )

    def end(self, t: float, outcome: Outcome | str, reason: str | None = None) -> None:
        """The session ended at ``t`` with ``outcome`` (completed, therapist_ended,
        aborted_by_patient, safety) and a free-text ``reason``."""
        o = Outcome.parse(outcome, "outcome").value
        st = self.t(t)
        ended_at = self.started_at + _dt.timedelta(seconds=st)
        self._put(
            "end", (ended_at.isoformat(timespec="microseconds"), st, o, reason, self.session_id)
        )

    # --- committing --------------------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> None:
        """Wait until everything appended so far is committed; ``StoreError`` if it cannot be."""
        if self._closed:
            return
        done = threading.Event()
        with self._lock:
            self._ops.append((_FLUSH, done))
        self._wake.set()
        if not done.wait(timeout):
            raise StoreError(
                f"{self.path}: could not commit within {timeout} s"
                + (f" (last error: {self._error})" if self._error else "")
            )
        if self._error is not None and self.pending:
            raise StoreError(f"{self.path}: rows are still unwritten: {self._error}")

    async def aflush(self) -> None:
        """:meth:`flush` without blocking the event loop."""
        await asyncio.to_thread(self.flush)

    def close(self) -> None:
        """Commit what is pending and stop the background thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        self._stop = True
        self._wake.set()
        self._thread.join()
        with self._lock:
            left = sum(1 for k, _ in self._ops if k != _FLUSH)
        if left:
            raise StoreError(
                f"{self.path}: {left} record(s) of session {self.session_id} could not be "
                f"written: {self._error}"
            )

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "SessionWriter":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"SessionWriter(session={self.session_id}, {self.path}, {state})"

    # --- the background thread ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=5.0)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as e:  # reported by __init__
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                self._wake.wait(self.commit_interval_s)
                self._wake.clear()
                stopping = self._stop
                self._commit_pending(conn)
                if stopping:
                    break
        finally:
            conn.close()

    def _commit_pending(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            ops, self._ops = self._ops, []
        if not ops:
            return
        waiters = [p for k, p in ops if k == _FLUSH]
        rows = [(k, p) for k, p in ops if k != _FLUSH]
        try:
            if rows:
                t0 = time.perf_counter()
                self._write(conn, rows)
                self.commit_durations_s.append(time.perf_counter() - t0)
                self.n_commits += 1
                self.n_rows += len(rows)
            self._error = None
        except Exception as e:
            # I/O, full disk, locked: keep the rows (in front of newer ones) and retry later
            self._error = e
            log.error("session store %s: commit failed, will retry: %s", self.path, e)
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            with self._lock:
                self._ops[:0] = rows
        finally:
            for w in waiters:
                w.set()

    def _write(self, conn: sqlite3.Connection, rows: list[tuple[str, Any]]) -> None:
        sid, origin = self.session_id, self.t_origin
        try:
            conn.execute("BEGIN")
            for key, group in itertools.groupby(rows, key=lambda r: r[0]):
                if key == "sample":
                    params = [_sample_row(sid, origin, s) for _, s in group]
                else:
                    params = [p for _, p in group]
                conn.executemany(_SQL[key], params)
            conn.execute("COMMIT")
        except sqlite3.OperationalError:
            raise
        except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError, TypeError):
            # a bad row: write the batch one row at a time and drop only what is refused
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("BEGIN")
            for key, p in rows:
                try:
                    params = _sample_row(sid, origin, p) if key == "sample" else p
                    conn.execute(_SQL[key], params)
                except (
                    sqlite3.IntegrityError,
                    sqlite3.InterfaceError,
                    sqlite3.ProgrammingError,
                    TypeError,
                ) as e:
                    self.n_dropped += 1
                    log.error("session store: dropped a %s row the database refused: %s", key, e)
            conn.execute("COMMIT")
