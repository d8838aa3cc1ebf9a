"""The writer: cheap appends, background commits, flush, async use, failures kept for retry."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from exposure_ctrl.errors import ConfigError, StoreError
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.store import SessionWriter, Store


def _count(path: Path, table: str = "hr_samples") -> int:
    c = sqlite3.connect(str(path))
    try:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed name
    finally:
        c.close()


def test_flush_makes_appends_visible_to_other_connections(
    store: Store, store_path: Path, spider: Scenario
) -> None:
    with store.begin_session(patient="P-1", scenario=spider, mode="autonomous") as w:
        for i in range(500):
            w.sample(HeartSample(t=i * 0.1, bpm=70, source="t"))
        w.flush()
        assert w.pending == 0
        assert _count(store_path) == 500
        assert w.n_rows >= 500


def test_the_background_thread_commits_without_being_asked(
    store: Store, store_path: Path, spider: Scenario
) -> None:
    """Nobody calls flush: the rows still reach the file while the writer stays open."""
    w = store.begin_session(patient="P-1", scenario=spider, mode="autonomous",
                            commit_interval_s=0.05)
    try:
        w.sample(HeartSample(t=0.0, bpm=70, source="t"))
        for _ in range(400):  # up to 20 s on a very busy machine; usually one interval
            if _count(store_path) == 1:
                break
            time.sleep(0.05)
        assert _count(store_path) == 1
        assert w.n_commits >= 1
    finally:
        w.close()


def test_close_is_idempotent_and_appends_after_close_fail(store: Store, spider: Scenario) -> None:
    w = store.begin_session(patient="P-1", scenario=spider, mode="autonomous")
    w.close()
    w.close()
    assert w.closed
    with pytest.raises(StoreError, match="closed"):
        w.sample(HeartSample(t=0.0, bpm=70))


@pytest.mark.parametrize("interval", [0.0, -1.0, 1.5, 60.0])
def test_commit_interval_must_keep_the_one_second_promise(
    store: Store, spider: Scenario, interval: float
) -> None:
    with pytest.raises(ConfigError, match="commit_interval_s"):
        store.begin_session(patient="P-1", scenario=spider, mode="autonomous",
                            commit_interval_s=interval)


def test_bad_arguments_are_refused_at_the_call(store: Store, spider: Scenario) -> None:
    with store.begin_session(patient="P-1", scenario=spider, mode="autonomous") as w:
        with pytest.raises(ValueError, match="SUDS runs from 0 to 100"):
            w.suds(1.0, 101, "therapist")
        with pytest.raises(ValueError, match="whole number"):
            w.suds(1.0, 50.5, "therapist")
        with pytest.raises(ValueError, match="source must be one of therapist, headset"):
            w.suds(1.0, 50, "patient")
        with pytest.raises(ValueError, match="trigger must be one of"):
            w.scene_change(1.0, spider.start, trigger="gremlin")
        with pytest.raises(ValueError, match="does not fit scenario 'spider'"):
            w.scene_change(1.0, {"size": "gigantic"}, trigger="policy")
        with pytest.raises(ValueError, match="outcome must be one of"):
            w.end(1.0, "crashed")
        with pytest.raises(ValueError, match="finite"):
            w.note(float("nan"), "x", "therapist")
        with pytest.raises(ValueError, match="gap 3 is not open"):
            w.gap_end(3, 1.0)
        with pytest.raises(ValueError, match="mode must be one of"):
            w.decision(1.0, mode="chaos", verdict="allow")
    with pytest.raises(ValueError, match="mode must be one of"):
        store.begin_session(patient="P-1", scenario=spider, mode="yolo")


def test_async_use_from_an_event_loop(store: Store, store_path: Path, spider: Scenario) -> None:
    async def session() -> int:
        w = store.begin_session(patient="P-1", scenario=spider, mode="autonomous")
        async with w:
            for i in range(100):
                w.sample(HeartSample(t=float(i), bpm=70 + i % 5, source="sim"))
                if i % 10 == 0:
                    await asyncio.sleep(0)
            await w.aflush()
            seen = _count(store_path)
            w.end(100.0, "completed")
        return seen

    assert asyncio.run(session()) == 100
    assert store.list_sessions()[0].outcome == "completed"


class _ImpatientWriter(SessionWriter):
    """Gives up on a locked database at once instead of after five seconds."""

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        conn.execute("PRAGMA busy_timeout = 10")
        return conn


def test_rows_survive_a_failed_commit_and_are_written_later(
    store: Store, store_path: Path, spider: Scenario
) -> None:
    w0 = store.begin_session(patient="P-1", scenario=spider, mode="autonomous")
    w0.close()
    w = _ImpatientWriter(store_path, w0.session_id, started_at=w0.started_at,
                         commit_interval_s=0.05)
    blocker = sqlite3.connect(str(store_path), isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file
        for i in range(50):
            w.sample(HeartSample(t=float(i), bpm=70, source="t"))
        with pytest.raises(StoreError, match="still unwritten|could not commit"):
            w.flush(timeout=5.0)
        assert isinstance(w.error, sqlite3.OperationalError)
        assert w.pending == 50
        blocker.execute("ROLLBACK")
        w.flush()
        assert w.error is None and w.pending == 0
    finally:
        blocker.close()
        w.close()
    assert _count(store_path) == 50
    assert [s.t for s in store.samples(w.session_id)] == [float(i) for i in range(50)]


def test_close_reports_rows_that_could_not_be_written(
    store: Store, store_path: Path, spider: Scenario
) -> None:
    w0 = store.begin_session(patient="P-1", scenario=spider, mode="autonomous")
    w0.close()
    w = _ImpatientWriter(store_path, w0.session_id, started_at=w0.started_at)
    blocker = sqlite3.connect(str(store_path), isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        w.sample(HeartSample(t=0.0, bpm=70))
        with pytest.raises(StoreError, match="1 record"):
            w.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
