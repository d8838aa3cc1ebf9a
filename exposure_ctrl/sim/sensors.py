"""Simulated heart-rate sensors: a Polar H10-like chest strap and an optical wrist sensor.

Both turn the patient's beats (or true heart rate) into what a real source delivers, one
notification about every second (the period's sample grid), as arrays over N patients
(:class:`SensorFrames`, the form the feature state ingests) or as the same
:class:`~exposure_ctrl.sensors.sample.HeartSample` objects the real sources produce
(:func:`frames_to_samples`).

**Chest strap.** Each notification carries the RR intervals of the beats since the previous one
(resolution 1/1024 s, as the 0x2A37 characteristic sends them) and a heart rate averaged over
those beats, rounded to whole bpm. Three outage processes (each a Poisson onset with a uniform
duration): *contact loss* (notifications keep coming with ``contact = 0``, bpm 0, no RR, flagged
``NO_CONTACT``), *dropouts* (notifications lost for a few seconds) and *disconnects* (nothing for
longer, until the link is back).

**Wrist sensor (optical).** Heart rate only, no RR intervals and no contact bit; it lags the
true rate (first-order, ``lag_s``) and is noisier; motion artefacts appear as short dropouts.

Every number is in :class:`StrapConfig` / :class:`WristConfig`; the defaults and their sources
are in ``docs/simulator.md``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, Union

import numpy as np

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario.model import did_you_mean
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sim.patient import Grid, PeriodTrace

__all__ = [
    "Outage",
    "StrapConfig",
    "WristConfig",
    "SensorConfig",
    "SENSORS",
    "get_sensor",
    "SensorState",
    "SensorNoise",
    "SensorFrames",
    "sensor_initial",
    "sensor_step",
    "frames_to_samples",
    "rr_capacity",
]

RR_TICK_MS = 1000.0 / 1024.0
"""RR resolution of the Heart Rate Measurement characteristic (1/1024 s)."""


@dataclasses.dataclass(frozen=True)
class Outage:
    """Episodes without usable data: onsets at ``per_min`` per minute, durations uniform in ``seconds``."""

    per_min: float
    seconds: tuple[float, float]


@dataclasses.dataclass(frozen=True)
class StrapConfig:
    """A chest strap (Polar H10-like)."""

    kind: Literal["strap"] = "strap"
    name: str = "strap"
    contact_loss: Outage = Outage(0.1, (2.0, 15.0))
    dropout: Outage = Outage(0.2, (1.0, 4.0))
    disconnect: Outage = Outage(0.02, (5.0, 30.0))


@dataclasses.dataclass(frozen=True)
class WristConfig:
    """An optical wrist sensor: lagging, noisier, heart rate only."""

    kind: Literal["wrist"] = "wrist"
    name: str = "wrist"
    lag_s: float = 5.0
    noise_bpm: float = 3.0
    contact_loss: Outage = Outage(0.0, (1.0, 1.0))
    dropout: Outage = Outage(0.5, (2.0, 8.0))  # motion artefacts: no reading
    disconnect: Outage = Outage(0.02, (5.0, 30.0))


SensorConfig = Union[StrapConfig, WristConfig]

SENSORS: dict[str, SensorConfig] = {
    "strap": StrapConfig(),
    # Some hosts drop a strap's connection every 10-150 s (CALIBRATION.md).
    "strap-flaky": StrapConfig(
        name="strap-flaky",
        disconnect=Outage(60.0 / 80.0, (3.0, 15.0)),
        dropout=Outage(0.5, (1.0, 5.0)),
    ),
    "ideal": StrapConfig(
        name="ideal",
        contact_loss=Outage(0.0, (1.0, 1.0)),
        dropout=Outage(0.0, (1.0, 1.0)),
        disconnect=Outage(0.0, (1.0, 1.0)),
    ),
    "wrist": WristConfig(),
}


def get_sensor(name: str | SensorConfig) -> SensorConfig:
    """A sensor model by name (``strap``, ``strap-flaky``, ``ideal``, ``wrist``) or as given."""
    if isinstance(name, (StrapConfig, WristConfig)):
        return name
    try:
        return SENSORS[name]
    except KeyError:
        raise ConfigError(f"unknown sensor {name!r}" + did_you_mean(name, sorted(SENSORS))) from None


def rr_capacity(grid: Grid) -> int:
    """Most RR intervals one notification can carry on this grid."""
    return int(math.ceil(grid.dt_s * 210.0 / 60.0 * 1.25)) + 1


@dataclasses.dataclass(frozen=True)
class SensorState:
    """Per patient: seconds of each outage still to run after ``t``, the last reported bpm and
    the wrist sensor's lagged rate."""

    outage_left_s: np.ndarray  # (N, 3): contact loss, dropout, disconnect
    last_bpm: np.ndarray
    lagged_bpm: np.ndarray


