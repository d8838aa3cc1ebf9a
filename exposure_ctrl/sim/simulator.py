"""N simulated patients in lockstep, each wearing a simulated sensor: the batched simulator.

A thin stateful shell around the pure functions of :mod:`~exposure_ctrl.sim.patient` and
:mod:`~exposure_ctrl.sim.sensors`: it keeps the states, draws each period's noise from the one
generator it was given, and lets some patients be replaced (:meth:`Simulator.put_rows`, a vector
environment's autoreset) while the others keep going.

>>> import numpy as np
>>> from exposure_ctrl.scenario import resolve_scenario
>>> from exposure_ctrl.sim import Simulator, sample_patients
>>> sc = resolve_scenario("spider")
>>> sim = Simulator(sc, sample_patients(sc, "spider-moderate", range(4)), rng=np.random.default_rng(0))
>>> step = sim.step(np.broadcast_to(sc.hierarchy_positions[3], (4, sc.n_parameters)))
>>> step.frames.bpm.shape  # (samples in the period, patients)
(5, 4)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sim import patient as pt
from exposure_ctrl.sim import sensors as sn
from exposure_ctrl.sim.arrays import put_rows
from exposure_ctrl.sim.noise import NoiseLayout, NoiseSource

__all__ = ["Simulator", "SimStep"]


@dataclasses.dataclass(frozen=True)
class SimStep:
    """One period of N patients: the ground-truth trace and what the sensors delivered."""

    trace: pt.PeriodTrace
    frames: sn.SensorFrames


class Simulator:
    """N patients with sensors, advanced one decision period at a time.

    Args:
        scenario: the scene (its ``timing.decision_period_s`` is the period).
        params: the patients (:func:`~exposure_ctrl.sim.cohorts.sample_patients`).
        rng: the one generator every random number comes from.
        sensor: ``strap``, ``strap-flaky``, ``ideal``, ``wrist`` or a config.
        positions: the scene shown at the start (default: the safe state), (K,) or (N, K).
        habituation: carried over from a previous session, (N, K).
        period_s: override the scenario's decision period.
        block: periods of noise drawn at once (default: enough for ~256 patient-periods).
    """

    def __init__(
        self,
        scenario: Scenario,
        params: pt.PatientParams,
        *,
        rng: np.random.Generator,
        sensor: str | sn.SensorConfig = "strap",
        positions: np.ndarray | None = None,
        habituation: np.ndarray | None = None,
        period_s: float | None = None,
        block: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.sensor = sn.get_sensor(sensor)
        self.grid = pt.make_grid(period_s if period_s is not None else scenario.timing.decision_period_s)
        self.m = sn.rr_capacity(self.grid)
        self.layout = NoiseLayout(
            beats=pt.beats_capacity(self.grid.period_s),
            sensor_z=self.grid.n if isinstance(self.sensor, sn.WristConfig) else 0,
        )
        self.noise = NoiseSource(rng, params.n, self.layout, block)
        self.params = params
        self.patient, self.sensor_state = self._initial(params, positions, habituation, rng)

    @property
    def n(self) -> int:
        return self.params.n

    @property
    def rng(self) -> np.random.Generator:
        return self.noise.rng

    def _initial(
        self,
        params: pt.PatientParams,
        positions: np.ndarray | None,
        habituation: np.ndarray | None,
        rng: np.random.Generator,
    ) -> tuple[pt.PatientState, sn.SensorState]:
        n = params.n
        if positions is None:
            positions = np.asarray(self.scenario.positions(self.scenario.safe_state))
        pos = np.broadcast_to(np.asarray(positions, dtype=np.int64), (n, self.scenario.n_parameters))
        z = rng.standard_normal(n)
        u = rng.random(n)
        state = pt.initial(params, pos, z, u, habituation)
        return state, sn.sensor_initial(n, state.hr_bpm)

    def put_rows(self, rows: np.ndarray, src: "Simulator") -> None:
        """Replace the patients in ``rows`` by the patients of ``src`` (one per row, same
        scenario and sensor), states included: a vector environment's restart of some sessions
        after their baseline phase ran on ``src``."""
        rows = np.asarray(rows, dtype=np.int64)
        if src.n != len(rows):
            raise ValueError(f"src holds {src.n} patients for {len(rows)} rows")
        if src.scenario is not self.scenario and src.scenario != self.scenario:
            raise ValueError("put_rows needs simulators of the same scenario")
        self.params = put_rows(self.params, rows, src.params)
        self.patient = put_rows(self.patient, rows, src.patient)
        self.sensor_state = put_rows(self.sensor_state, rows, src.sensor_state)

    def set_rng(self, rng: np.random.Generator) -> None:
        """Draw from ``rng`` from now on (an environment re-seeded by ``reset(seed=...)``)."""
        self.noise.set_rng(rng)

    def step(self, positions: np.ndarray) -> SimStep:
        """Show ``positions`` (N, K) from now on and advance one period."""
        pnoise, snoise = self.noise.draw()
        before = self.patient
        self.patient, trace = pt.transition(self.params, before, positions, pnoise, self.grid)
        self.sensor_state, frames = sn.sensor_step(
            self.sensor, self.sensor_state, trace, before.t_s, before.last_beat_s, snoise, self.grid, self.m
        )
        return SimStep(trace, frames)

    # --- ground truth --------------------------------------------------------------------------

    def fear(self) -> np.ndarray:
        return pt.fear_of(self.params, self.patient)

    def arousal_bpm(self) -> np.ndarray:
        return pt.true_arousal_bpm(self.params, self.patient)

    def action_effects(self, positions: np.ndarray) -> np.ndarray:
        return pt.true_action_effects(self.params, self.patient, positions, self.scenario.n_levels)

