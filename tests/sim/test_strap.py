"""The 'sim' heart-rate source (exposure_ctrl/sim/strap.py) for the live loop."""

from __future__ import annotations

import asyncio

import pytest

from exposure_ctrl.clock import ManualClock, ScaledClock
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sensors.source import DeviceInfo, Gap, HeartRateSource, SourceState, SourceStatus, open_source
from exposure_ctrl.sim.cohorts import COHORTS, Const

SC = resolve_scenario("spider")


async def _collect(source, n_samples, on_sample=None):
    events = []
    n = 0
    async with source:
        async for ev in source:
            events.append(ev)
            if isinstance(ev, HeartSample):
                n += 1
                if on_sample is not None:
                    on_sample(n, source)
                if n >= n_samples:
                    break
    return events


def test_streams_heart_samples_on_the_injected_clock():
    clock = ManualClock(start=100.0)
    src = open_source("sim", clock=clock, scenario=SC, seed=3, sensor="ideal")
    assert isinstance(src, HeartRateSource)
    events = asyncio.run(_collect(src, 60))
    samples = [e for e in events if isinstance(e, HeartSample)]
    assert [type(e) for e in events[:2]] == [SourceStatus, DeviceInfo]
    assert all(s.source == "sim" and s.contact is True and s.rr_ms for s in samples[1:])
    assert [s.t for s in samples] == [101.0 + i for i in range(60)]
    assert 160.0 <= clock.now() <= 162.0  # the strap may be a sample ahead of the reader
    assert 40 < samples[-1].bpm < 110
    asyncio.run(src.aclose())  # closing twice is fine


def test_the_patient_perceives_the_acknowledged_scene():
    top = SC.hierarchy[-1].state

    def show_top(n, source):
        if n == 120:
            source.perceive(top)

    src = open_source("sim", clock=ManualClock(), scenario=SC, seed=1, sensor="ideal", cohort="trivial")
    events = asyncio.run(_collect(src, 180, show_top))
    bpm = [e.bpm for e in events if isinstance(e, HeartSample)]
    assert sum(bpm[150:180]) / 30 > sum(bpm[90:120]) / 30 + 10
    assert src.truth()["arousal_bpm"] > 15
    with pytest.raises(ConfigError, match="cannot see this scene"):
        src.perceive({"jar": "open"})


def test_link_losses_become_gaps_and_the_next_sample_is_flagged():
    src = open_source("sim", clock=ManualClock(), scenario=SC, seed=2, sensor="strap-flaky")
    events = asyncio.run(_collect(src, 400))
    gaps = [e for e in events if isinstance(e, Gap)]
    assert gaps and all(g.reason in ("disconnected", "stale") for g in gaps)  # long dropouts: stale
    assert any(g.reason == "disconnected" for g in gaps)
    disc = [e for e in events if isinstance(e, SourceStatus) and e.state is SourceState.DISCONNECTED]
    assert len(disc) == sum(g.reason == "disconnected" for g in gaps)
    for i, e in enumerate(events):
        if isinstance(e, Gap):
            nxt = next(x for x in events[i:] if isinstance(x, HeartSample))
            assert nxt.flags & Quality.AFTER_GAP


def test_abort_calls_back_once():
    fragile = COHORTS["spider-severe"].with_("fragile", "aborts early", tolerance=Const(0.05), abort_after_s=Const(10.0))
    calls = []

    def show_top(n, source):
        if n == 5:
            source.perceive(SC.hierarchy[-1].state)

    src = open_source("sim", clock=ManualClock(), scenario=SC, seed=0, cohort=fragile, on_abort=lambda: calls.append(1))
    asyncio.run(_collect(src, 90, show_top))
    assert calls == [1] and src.aborted


def test_scaled_clock_runs_faster_than_real_time():
    src = open_source("sim", clock=ScaledClock(200.0), scenario=SC, seed=0)
    events = asyncio.run(asyncio.wait_for(_collect(src, 20), timeout=30))
    assert sum(isinstance(e, HeartSample) for e in events) == 20


def test_the_factory_needs_a_scenario():
    with pytest.raises(ConfigError, match="needs a scenario"):
        open_source("sim", clock=ManualClock())
    assert open_source("sim:heights", clock=ManualClock()).scenario.id == "heights"
