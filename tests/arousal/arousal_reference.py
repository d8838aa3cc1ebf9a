"""A from-scratch, one-patient, plain-Python reading of the feature rules in docs/arousal.md.

Nothing incremental: every feature is recomputed from the whole history of events at the time
it is asked for, with explicit formulas (explicit products of decay factors, a weighted
polynomial fit, explicit windows). The tests compare :class:`FeatureState` against it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np

from exposure_ctrl.arousal import FeatureConfig
from exposure_ctrl.sensors.sample import Quality

UNUSABLE = Quality.BPM_IMPOSSIBLE | Quality.NO_CONTACT | Quality.DEVICE_ERROR
UNTRUSTED = Quality.NO_CONTACT | Quality.DEVICE_ERROR


@dataclass
class Sample:
    t: float
    bpm: float
    rr: list[float]
    contact: int = -1  # 1 / 0 / -1
    src: int = 0


@dataclass
class Reference:
    cfg: FeatureConfig
    low: float = 8.0
    high: float = 18.0
    ceiling: float = 25.0
    hard_max: float = 160.0
    events: list[tuple] = field(default_factory=list)

    # --- recording -------------------------------------------------------------------------
    def sample(self, s: Sample) -> None:
        self.events.append(("sample", s.t, s))

    def scene(self, t: float, intensity: float) -> None:
        self.events.append(("scene", t, intensity))

    def suds(self, t: float, value: float) -> None:
        self.events.append(("suds", t, value))

    def baseline(self, t: float, bpm: float, rmssd: float = math.nan) -> None:
        self.events.append(("baseline", t, (bpm, rmssd)))

    # --- artifact pass ---------------------------------------------------------------------
    def screen(self) -> list[dict]:
        """Every sample with its flags, usability and accepted beats, in order."""
        art = self.cfg.artifacts
        out = []
        prev_t = None
        plausible_hist: list[float] = []
        last = None  # value of the last beat if the chain is intact
        for kind, t, s in self.events:
            if kind != "sample":
                continue
            flags = int(s.src)
            if not (art.bpm_min <= s.bpm <= art.bpm_max):
                flags |= Quality.BPM_IMPOSSIBLE
            if s.contact == 0:
                flags |= Quality.NO_CONTACT
            dt = None if prev_t is None else t - prev_t
            if dt is not None and dt > art.stale_after_s:
                flags |= Quality.AFTER_GAP
            usable = not (flags & UNUSABLE)
            trusted = not (flags & UNTRUSTED)
            recent = plausible_hist[-art.median_beats :]
            if len(recent) >= art.min_reference:
                ref = statistics.median(recent)
            elif usable:
                ref = 60000.0 / s.bpm
            else:
                ref = None
            if (not trusted) or (dt is not None and dt > self.cfg.chain_gap_s):
                last = None
            diffs = []
            accepted = []
            n_imp = n_ect = 0
            for rr in s.rr:
                if not trusted:
                    last = None
                    continue
                if not (art.rr_min_ms <= rr <= art.rr_max_ms):
                    n_imp += 1
                    last = None
                    continue
                plausible_hist.append(rr)
                if ref is not None and abs(rr - ref) > art.ectopic_tolerance * ref:
                    n_ect += 1
                    last = None
                    continue
                accepted.append(rr)
                if last is not None:
                    diffs.append((rr - last, rr))
                last = rr
            if n_imp:
                flags |= Quality.RR_IMPOSSIBLE
            if n_ect:
                flags |= Quality.RR_ECTOPIC
            out.append(
                {
                    "t": t,
                    "bpm": s.bpm,
                    "flags": flags,
                    "usable": usable,
                    "diffs": diffs,
                    "n_imp": n_imp,
                    "n_ect": n_ect,
                }
            )
            prev_t = t
        return out

    # --- features at time t ----------------------------------------------------------------
    def features(self, t_now: float) -> dict[str, float]:
        cfg = self.cfg
        art = cfg.artifacts
        screened = self.screen()
        usable = [x for x in screened if x["usable"]]
        times = [x["t"] for x in usable]
        xs = [x["bpm"] for x in usable]

        def smoothed(k: int) -> float:
            """EMA after usable sample k, by explicit products of the decay factors."""
            total = 0.0
            prod = 1.0  # product of d_j for j in (i, k]
            for i in range(k, -1, -1):
                one_minus_d = (
                    1.0 if i == 0 else -math.expm1(-(times[i] - times[i - 1]) / cfg.hr_tau_s)
                )
                total += one_minus_d * prod * xs[i]
                if i > 0:
                    prod *= math.exp(-(times[i] - times[i - 1]) / cfg.hr_tau_s)
            return total

        ys = [smoothed(k) for k in range(len(usable))]
        # baseline, scenes, SUDS: one pass over the events in order
        base, base_rmssd, known = cfg.prior_baseline_bpm, math.nan, False
        intensity, t_scene, t_level, level_start_index = math.nan, None, None, 0
        suds, t_suds = None, None
        first_t = self.events[0][1] if self.events else t_now
        n_usable_before = 0
        sample_index = 0
        peak_start_hr = None
        base_of_usable: list[float] = []  # baseline in force when each usable sample arrived
        for kind, t, v in self.events:
            if kind == "sample":
                if screened[sample_index]["usable"]:
                    n_usable_before += 1
                    base_of_usable.append(base)
                sample_index += 1
            elif kind == "baseline":
                base, base_rmssd, known = v[0], v[1], True
            elif kind == "scene":
                t_scene = t
                if not (abs(v - intensity) <= 1e-9):
                    t_level = t
                    intensity = v
                    level_start_index = n_usable_before
                    peak_start_hr = ys[n_usable_before - 1] if n_usable_before else None
            elif kind == "suds":
                suds, t_suds = v, t

        have = bool(usable)
        hr = ys[-1] if have else None
        hr_above = hr - base if have else 0.0
        # slope: weighted least squares with weights exp(-(T - t_i) / tau)
        slope = 0.0
        if len(usable) >= 2:
            T = times[-1]
            u = np.array(times) - T
            w = np.exp(u / cfg.slope_tau_s)
            X = np.stack([np.ones_like(u), u], axis=1)
            W = np.diag(w)
            A = X.T @ W @ X
            if np.linalg.det(A) > 1e-9 * max(A[0, 0] ** 2, 1.0):
                beta = np.linalg.solve(A, X.T @ W @ np.array(xs))
                slope = 60.0 * beta[1]

        def in_bins(ts: float, k: int) -> bool:
            now = math.floor(t_now / cfg.bin_s)
            b = math.floor(ts / cfg.bin_s)
            return now - k < b <= now

        # in-window fraction: credit of each usable sample (after the first)
        in_s = above_s = obs_s = 0.0
        for k in range(1, len(usable)):
            credit = min(times[k] - times[k - 1], art.stale_after_s)
            if not in_bins(times[k], cfg.window_bins):
                continue
            h = ys[k] - base_of_usable[k]
            obs_s += credit
            if self.low <= h <= self.high:
                in_s += credit
            if h > self.high:
                above_s += credit
        # RMSSD
        diffs = [d for x in screened if in_bins(x["t"], cfg.rmssd_bins) for d in x["diffs"]]
        cover = sum(rr for _, rr in diffs)
        valid = bool(diffs) and cover >= 1000.0 * cfg.rmssd_min_s
        rmssd = math.sqrt(sum(d * d for d, _ in diffs) / len(diffs)) if valid else 0.0
        # quality
        recent = [x for x in screened if in_bins(x["t"], cfg.quality_bins)]
        clean = sum(1 for x in recent if x["flags"] == 0)
        # level peak
        cands = ys[level_start_index:]
        if peak_start_hr is not None:
            cands = cands + [peak_start_hr]
        peak = (max(cands) - base) if cands else hr_above
        fall = max(peak - hr_above, 0.0)
        t_usable = times[-1] if have else None
        since = t_now - (t_usable if have else first_t)
        return {
            "hr_above_bpm": hr_above,
            "hr_slope_bpm_per_min": slope,
            "arousal_norm": (hr_above - self.low) / (self.high - self.low),
            "ceiling_margin_bpm": self.ceiling - hr_above,
            "hard_max_margin_bpm": self.hard_max - (hr if have else base),
            "in_window_frac": in_s / obs_s if obs_s > 0 else 0.0,
            "above_window_frac": above_s / obs_s if obs_s > 0 else 0.0,
            "rmssd_ms": rmssd,
            "rmssd_valid": float(valid),
            "rmssd_rel": rmssd / base_rmssd if valid and base_rmssd > 0 else 1.0,
            "intensity": 0.0 if math.isnan(intensity) else intensity,
            "since_scene_change_s": t_now - (t_scene if t_scene is not None else first_t),
            "at_intensity_s": t_now - (t_level if t_level is not None else first_t),
            "peak_above_bpm": peak,
            "fall_from_peak_bpm": fall,
            "fall_from_peak_frac": min(fall / peak, 1.0) if peak > 0 else 0.0,
            "suds": suds if suds is not None else 0.0,
            "suds_age_s": t_now - t_suds if suds is not None else 0.0,
            "suds_known": float(suds is not None),
            "since_clean_s": since,
            "stale": float((not have) or since > art.stale_after_s),
            "clean_frac": clean / len(recent) if recent else 0.0,
            "baseline_known": float(known),
        }

    def counts(self) -> dict[str, int]:
        screened = self.screen()
        out = {"samples": len(screened)}
        out["rr_impossible"] = sum(x["n_imp"] for x in screened)
        out["rr_ectopic"] = sum(x["n_ect"] for x in screened)
        for f in Quality:
            out[f"flag_{f.name.lower()}"] = sum(1 for x in screened if x["flags"] & f)
        return out
