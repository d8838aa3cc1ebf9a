"""The patient's resting heart rate, measured in the baseline phase, with a quality verdict.

The baseline phase (``scenario.timing.baseline_s``, typically 3 minutes, neutral scene) is
recorded sample by sample; the first ``settle_s`` seconds are discarded (a seated heart rate
settles in about a minute). Of the settled part:

- ``bpm``: the median of the usable bpm values (robust to the odd artifact that slipped
  through);
- ``sd_bpm``: the robust spread, ``1.4826 * MAD`` (bpm);
- ``se_bpm``: the uncertainty of ``bpm`` (bpm). Successive samples are strongly correlated, so
  it is the larger of ``1.2533 * sd_bpm / sqrt(n_eff)`` with the AR(1) effective sample size
  ``n_eff = n (1 - rho) / (1 + rho)`` (``rho`` the lag-one autocorrelation, clipped to
  0..0.98) and ``1.2533 * 1.4826 * MAD(block means) / sqrt(n_blocks)`` over consecutive
  ``block_s`` blocks;
- ``drift_bpm``: median of the second half minus median of the first half (bpm); a resting
  rate still falling or rising means the patient had not settled;
- ``rmssd_ms``: RMSSD over all clean successive RR differences of the settled part (ms; NaN
  without RR intervals);
- ``clean_frac``: the fraction of the settled part's samples whose bpm was usable.

The verdict is ``good`` unless one of the :class:`BaselineConfig` limits is broken, in which
case it is ``poor`` and ``reasons[i]`` says why, in words a therapist can act on. Exposure must
not start on a poor baseline without the therapist confirming (the session enforces this with
``needs_confirmation``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["BaselineConfig", "BaselineEstimator", "BaselineResult"]


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    """Limits of a good baseline."""

    settle_s: float = 60.0
    block_s: float = 10.0
    min_settled_s: float = 60.0
    min_clean_frac: float = 0.8
    max_sd_bpm: float = 8.0
    max_se_bpm: float = 2.0
    max_drift_bpm: float = 5.0
    resting_min_bpm: float = 40.0
    resting_max_bpm: float = 110.0


@dataclasses.dataclass(frozen=True)
class BaselineResult:
    """Baseline of N patients (arrays of shape (N,)) and the verdict on each."""

    bpm: np.ndarray
    sd_bpm: np.ndarray
    se_bpm: np.ndarray
    drift_bpm: np.ndarray
    rmssd_ms: np.ndarray
    clean_frac: np.ndarray
    settled_s: np.ndarray
    n_samples: np.ndarray
    good: np.ndarray
    reasons: tuple[str, ...]

    @property
    def needs_confirmation(self) -> np.ndarray:
        """True where the therapist must confirm before exposure may start."""
        return ~self.good

    def verdict(self, i: int = 0) -> str:
        """``good`` or ``poor`` for patient ``i``."""
        return "good" if bool(self.good[i]) else "poor"

    def describe(self, i: int = 0) -> str:
        """One line for the therapist, e.g. ``resting 68.2 ± 0.6 bpm (good)``."""
        if not np.isfinite(self.bpm[i]):
            return f"no resting heart rate (poor): {self.reasons[i]}"
        text = f"resting {self.bpm[i]:.1f} ± {self.se_bpm[i]:.1f} bpm ({self.verdict(i)})"
        return text + (f": {self.reasons[i]}" if self.reasons[i] else "")

    def record(self, i: int = 0) -> dict[str, object]:
        """Plain values of patient ``i``, for the session record."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v[i] if isinstance(v, tuple) else v[i].item()
        out["verdict"] = self.verdict(i)
        return out


