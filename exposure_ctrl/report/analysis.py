"""What a therapist wants to know about a session, computed from its record (pure functions).

Heart-rate figures use *clean* samples only (no quality flag, 30..220 bpm), smoothed with a
trailing mean over ``SMOOTH_S`` seconds; "rise" is that smoothed heart rate minus the session's
resting baseline. Time in the window counts only time covered by clean samples during the
exposure phase (a sample covers the time until the next one, at most the scenario's
``stale_after_s``), so sensor gaps count neither for nor against it.

The scene the patient saw at a time is the last scene change *shown* by then (acked by the
headset; sent, if no ack was recorded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from exposure_ctrl.scenario import Scenario
from exposure_ctrl.store.records import SceneChange, SessionRecord

__all__ = [
    "SMOOTH_S",
    "HABITUATION_TAIL_S",
    "Interval",
    "HeartSeries",
    "LevelStats",
    "SessionStats",
    "phase_intervals",
    "heart_series",
    "shown_at",
    "level_timeline",
    "session_stats",
]

SMOOTH_S = 10.0
"""Width of the trailing mean that smooths heart rate, seconds."""

HABITUATION_TAIL_S = 30.0
"""Habituation at a level compares its peak rise with the mean rise over its last this-many s."""

_BPM_MIN, _BPM_MAX = 30.0, 220.0
_MIN_VISIT_S = 1.0  # shorter stays at a level (a scene passing through) are not counted


@dataclasses.dataclass(frozen=True)
class Interval:
    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclasses.dataclass(frozen=True)
class HeartSeries:
    """Heart rate as arrays (session seconds)."""

    t: np.ndarray  # all samples
    bpm: np.ndarray
    clean: np.ndarray  # bool: usable
    smooth: np.ndarray  # trailing mean of clean samples (NaN where none in the window)
    baseline_bpm: float | None
    baseline_sd: float | None
    baseline_estimated: bool  # True when no baseline was recorded and it was taken from data

    @property
    def rise(self) -> np.ndarray:
        if self.baseline_bpm is None:
            return np.full_like(self.smooth, np.nan)
        return self.smooth - self.baseline_bpm


@dataclasses.dataclass(frozen=True)
class LevelStats:
    """Heart-rate response while the patient was at one hierarchy step."""

    index: int  # -1: below the first step
    name: str
    time_s: float
    visits: int
    peak_rise_bpm: float | None
    end_rise_bpm: float | None  # mean rise over the last HABITUATION_TAIL_S of the last visit
    habituation_bpm: float | None  # peak − end: how far arousal came down while staying

    @property
    def habituation_pct(self) -> float | None:
        if self.habituation_bpm is None or not self.peak_rise_bpm or self.peak_rise_bpm <= 0:
            return None
        return 100.0 * self.habituation_bpm / self.peak_rise_bpm


@dataclasses.dataclass(frozen=True)
class SessionStats:
    duration_s: float
    exposure_s: float
    observed_exposure_s: float  # exposure time covered by clean heart rate
    time_in_window_s: float
    time_above_window_s: float
    time_below_window_s: float
    time_above_ceiling_s: float
    peak_rise_bpm: float | None
    peak_rise_t: float | None
    step_reached: int | None  # highest hierarchy index shown during exposure (-1: below step 1)
    step_reached_name: str | None
    max_intensity: float | None
    n_scene_changes: int
    changes_by_trigger: dict[str, int]
    n_shield_interventions: int
    n_gaps: int
    gap_s: float
    levels: list[LevelStats]
    suds_peak: int | None
    n_clean: int
    n_flagged: int
    proposals_accepted: int
    proposals_rejected: int

    @property
    def time_in_window_frac(self) -> float | None:
        if self.observed_exposure_s <= 0:
            return None
        return self.time_in_window_s / self.observed_exposure_s


def phase_intervals(rec: SessionRecord) -> list[Interval]:
    """The session's phases as intervals; without phase records, one ``session`` interval."""
    end = rec.end_t
    if not rec.phases:
        return [Interval("session", 0.0, end)]
    out = []
    for i, p in enumerate(rec.phases):
        if p.phase == "ended":
            continue
        stop = rec.phases[i + 1].t if i + 1 < len(rec.phases) else end
        out.append(Interval(p.phase, p.t, max(p.t, stop)))
    return out