@dataclasses.dataclass(frozen=True)
class SensorNoise:
    """Random numbers of one period: ``u`` (9, N) uniforms (3 per outage process: onset, offset,
    duration) and ``z`` (S, N) standard normals (wrist reading noise)."""

    u: np.ndarray
    z: np.ndarray


@dataclasses.dataclass(frozen=True)
class SensorFrames:
    """The notifications of one period, time-major: slot s of patient n.

    ``present`` is False where no notification arrived (dropout, disconnect); ``rr_ms`` is padded
    with NaN beyond ``n_rr``; ``contact`` is 1, 0 or -1 (not reported); ``flags`` are the
    :class:`~exposure_ctrl.sensors.sample.Quality` bits the source itself sets.
    """

    t_s: np.ndarray  # (S, N)
    bpm: np.ndarray  # (S, N)
    rr_ms: np.ndarray  # (S, N, M)
    n_rr: np.ndarray  # (S, N)
    contact: np.ndarray  # (S, N) int8
    flags: np.ndarray  # (S, N) int64
    present: np.ndarray  # (S, N) bool
    disconnected: np.ndarray  # (S, N) bool: the link is down at this slot

    @property
    def n_slots(self) -> int:
        return int(self.t_s.shape[0])


def sensor_initial(n: int, hr_bpm: np.ndarray) -> SensorState:
    return SensorState(
        outage_left_s=np.zeros((n, 3)),
        last_bpm=np.round(np.asarray(hr_bpm, dtype=float)),
        lagged_bpm=np.asarray(hr_bpm, dtype=float).copy(),
    )


def _outages(
    cfg: SensorConfig, left: np.ndarray, u: np.ndarray, grid: Grid
) -> tuple[np.ndarray, np.ndarray]:
    """In-outage masks (3, S, N) and the time left after the period (N, 3), from the time left
    before it (N, 3) and 3 uniforms per process (onset, start within the period, duration)."""
    P = grid.period_s
    off = grid.offsets_s[:, None]  # (S, 1)
    S = grid.n
    n = left.shape[0]
    inside = np.zeros((3, S, n), dtype=bool)
    left_after = np.empty((n, 3))
    for c, o in enumerate((cfg.contact_loss, cfg.dropout, cfg.disconnect)):
        lc = left[:, c]
        inside[c] = off <= lc
        after = np.maximum(lc - P, 0.0)
        if o.per_min > 0.0:
            onset = (u[3 * c] < o.per_min / 60.0 * P) & (lc < P)
            if onset.any():
                start = u[3 * c + 1] * P
                end = start + o.seconds[0] + u[3 * c + 2] * (o.seconds[1] - o.seconds[0])
                inside[c] |= onset & (off >= start) & (off < end)
                after = np.where(onset, np.maximum(end - P, 0.0), after)
        left_after[:, c] = after
    return inside, left_after


