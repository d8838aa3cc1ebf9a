"""Opening, privacy (owner-only files), writing every kind of record and reading it back."""

from __future__ import annotations

import datetime as _dt
import os
import stat
from pathlib import Path

import pytest

from exposure_ctrl.errors import ConfigError, PatientCodeError
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.store import Store, default_store_path, software_versions
from exposure_ctrl.store.files import HOME_ENV

T0 = _dt.datetime(2026, 5, 4, 10, 30, tzinfo=_dt.timezone.utc)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_store_file_and_directory_are_owner_only(store_path: Path, spider: Scenario) -> None:
    old = os.umask(0o022)  # a permissive umask must not leak into the store's modes
    try:
        with Store.open(store_path) as s:
            with s.begin_session(patient="P-1", scenario=spider, mode="manual") as w:
                w.sample(HeartSample(t=0.0, bpm=70, source="test"))
    finally:
        os.umask(old)
    assert _mode(store_path.parent) == 0o700
    assert _mode(store_path) == 0o600
    for suffix in ("-wal", "-shm"):
        side = Path(str(store_path) + suffix)
        if side.exists():
            assert _mode(side) == 0o600


def test_an_existing_store_readable_by_others_is_tightened(store_path: Path) -> None:
    Store.open(store_path).close()
    os.chmod(store_path, 0o644)
    Store.open(store_path).close()
    assert _mode(store_path) == 0o600


