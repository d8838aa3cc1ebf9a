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
from exposure_ctrl.sim import kernels as K
from exposure_ctrl.sim.kernels import RR_TICK_MS
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
    "own_sensor_state",
    "sensor_arrays",
    "sensor_kernel_args",
    "empty_frames",
    "frame_arrays",
    "frames_to_samples",
    "rr_capacity",
    "RR_TICK_MS",
]



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


def own_sensor_state(state: SensorState) -> SensorState:
    """A copy with fresh C-ordered float64 arrays: safe to update in place."""
    f = np.float64
    return SensorState(
        outage_left_s=np.array(state.outage_left_s, dtype=f, order="C"),
        last_bpm=np.array(state.last_bpm, dtype=f),
        lagged_bpm=np.array(state.lagged_bpm, dtype=f),
    )


def sensor_arrays(state: SensorState) -> tuple[np.ndarray, ...]:
    """The sensor state's arrays in the kernels' argument order (they update them in place)."""
    return state.outage_left_s, state.last_bpm, state.lagged_bpm


def sensor_kernel_args(cfg: SensorConfig) -> tuple[int, np.ndarray, float, float]:
    """A sensor model as the kernels take it: ``(kind, outages (3, 3), lag_s, noise_bpm)``;
    ``outages`` holds per process (contact loss, dropout, disconnect) the onsets per minute and
    the shortest and longest duration."""
    rows = [(o.per_min, o.seconds[0], o.seconds[1]) for o in (cfg.contact_loss, cfg.dropout, cfg.disconnect)]
    table = np.array(rows, dtype=np.float64)
    if isinstance(cfg, WristConfig):
        return K.SENSOR_WRIST, table, float(cfg.lag_s), float(cfg.noise_bpm)
    return K.SENSOR_STRAP, table, 1.0, 0.0


def empty_frames(n: int, s: int, m: int) -> SensorFrames:
    """Uninitialised frames for N patients, S slots and M RR intervals per slot."""
    return SensorFrames(
        t_s=np.empty((s, n)),
        bpm=np.empty((s, n)),
        rr_ms=np.empty((s, n, m)),
        n_rr=np.empty((s, n), dtype=np.int64),
        contact=np.empty((s, n), dtype=np.int8),
        flags=np.empty((s, n), dtype=np.int64),
        present=np.empty((s, n), dtype=bool),
        disconnected=np.empty((s, n), dtype=bool),
    )


def frame_arrays(frames: SensorFrames) -> tuple[np.ndarray, ...]:
    """The frames' arrays in the kernels' argument order (they write them)."""
    f = frames
    return f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.flags, f.present, f.disconnected


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
    Pure; the arithmetic is :func:`exposure_ctrl.sim.kernels.sensor_rows`.
    """
    new = own_sensor_state(state)
    n = new.last_bpm.shape[0]
    frames = empty_frames(n, grid.n, m)
    c = np.ascontiguousarray
    K.sensor_rows(
        *sensor_kernel_args(cfg),
        *sensor_arrays(new),
        c(trace.beat_t_s, dtype=np.float64),
        c(trace.beat_rr_ms, dtype=np.float64),
        c(trace.beat_valid, dtype=bool),
        c(trace.hr_bpm, dtype=np.float64),
        c(t0, dtype=np.float64),
        c(last_beat_before_s, dtype=np.float64),
        c(noise.u, dtype=np.float64),
        c(noise.z if noise.z.shape[0] else np.zeros((grid.n, n)), dtype=np.float64),
        grid.offsets_s,
        grid.period_s,
        grid.dt_s,
        *frame_arrays(frames),
        0,
        n,
    )
    return new, frames


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