class BaselineEstimator:
    """Collects the baseline phase's samples of N patients; :meth:`result` gives the baseline.

    Storage grows with the phase (one float per sample and patient): the median needs the
    values. ``add`` is O(1) amortised.
    """

    def __init__(self, n: int, t_start: float, config: BaselineConfig | None = None) -> None:
        self.n = int(n)
        self.t_start = float(t_start)
        self.config = config or BaselineConfig()
        self._cap = 256
        self._len = 0
        self._t = np.empty(self._cap)
        self._bpm = np.empty((self.n, self._cap))
        self._present = np.zeros((self.n, self._cap), dtype=bool)
        self._sumsq = np.zeros(self.n)
        self._ndiff = np.zeros(self.n)

    def add_block(
        self,
        t: np.ndarray,
        bpm: np.ndarray,
        usable: np.ndarray,
        present: np.ndarray,
        rr_sumsq: np.ndarray,
        rr_ndiff: np.ndarray,
    ) -> None:
        """S sample slots, arrays (S, N): bpm, which are usable, which patients had a sample at
        all, and the sums of squared successive RR differences (ms²) and their counts."""
        s_ = bpm.shape[0]
        while self._len + s_ > self._cap:
            self._cap *= 2
            self._t = np.resize(self._t, self._cap)
            self._bpm = np.concatenate([self._bpm, np.empty_like(self._bpm)], axis=1)
            self._present = np.concatenate([self._present, np.zeros_like(self._present)], axis=1)
        j = self._len
        ts = np.max(t, axis=1)
        self._t[j : j + s_] = ts
        self._bpm[:, j : j + s_] = np.where(usable, bpm, np.nan).T
        self._present[:, j : j + s_] = present.T
        self._len += s_
        settled = (ts >= self.t_start + self.config.settle_s)[:, None]
        self._sumsq += np.where(settled, rr_sumsq, 0.0).sum(axis=0)
        self._ndiff += np.where(settled, rr_ndiff, 0.0).sum(axis=0)

    def result(self, t_end: float | None = None) -> BaselineResult:
        """The baseline of every patient from the settled part of what was added."""
        cfg = self.config
        n = self.n
        t = self._t[: self._len]
        t_end = float(t[-1]) if t_end is None and len(t) else (t_end or self.t_start)
        settled = t >= self.t_start + cfg.settle_s
        bpm = self._bpm[:, : self._len][:, settled]
        present = self._present[:, : self._len][:, settled]
        ts = t[settled]
        n_present = present.sum(axis=1)
        ok = np.isfinite(bpm)
        n_ok = ok.sum(axis=1)
        settled_s = np.full(n, max(0.0, t_end - (self.t_start + cfg.settle_s)))
        clean_frac = np.where(n_present > 0, n_ok / np.maximum(n_present, 1), 0.0)

        med = _nanmedian_rows(bpm)
        sd = 1.4826 * _nanmedian_rows(np.abs(bpm - med[:, None]))
        # block means
        if len(ts):
            blk = np.floor((ts - ts[0]) / cfg.block_s).astype(np.int64)
            nb = int(blk[-1]) + 1
            sums, counts = _block_sums(np.where(ok, bpm, 0.0), ok.astype(np.float64), blk, nb)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(counts > 0, sums / counts, np.nan)
            n_blocks = (counts > 0).sum(axis=1)
            bmed = _nanmedian_rows(means)
            bmad = _nanmedian_rows(np.abs(means - bmed[:, None]))
            # successive samples are strongly correlated: an AR(1) effective sample size
            mean = (
                np.nanmean(np.where(ok, bpm, np.nan), axis=1, keepdims=True)
                if ok.any()
                else bpm[:, :1]
            )
            dev = np.where(ok, bpm - mean, 0.0)
            pair = ok[:, 1:] & ok[:, :-1]
            num = np.where(pair, dev[:, 1:] * dev[:, :-1], 0.0).sum(axis=1)
            den = np.where(pair, dev[:, :-1] ** 2, 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                rho = np.clip(np.where(den > 0, num / den, 0.0), 0.0, 0.98)
                n_eff = np.maximum(n_ok * (1 - rho) / (1 + rho), 1.0)
                se_ar = 1.2533 * sd / np.sqrt(n_eff)
                se_blocks = 1.2533 * 1.4826 * bmad / np.sqrt(n_blocks)
                se = np.fmax(se_ar, se_blocks)
            se = np.where(n_blocks >= 2, se, np.nan)
            half = ts < ts[0] + 0.5 * (ts[-1] - ts[0])
            drift = _nanmedian_rows(np.where(half[None, :], np.nan, bpm)) - _nanmedian_rows(
                np.where(half[None, :], bpm, np.nan)
            )
        else:
            se = np.full(n, np.nan)
            drift = np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            rmssd = np.where(
                self._ndiff > 0, np.sqrt(self._sumsq / np.maximum(self._ndiff, 1)), np.nan
            )

        reasons = []
        good = np.ones(n, dtype=bool)
        for i in range(n):
            why = []
            if n_ok[i] == 0:
                why.append("no clean heart-rate sample after the settling period; check the strap")
            else:
                if settled_s[i] < cfg.min_settled_s:
                    why.append(
                        f"only {settled_s[i]:.0f} s of settled baseline "
                        f"(need {cfg.min_settled_s:.0f} s): extend the baseline phase"
                    )
                if clean_frac[i] < cfg.min_clean_frac:
                    why.append(
                        f"only {100 * clean_frac[i]:.0f}% of samples were clean (need "
                        f"{100 * cfg.min_clean_frac:.0f}%): check strap contact"
                    )
                if not cfg.resting_min_bpm <= med[i] <= cfg.resting_max_bpm:
                    why.append(
                        f"resting heart rate {med[i]:.0f} bpm is outside "
                        f"{cfg.resting_min_bpm:.0f}-{cfg.resting_max_bpm:.0f} bpm: check the strap "
                        "and the patient"
                    )
                if sd[i] > cfg.max_sd_bpm:
                    why.append(
                        f"heart rate varied widely (robust SD {sd[i]:.1f} bpm > "
                        f"{cfg.max_sd_bpm:.0f}): the patient may not have been at rest"
                    )
                if np.isfinite(drift[i]) and abs(drift[i]) > cfg.max_drift_bpm:
                    direction = "rising" if drift[i] > 0 else "falling"
                    why.append(
                        f"heart rate was still {direction} ({drift[i]:+.1f} bpm between the halves, "
                        f"limit {cfg.max_drift_bpm:.0f}): the patient had not settled"
                    )
                if not np.isfinite(se[i]) or se[i] > cfg.max_se_bpm:
                    shown = "unknown" if not np.isfinite(se[i]) else f"{se[i]:.1f} bpm"
                    why.append(
                        f"the resting rate is uncertain ({shown}, limit {cfg.max_se_bpm:.0f} bpm)"
                    )
            good[i] = not why
            reasons.append("; ".join(why))
        return BaselineResult(
            bpm=med,
            sd_bpm=sd,
            se_bpm=se,
            drift_bpm=drift,
            rmssd_ms=rmssd,
            clean_frac=clean_frac,
            settled_s=settled_s,
            n_samples=n_ok,
            good=good,
            reasons=tuple(reasons),
        )


def _block_sums(values: np.ndarray, ok: np.ndarray, blk: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the sums of ``values`` and of ``ok`` over the samples of each block (``blk``:
    the samples' block numbers; samples outside 0 .. nb - 1 count nowhere): (N, nb) each, 0 for
    a block without samples.

    Not a product with a one-hot matrix, which goes through BLAS: for a whole batch's baseline
    (a vector environment's reset of 1024 sessions) OpenBLAS's worker threads then spin for a
    tenth of a second or more after the call, on the core the compiled kernels would use."""
    order = np.argsort(blk, kind="stable")
    blk, values, ok = blk[order], values[:, order], ok[:, order]
    end = int(np.searchsorted(blk, nb, side="left"))  # a reduceat segment runs to the end:
    blk, values, ok = blk[:end], values[:, :end], ok[:, :end]  # drop blocks >= nb first
    starts = np.searchsorted(blk, np.arange(nb), side="left")
    filled = starts < np.searchsorted(blk, np.arange(nb), side="right")
    sums = np.zeros((values.shape[0], nb))
    counts = np.zeros((values.shape[0], nb))
    if filled.any():  # a segment of reduceat runs to the next start: empty blocks hold nothing
        sums[:, filled] = np.add.reduceat(values, starts[filled], axis=1)
        counts[:, filled] = np.add.reduceat(ok, starts[filled], axis=1)
    return sums, counts


def _nanmedian_rows(x: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN; NaN for an empty row (without a warning)."""
    if x.shape[1] == 0:
        return np.full(x.shape[0], np.nan)
    s = np.sort(x, axis=1)
    c = np.isfinite(x).sum(axis=1)
    rows = np.arange(x.shape[0])
    lo = np.clip((c - 1) // 2, 0, x.shape[1] - 1)
    hi = np.clip(c // 2, 0, x.shape[1] - 1)
    return np.where(c > 0, 0.5 * (s[rows, lo] + s[rows, hi]), np.nan)