def sensor_step(
    cfg: SensorConfig,
    state: SensorState,
    trace: PeriodTrace,
    t0: np.ndarray,
    last_beat_before_s: np.ndarray,
    noise: SensorNoise,
    grid: Grid,
    m: int,
) -> tuple[SensorState, SensorFrames]:
    """The notifications of one period for N patients, from the patient's beats / heart rate.

    ``t0`` is the period's start (session time), ``last_beat_before_s`` the time of the last beat
    before it (from the patient state at the period's start), ``m`` the RR capacity per slot.
    """
    S = grid.n
    n = t0.shape[0]
    t_slot = t0[None, :] + grid.offsets_s[:, None]  # (S, N)
    inside, left = _outages(cfg, state.outage_left_s, noise.u, grid)
    no_contact, dropped, disconnected = inside[0], inside[1], inside[2]
    present = ~(dropped | disconnected)

    if isinstance(cfg, WristConfig):
        a = math.exp(-grid.dt_s / cfg.lag_s)
        lag = np.empty((S, n))
        x = state.lagged_bpm
        for s in range(S):
            x = a * x + (1.0 - a) * trace.hr_bpm[s]
            lag[s] = x
        bpm = np.round(lag + cfg.noise_bpm * noise.z[:S])
        frames = SensorFrames(
            t_s=t_slot,
            bpm=bpm,
            rr_ms=np.full((S, n, m), np.nan),
            n_rr=np.zeros((S, n), dtype=np.int64),
            contact=np.full((S, n), -1, dtype=np.int8),
            flags=np.zeros((S, n), dtype=np.int64),
            present=present,
            disconnected=disconnected,
        )
        last = np.where(present, bpm, np.nan)
        last_bpm = state.last_bpm
        for s in range(S):
            last_bpm = np.where(np.isfinite(last[s]), last[s], last_bpm)
        return SensorState(left, last_bpm, x), frames

    # --- chest strap: pack the period's beats into its notifications -------------------------
    bt = trace.beat_t_s  # (B, N), increasing down each column
    valid = trace.beat_valid  # a prefix of each column
    nb = bt.shape[0]
    cols = np.arange(n)
    # beats up to the end of each slot (the last slot ends with the period: every valid beat)
    upto = np.empty((S, n), dtype=np.int64)
    for s in range(S - 1):
        upto[s] = (valid & (bt <= t_slot[s])).sum(axis=0)
    upto[S - 1] = valid.sum(axis=0)
    # slot of each beat: how many slot ends lie before it (beats before t0 go to the first slot)
    slot = np.zeros(bt.shape, dtype=np.int64)
    for s in range(S - 1):
        slot += bt > t_slot[s]
    before = np.empty_like(upto)
    before[0] = 0
    before[1:] = upto[:-1]
    n_rr = upto - before
    # sum of a slot's RR intervals = time between its last beat and the last beat before it
    flat_t = np.concatenate([last_beat_before_s[None, :], bt], axis=0).reshape(-1)  # (B+1, N)
    span_ms = 1000.0 * (flat_t.take(upto * n + cols) - flat_t.take(before * n + cols))
    has = n_rr > 0
    bpm_raw = 60000.0 * n_rr / np.where(has, span_ms, 1.0)
    # scatter the RR intervals into (S, N, M)
    rank = np.arange(nb)[:, None] - before.reshape(-1).take(slot * n + cols)
    keep = valid & (rank < m)
    rr_q = np.round(trace.beat_rr_ms * (1.0 / RR_TICK_MS)) * RR_TICK_MS
    rr_out = np.full((S, n, m), np.nan)
    rr_out.reshape(-1)[((slot * n + cols) * m + rank)[keep]] = rr_q[keep]
    n_rr = np.minimum(n_rr, m)
    # bpm: mean over the slot's beats; a slot without a beat repeats the previous value
    bpm = np.round(bpm_raw)
    if has.all():
        last_bpm = bpm[-1]
    else:
        last_bpm = state.last_bpm
        for s in range(S):
            last_bpm = np.where(has[s], bpm[s], last_bpm)
            bpm[s] = last_bpm
    contact = np.ones((S, n), dtype=np.int8)
    flags = np.zeros((S, n), dtype=np.int64)
    if no_contact.any():  # the strap says so, sends bpm 0 and no RR
        bpm[no_contact] = 0.0
        rr_out[no_contact] = np.nan
        n_rr = np.where(no_contact, 0, n_rr)
        contact[no_contact] = 0
        flags[no_contact] = int(Quality.NO_CONTACT)
    frames = SensorFrames(
        t_s=t_slot,
        bpm=bpm,
        rr_ms=rr_out,
        n_rr=n_rr,
        contact=contact,
        flags=flags,
        present=present,
        disconnected=disconnected,
    )
    return SensorState(left, last_bpm, state.lagged_bpm), frames


def frames_to_samples(
    frames: SensorFrames, row: int = 0, source: str = "sim", t_offset: float = 0.0
) -> list[HeartSample]:
    """The delivered notifications of patient ``row`` as :class:`HeartSample` objects, their
    times shifted by ``t_offset`` (session time → the session clock)."""
    out = []
    for s in range(frames.n_slots):
        if not frames.present[s, row]:
            continue
        k = int(frames.n_rr[s, row])
        c = int(frames.contact[s, row])
        out.append(
            HeartSample(
                t=float(frames.t_s[s, row]) + t_offset,
                bpm=float(frames.bpm[s, row]),
                rr_ms=tuple(float(x) for x in frames.rr_ms[s, row, :k]),
                contact=None if c < 0 else bool(c),
                source=source,
                flags=Quality(int(frames.flags[s, row])),
            )
        )
    return out