def test_default_location_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "ec-home"))
    assert default_store_path() == tmp_path / "ec-home" / "sessions.sqlite"
    with Store.open() as s:
        assert s.path == tmp_path / "ec-home" / "sessions.sqlite"
    assert _mode(tmp_path / "ec-home") == 0o700
    monkeypatch.delenv(HOME_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "exposure-ctrl" / "sessions.sqlite"


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        Store.open(tmp_path)


def test_names_never_reach_the_store(store: Store, spider: Scenario) -> None:
    with pytest.raises(PatientCodeError):
        store.begin_session(patient="Jane Doe", scenario=spider, mode="autonomous")
    assert store.patients() == []
    assert store.list_sessions() == []


def test_every_record_kind_round_trips(store: Store, spider: Scenario) -> None:
    origin = 5000.0  # the session clock's now() at the start: stored times are relative to it
    w = store.begin_session(
        patient="P-0042",
        scenario=spider,
        mode="advisory",
        policy_id="spider/ppo-v1",
        policy_sha256="ab" * 32,
        seed=7,
        settings={"speed": 10, "sensor": "sim"},
        started_at=T0,
        t_origin=origin,
    )
    with w:
        w.phase(origin, "baseline", "start")
        w.sample(HeartSample(t=origin + 1, bpm=71.5, rr_ms=(840.0, 835.5), contact=True,
                             source="ble:AA"))
        w.sample(HeartSample(t=origin + 2, bpm=250, contact=False, source="ble:AA",
                             flags=Quality.BPM_IMPOSSIBLE | Quality.NO_CONTACT))
        w.baseline(origin + 3, 70.2, 2.1, 0.95, 170)
        d = w.decision(origin + 4, mode="advisory", phase="exposure",
                       observation={"rise": 3.5}, proposed_action=5, proposed_label="size up",
                       proposal_reason="below window", verdict="allow", executed_action=5,
                       executed_label="size up")
        w.decision_response(d, origin + 6, "accepted", "therapist-1")
        d2 = w.decision(origin + 9, mode="advisory", verdict="block", verdict_reason="blind",
                        proposed_action=5, executed_action=0)
        state = spider.hierarchy[1].state
        c = w.scene_change(origin + 6, state, trigger="therapist", who="therapist-1",
                           reason="accepted proposal", sent_t=origin + 6.01, wire_seq=12)
        w.scene_resent(c, origin + 9.0, wire_seq=13)
        w.scene_acked(c, origin + 9.05, rtt_ms=50.0)
        w.scene_acked(c, origin + 9.5)  # a second ack does not overwrite the first
        w.headset_event(origin + 7, "panic", {"button": "trigger"})
        w.sensor_event(origin + 8, "stale", {"after_s": 5})
        g = w.gap_start(origin + 8, "sensor", "no notifications")
        w.gap_end(g, origin + 12)
        w.gap_start(origin + 13, "headset", "lost")  # never ended: stays open
        w.suds(origin + 10, 55, "headset")
        w.note(origin + 11, "calm; 'it is only a picture'", "therapist-1")
        w.model_estimate(origin + 12, {"size": {"mean": 4.0, "sd": 1.5}, "jar": (6.0, 2.0)},
                         detail={"hr_updates": 12})
        w.command(origin + 13, "therapist-1", "hold", {"seconds": 30}, "ok")
        w.end(origin + 20, "therapist_ended", "patient tired")
    assert d2 == d + 1

    (summary,) = store.list_sessions()
    assert (summary.patient, summary.scenario, summary.outcome) == ("P-0042", "spider",
                                                                    "therapist_ended")
    assert (summary.n_samples, summary.n_scene_changes) == (2, 1)
    assert summary.started_at == T0
    assert summary.ended_at == T0 + _dt.timedelta(seconds=20)

    rec = store.load_session(summary.id)
    info = rec.info
    assert (info.policy_id, info.policy_sha256, info.seed, info.mode) == (
        "spider/ppo-v1", "ab" * 32, 7, "advisory")
    assert info.scenario_sha256 == spider.sha256 and info.scenario_version == spider.version
    assert Scenario.model_validate(info.scenario_snapshot).model_dump() == spider.model_dump()
    assert info.settings == {"speed": 10, "sensor": "sim"}
    assert info.software["exposure-ctrl"] and info.software["python"]
    assert info.duration_s == 20 and info.end_reason == "patient tired"

    s1, s2 = rec.samples
    assert (s1.t, s1.bpm, s1.rr_ms, s1.contact, s1.flags, s1.source) == (
        1.0, 71.5, (840.0, 835.5), True, 0, "ble:AA")
    assert s2.flags == int(Quality.BPM_IMPOSSIBLE | Quality.NO_CONTACT) and s2.contact is False
    assert rec.baseline is not None and rec.baseline.bpm == 70.2 and rec.baseline.n_samples == 170
    dec, dec2 = rec.decisions
    assert (dec.t, dec.phase, dec.observation, dec.response, dec.responded_by, dec.response_t) == (
        4.0, "exposure", {"rise": 3.5}, "accepted", "therapist-1", 6.0)
    assert not dec.shield_intervened and dec2.shield_intervened
    assert dec2.verdict_reason == "blind" and dec2.response is None
    (sc,) = rec.scene_changes
    assert sc.state == dict(state)
    assert sc.intensity == pytest.approx(spider.intensity(state))
    assert sc.hierarchy_index == 1
    assert (sc.trigger, sc.who, sc.sent_t, sc.acked_t, sc.rtt_ms, sc.wire_seq, sc.resends) == (
        "therapist", "therapist-1", pytest.approx(6.01), pytest.approx(9.05), 50.0, 13, 1)
    assert rec.headset_events[0].kind == "panic" and rec.headset_events[0].detail == {
        "button": "trigger"}
    assert rec.sensor_events[0].kind == "stale"
    closed, open_ = rec.gaps
    assert (closed.kind, closed.start_t, closed.end_t) == ("sensor", 8.0, 12.0)
    assert (open_.kind, open_.end_t) == ("headset", None)
    assert (rec.suds[0].value, rec.suds[0].source) == (55, "headset")
    assert rec.notes[0].text == "calm; 'it is only a picture'"
    assert rec.estimates[0].detail == {"hr_updates": 12}
    assert rec.estimates[0].unit == "bpm, least to most feared level"
    assert rec.estimates[0].estimates == {"size": {"mean": 4.0, "sd": 1.5},
                                          "jar": {"mean": 6.0, "sd": 2.0}}
    assert rec.commands[0].args == {"seconds": 30}
    assert [p.phase for p in rec.phases] == ["baseline"]


def test_rtt_defaults_to_the_time_since_the_first_send(store: Store, spider: Scenario) -> None:
    with store.begin_session(patient="P-1", scenario=spider, mode="autonomous") as w:
        c = w.scene_change(10.0, spider.start, trigger="policy")
        w.scene_sent(c, 10.0, wire_seq=3)
        w.scene_acked(c, 10.25)
    (sc,) = store.load_session(w.session_id).scene_changes
    assert sc.sent_t == 10.0 and sc.rtt_ms == pytest.approx(250.0) and sc.resends == 0


def test_text_is_stored_as_text_not_sql(store: Store, spider: Scenario) -> None:
    evil = "x'); DROP TABLE hr_samples; --"
    with store.begin_session(patient="P-1", scenario=spider, mode="manual") as w:
        w.note(1.0, evil, "therapist")
        w.sample(HeartSample(t=1.0, bpm=70, source=evil))
    rec = store.load_session(w.session_id)
    assert rec.notes[0].text == evil and rec.samples[0].source == evil


def test_sessions_are_listed_per_patient_and_resolved(store: Store, spider: Scenario) -> None:
    ids = []
    for i, patient in enumerate(["P-1", "P-2", "P-1"]):
        with store.begin_session(patient=patient, scenario=spider, mode="manual",
                                 started_at=T0 + _dt.timedelta(days=i)) as w:
            for k in range(i + 1):
                w.sample(HeartSample(t=float(k), bpm=70, source="t"))
        ids.append(w.session_id)
    assert [s.id for s in store.list_sessions(patient="P-1")] == [ids[0], ids[2]]
    assert [s.n_samples for s in store.list_sessions()] == [1, 2, 3]
    assert store.list_sessions(patient="P-9") == []
    assert store.resolve_session("latest") == ids[2]
    assert store.resolve_session(str(ids[1])) == ids[1]
    assert store.resolve_session(store.session_info(ids[0]).uid) == ids[0]
    with pytest.raises(ConfigError, match="no session 99"):
        store.resolve_session("99")
    with pytest.raises(ConfigError, match="is not a session"):
        store.resolve_session("yesterday")
    assert store.patients() == ["P-1", "P-2"]


def test_software_versions_name_the_stack() -> None:
    v = software_versions()
    for key in ("exposure-ctrl", "python", "numpy", "torch", "stable-baselines3", "gymnasium",
                "sqlite"):
        assert v[key]


def test_wall_clock_times_must_be_timezone_aware(store: Store, spider: Scenario) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.begin_session(patient="P-1", scenario=spider, mode="manual",
                            started_at=_dt.datetime(2026, 1, 1))
