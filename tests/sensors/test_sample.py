"""HeartSample: the one sample type every source produces."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_ctrl.sensors.sample import HeartSample, Quality


def test_constructor_defaults_and_clean():
    s = HeartSample(12.5, 72.0)
    assert (s.rr_ms, s.contact, s.source, s.flags) == ((), None, "", Quality(0))
    assert s.clean
    assert not s.with_flags(Quality.NO_CONTACT).clean


def test_rr_intervals_become_a_tuple_of_floats():
    s = HeartSample(1.0, 60.0, [1000, 990.5])  # type: ignore[arg-type]
    assert s.rr_ms == (1000.0, 990.5)
    assert all(isinstance(x, float) for x in s.rr_ms)


def test_time_must_be_finite():
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite"):
            HeartSample(bad, 60.0)


def test_with_flags_adds_and_keeps_the_rest():
    s = HeartSample(2.0, 70.0, (850.0,), contact=True, source="sim", flags=Quality.AFTER_GAP)
    t = s.with_flags(Quality.RR_ECTOPIC)
    assert t.flags == Quality.AFTER_GAP | Quality.RR_ECTOPIC
    assert (t.t, t.bpm, t.rr_ms, t.contact, t.source) == (2.0, 70.0, (850.0,), True, "sim")
    assert s.flags == Quality.AFTER_GAP  # frozen: the original is unchanged


@given(
    t=st.floats(-1e6, 1e6, allow_nan=False),
    rr=st.lists(st.floats(270, 2000), max_size=8),
)
def test_beat_times_back_date_from_t(t, rr):
    s = HeartSample(t, 60.0, tuple(rr))
    times = s.beat_times()
    assert len(times) == len(rr)
    if rr:
        assert times[-1] == t  # the last beat is at t
        for a, b, x in zip(times, times[1:], rr[1:]):
            assert b - a == pytest.approx(x / 1000.0, abs=1e-6)