def _exposure(rec: SessionRecord) -> list[Interval]:
    phases = phase_intervals(rec)
    exp = [iv for iv in phases if iv.label == "exposure"]
    if not exp and len(phases) == 1 and phases[0].label == "session":
        return phases  # no phases recorded: treat the session as exposure
    return exp


def _trailing_mean(t: np.ndarray, x: np.ndarray, width: float) -> np.ndarray:
    """Mean of the values with time in ``(t_i - width, t_i]`` for every i (NaN-free input)."""
    if len(t) == 0:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.searchsorted(t, t - width, side="right")
    hi = np.arange(1, len(t) + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def heart_series(rec: SessionRecord, smooth_s: float = SMOOTH_S) -> HeartSeries:
    t = np.array([s.t for s in rec.samples], dtype=np.float64)
    bpm = np.array([s.bpm for s in rec.samples], dtype=np.float64)
    flags = np.array([s.flags for s in rec.samples], dtype=np.int64)
    clean = (flags == 0) & (bpm >= _BPM_MIN) & (bpm <= _BPM_MAX) & np.isfinite(bpm)
    smooth = np.full(len(t), np.nan)
    if clean.any():
        ct, cb = t[clean], bpm[clean]
        sm = _trailing_mean(ct, cb, smooth_s)
        # every sample gets the smoothed value of the last clean sample at or before it,
        # if that one is recent enough
        idx = np.searchsorted(ct, t, side="right") - 1
        ok = (idx >= 0) & (t - ct[np.clip(idx, 0, None)] <= smooth_s)
        smooth[ok] = sm[idx[ok]]
    b = rec.baseline
    if b is not None:
        base, sd, est = b.bpm, b.sd_bpm, False
    else:
        base_iv = [iv for iv in phase_intervals(rec) if iv.label == "baseline"]
        m = np.zeros(len(t), dtype=bool)
        for iv in base_iv:
            m |= (t >= iv.start) & (t < iv.end)
        m &= clean
        if m.sum() >= 5:
            base, sd, est = float(np.median(bpm[m])), float(np.std(bpm[m])), True
        else:
            base, sd, est = None, None, False
    return HeartSeries(t, bpm, clean, smooth, base, sd, est)


def shown_at(c: SceneChange) -> float:
    """When a scene change reached the patient: acked, else sent, else decided."""
    for x in (c.acked_t, c.sent_t, c.t):
        if x is not None:
            return float(x)
    return float(c.t)  # pragma: no cover


def level_timeline(rec: SessionRecord) -> tuple[np.ndarray, list[SceneChange]]:
    """Shown times and the scene changes, sorted by shown time."""
    changes = sorted(rec.scene_changes, key=shown_at)
    return np.array([shown_at(c) for c in changes], dtype=np.float64), changes


def _mask_in(t: np.ndarray, intervals: Sequence[Interval]) -> np.ndarray:
    m = np.zeros(len(t), dtype=bool)
    for iv in intervals:
        m |= (t >= iv.start) & (t < iv.end)
    return m


def session_stats(rec: SessionRecord, sc: Scenario, hs: HeartSeries | None = None) -> SessionStats:
    """The summary of one session (see the module docstring for the definitions)."""
    hs = hs if hs is not None else heart_series(rec)
    exposure = _exposure(rec)
    exposure_s = sum(iv.duration for iv in exposure)
    tg = sc.targets
    stale = float(sc.safety.stale_after_s)

    # time covered by each clean sample: until the next clean one, at most `stale`
    ct = hs.t[hs.clean]
    crise = hs.rise[hs.clean]
    cover = np.zeros(len(ct))
    if len(ct):
        nxt = np.append(ct[1:], ct[-1] + min(stale, 1.0))
        cover = np.clip(nxt - ct, 0.0, stale)
    in_exp = _mask_in(ct, exposure)
    known = in_exp & np.isfinite(crise)
    observed = float(cover[known].sum())
    win = tg.arousal_window_bpm
    in_window = float(cover[known & (crise >= win.low) & (crise <= win.high)].sum())
    above = float(cover[known & (crise > win.high)].sum())
    below = float(cover[known & (crise < win.low)].sum())
    above_ceiling = float(cover[known & (crise > tg.ceiling_bpm)].sum())

    peak = peak_t = None
    if known.any():
        i = int(np.nanargmax(np.where(known, crise, -np.inf)))
        peak, peak_t = float(crise[i]), float(ct[i])

    shown, changes = level_timeline(rec)
    exp_changes = [
        c
        for c, s in zip(changes, shown)
        if any(iv.start <= s < iv.end for iv in exposure) and c.hierarchy_index is not None
    ]
    # the scene already showing when exposure began counts too
    if exposure and len(shown):
        before = [c for c, s in zip(changes, shown) if s < exposure[0].start]
        if before and before[-1].hierarchy_index is not None:
            exp_changes.insert(0, before[-1])
    step = max((c.hierarchy_index for c in exp_changes), default=None)  # type: ignore[type-var]
    max_int = max((c.intensity for c in exp_changes if c.intensity is not None), default=None)

    by_trigger: dict[str, int] = {}
    for c in rec.scene_changes:
        by_trigger[c.trigger] = by_trigger.get(c.trigger, 0) + 1

    gap_s = 0.0
    for g in rec.gaps:
        gap_s += max(0.0, (g.end_t if g.end_t is not None else rec.end_t) - g.start_t)

    return SessionStats(
        duration_s=rec.end_t,
        exposure_s=exposure_s,
        observed_exposure_s=observed,
        time_in_window_s=in_window,
        time_above_window_s=above,
        time_below_window_s=below,
        time_above_ceiling_s=above_ceiling,
        peak_rise_bpm=peak,
        peak_rise_t=peak_t,
        step_reached=step,
        step_reached_name=_step_name(sc, step),
        max_intensity=max_int,
        n_scene_changes=len(rec.scene_changes),
        changes_by_trigger=by_trigger,
        n_shield_interventions=sum(1 for d in rec.decisions if d.shield_intervened),
        n_gaps=len(rec.gaps),
        gap_s=gap_s,
        levels=_level_stats(rec, sc, hs, exposure),
        suds_peak=max((s.value for s in rec.suds), default=None),
        n_clean=int(hs.clean.sum()),
        n_flagged=int((~hs.clean).sum()),
        proposals_accepted=sum(1 for d in rec.decisions if d.response == "accepted"),
        proposals_rejected=sum(1 for d in rec.decisions if d.response == "rejected"),
    )


def _step_name(sc: Scenario, index: int | None) -> str | None:
    if index is None:
        return None
    if index < 0:
        return "below the first step"
    return sc.hierarchy[index].name


def _level_stats(
    rec: SessionRecord, sc: Scenario, hs: HeartSeries, exposure: list[Interval]
) -> list[LevelStats]:
    shown, changes = level_timeline(rec)
    if not exposure or not len(shown):
        return []
    # visits: (level, start, end) clipped to the exposure intervals
    visits: list[tuple[int, float, float]] = []
    for iv in exposure:
        for i, c in enumerate(changes):
            if c.hierarchy_index is None:
                continue
            start = max(shown[i], iv.start)
            end = min(shown[i + 1] if i + 1 < len(changes) else iv.end, iv.end)
            if end > start:
                visits.append((int(c.hierarchy_index), float(start), float(end)))
    rise = hs.rise
    ok = hs.clean & np.isfinite(rise)
    out = []
    levels = {v[0] for v in visits if v[2] - v[1] >= _MIN_VISIT_S}
    for level in sorted(levels):
        vs = [v for v in visits if v[0] == level]
        # merge back-to-back visits (a change of a parameter that keeps the step)
        merged: list[list[float]] = []
        for _, a, b in vs:
            if b - a < _MIN_VISIT_S:
                continue
            if merged and abs(merged[-1][1] - a) < 1e-9:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        m = np.zeros(len(hs.t), dtype=bool)
        for a, b in merged:
            m |= (hs.t >= a) & (hs.t < b)
        sel = m & ok
        peak = float(rise[sel].max()) if sel.any() else None
        a, b = merged[-1]
        tail = ok & (hs.t >= max(a, b - HABITUATION_TAIL_S)) & (hs.t < b)
        end_rise = float(rise[tail].mean()) if tail.any() and b - a >= HABITUATION_TAIL_S else None
        hab = None if peak is None or end_rise is None else peak - end_rise
        out.append(
            LevelStats(
                index=level,
                name=_step_name(sc, level) or "",
                time_s=sum(b - a for a, b in merged),
                visits=len(merged),
                peak_rise_bpm=peak,
                end_rise_bpm=end_rise,
                habituation_bpm=hab,
            )
        )
    return out
