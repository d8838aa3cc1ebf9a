"""The live view's JSON: a pure function of the runner's snapshot and the scenario."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_ctrl.console.state import hr_points, live_state, scene_rows, signal_quality, zone_of
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.session.runner import Snapshot


def _snap(sc: Scenario) -> Snapshot:
    s = Snapshot(mode="advisory")
    s.t, s.phase, s.phase_started_t = 460.0, "exposure", 400.0
    s.baseline_bpm, s.baseline_verdict = 70.0, "resting 70.0 ± 0.5 bpm (good)"
    s.hr_bpm, s.hr_above_bpm, s.rmssd_ms, s.since_clean_s = 95.0, 25.0, 28.25, 0.5
    s.state = sc.step(sc.start, "size", "up")
    s.shown_state = dict(sc.start)
    s.intensity = sc.intensity(s.state)
    s.hierarchy_index = 1
    s.last_policy_action, s.last_policy_reason = "size up (small → medium)", "arousal fell by half"
    s.pending_proposal = "size up (small → medium): arousal fell by half"
    s.last_shield, s.last_intervention = "above the ceiling: step down", "above the ceiling (t=12 s into exposure)"
    s.sensor_status, s.headset_status = "streaming", "LOST"
    s.alarms = ["HEADSET LOST for 3 s"]
    s.suds = 60
    s.messages.extend(f"m{i}" for i in range(30))
    return s


def test_live_state_carries_what_the_therapist_must_see(spider: Scenario) -> None:
    snap = _snap(spider)
    out = live_state(snap, spider, patient="P-0042", session_id=3, t0=100.0,
                     suds_history=[(50.0, 20, "therapist"), (300.0, 60, "headset")])
    json.dumps(out, allow_nan=False)  # plain JSON
    ss = out["session"]
    assert (ss["patient"], ss["id"], ss["phase"], ss["mode"]) == ("P-0042", 3, "exposure", "advisory")
    assert ss["elapsed_s"] == 360.0 and ss["phase_elapsed_s"] == 60.0 and not ss["ended"]
    h = out["heart"]
    assert (h["bpm"], h["above_bpm"], h["baseline_bpm"], h["rmssd_ms"]) == (95.0, 25.0, 70.0, 28.2)
    assert h["zone"] == "above"  # window 8..18, ceiling 25: 25 is above the window, not over the ceiling
    assert h["window_bpm"] == [spider.targets.arousal_window_bpm.low, spider.targets.arousal_window_bpm.high]
    assert h["ceiling_bpm"] == spider.targets.ceiling_bpm and h["quality"] == "good"
    assert out["suds"]["history"] == [[50.0, 20, "therapist"], [300.0, 60, "headset"]] and out["suds"]["last"] == 60
    sc = out["scene"]
    assert sc["step"] == 1 and sc["steps"] == len(spider.hierarchy) and sc["step_name"] == spider.hierarchy[1].name
    size = next(r for r in sc["parameters"] if r["id"] == "size")
    assert (size["commanded"], size["shown"], size["differs"]) == ("small", "tiny", True)
    assert [r["id"] for r in sc["parameters"]] == list(spider.parameter_ids)
    assert out["policy"]["proposal"].startswith("size up") and out["policy"]["reason"] == "arousal fell by half"
    assert out["shield"]["last_intervention"].startswith("above the ceiling")
    assert out["devices"] == {"strap": "streaming", "strap_ok": True, "headset": "LOST", "headset_ok": False}
    assert out["alarms"] == ["HEADSET LOST for 3 s"]
    assert out["messages"] == [f"m{i}" for i in range(18, 30)]


def test_an_empty_snapshot_renders(spider: Scenario) -> None:
    out = live_state(Snapshot(), spider, patient="P-1", session_id=None, t0=None)
    json.dumps(out, allow_nan=False)
    assert out["heart"]["bpm"] is None and out["heart"]["quality"] == "waiting"
    assert out["session"]["elapsed_s"] is None
    assert out["scene"]["step_name"] == "below the first step"
    assert all(r["commanded"] is None and not r["differs"] for r in out["scene"]["parameters"])


def test_non_finite_numbers_become_null(spider: Scenario) -> None:
    snap = Snapshot()
    snap.hr_bpm, snap.rmssd_ms, snap.baseline_bpm = math.nan, math.inf, -math.inf
    out = live_state(snap, spider, patient="P-1", session_id=1, t0=0.0)
    assert (out["heart"]["bpm"], out["heart"]["rmssd_ms"], out["heart"]["baseline_bpm"]) == (None, None, None)
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize(
    ("above", "zone"), [(None, "unknown"), (math.nan, "unknown"), (0.0, "below"), (8.0, "window"),
                        (18.0, "window"), (18.5, "above"), (25.0, "above"), (25.1, "ceiling")]
)
def test_zones(spider: Scenario, above: float | None, zone: str) -> None:
    assert spider.targets.arousal_window_bpm.low == 8 and spider.targets.ceiling_bpm == 25
    assert zone_of(above, spider) == zone


@pytest.mark.parametrize(
    ("since", "status", "level"),
    [(None, "connecting", "waiting"), (0.5, "streaming", "good"), (2.9, "streaming", "degraded"),
     (5.0, "stale", "lost"), (0.1, "disconnected", "lost"), (math.inf, "streaming", "waiting")],
)
def test_signal_quality(since: float | None, status: str, level: str) -> None:
    assert signal_quality(since, status, 5.0)[0] == level


def test_hr_points_are_incremental_relative_and_bounded() -> None:
    history = [(100.0 + i, 60.0 + i) for i in range(1000)]
    first = hr_points(history, after_t=None, now_t=1099.0, origin=100.0, span_s=600.0)
    assert first[0] == [399.0, 459.0] and first[-1] == [999.0, 1059.0] and len(first) == 601
    later = hr_points(history, after_t=1090.0, now_t=1099.0, origin=100.0, span_s=600.0)
    assert later == [[991.0 + i, 1051.0 + i] for i in range(9)]
    assert hr_points(history, after_t=1099.0, now_t=1099.0) == []


@given(st.lists(st.tuples(st.floats(0, 1e4), st.floats(30, 220)), max_size=50), st.floats(0, 1e4))
def test_hr_points_never_repeat_a_point(history: list[tuple[float, float]], cut: float) -> None:
    history.sort()
    now = history[-1][0] if history else 0.0
    a = hr_points(history, after_t=None, now_t=now, span_s=1e6)
    b = hr_points(history, after_t=cut, now_t=now, span_s=1e6)
    assert len(a) == len(history)
    assert all(t > round(cut, 2) - 0.01 for t, _ in b)
    assert len(b) == sum(1 for t, _ in history if t > cut)


def test_scene_rows_label_continuous_values_with_their_unit(spider: Scenario) -> None:
    rows = {r["id"]: r for r in scene_rows(spider, spider.start, {})}
    assert rows["distance_m"]["commanded"] == "3 m" and rows["distance_m"]["shown"] is None
    assert rows["music"]["role"] == "soothing"
    assert rows["jar"]["index"] == 1 and rows["jar"]["n_levels"] == 4
