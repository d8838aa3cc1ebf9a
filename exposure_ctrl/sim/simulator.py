"""N simulated patients in lockstep, each wearing a simulated sensor: the batched simulator.

A thin stateful shell around the kernels of :mod:`~exposure_ctrl.sim.kernels`: it keeps the
states, draws each period's noise from the one generator it was given, and lets some patients be
replaced (:meth:`Simulator.put_rows`, a vector environment's autoreset) while the others keep
going. A period is one call of the fused kernel (each patient's transition, then its sensor), the
same arithmetic as :func:`~exposure_ctrl.sim.patient.transition` followed by
:func:`~exposure_ctrl.sim.sensors.sensor_step`, but on the simulator's own state arrays, in place:
:attr:`Simulator.patient` and :attr:`Simulator.sensor_state` change with every :meth:`~Simulator.step`
(copy them, e.g. with :func:`~exposure_ctrl.sim.arrays.copy_rows`, to keep a snapshot).

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

from exposure_ctrl._threads import chunks_for, parallel_ok
from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sim import kernels as K
from exposure_ctrl.sim import patient as pt
from exposure_ctrl.sim import sensors as sn
from exposure_ctrl.sim.arrays import put_rows, write_rows
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
        chunks: the number of contiguous ranges of patients computed at once on numba's
            threads (default: numba's number of threads from
            :data:`~exposure_ctrl._threads.PARALLEL_MIN_ROWS` patients on, else 1: one range
            on the calling thread); the results do not depend on it.
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
        chunks: int | None = None,
    ) -> None:
        self.scenario = scenario
        if chunks is not None and int(chunks) < 1:
            raise ValueError(f"chunks must be at least 1, found {chunks}")
        self.chunks = chunks_for(params.n) if chunks is None else min(int(chunks), params.n)
        self.sensor = sn.get_sensor(sensor)
        self.grid = pt.make_grid(period_s if period_s is not None else scenario.timing.decision_period_s)
        self.m = sn.rr_capacity(self.grid)
        self.layout = NoiseLayout(
            beats=pt.beats_capacity(self.grid.period_s),
            sensor_z=self.grid.n if isinstance(self.sensor, sn.WristConfig) else 0,
        )
        self.noise = NoiseSource(rng, params.n, self.layout, block)
        self._sensor_args = sn.sensor_kernel_args(self.sensor)
        self._own_out: tuple[SimStep, tuple[np.ndarray, ...]] | None = None
        self.params = params
        self.patient, self.sensor_state = self._initial(params, positions, habituation, rng)

    # --- the state: owned, updated in place by step() ------------------------------------------

    @property
    def params(self) -> pt.PatientParams:
        return self._params

    @params.setter
    def params(self, params: pt.PatientParams) -> None:
        if params.n != self.noise.n:  # the noise, outputs and cached arguments are sized for n
            raise ValueError(f"the simulator holds {self.noise.n} patients, not {params.n}")
        self._params = params
        self._k = params.n_parameters
        self._params_args = params.kernel_args()
        self._args = None

    @property
    def patient(self) -> pt.PatientState:
        """The patients' state now (updated in place by :meth:`step`)."""
        return self._patient

    @patient.setter
    def patient(self, state: pt.PatientState) -> None:
        self._patient, self._patient_args = pt.own_state_packed(state)
        self._args = None

    @property
    def sensor_state(self) -> sn.SensorState:
        """The sensors' state now (updated in place by :meth:`step`)."""
        return self._sensor_state

    @sensor_state.setter
    def sensor_state(self, state: sn.SensorState) -> None:
        self._sensor_state = sn.own_sensor_state(state)
        self._sensor_state_args = sn.sensor_arrays(self._sensor_state)
        self._args = None

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
        self.params = put_rows(self.params, rows, src.params)  # may be shared: a new set
        # the states are the simulator's own arrays (the kernels' cached arguments): in place
        write_rows(self.patient, rows, src.patient)
        write_rows(self.sensor_state, rows, src.sensor_state)

    def set_rng(self, rng: np.random.Generator) -> None:
        """Draw from ``rng`` from now on (an environment re-seeded by ``reset(seed=...)``)."""
        self.noise.set_rng(rng)

    def step(self, positions: np.ndarray, *, reuse: bool = False) -> SimStep:
        """Show ``positions`` (N, K) from now on and advance one period.

        The result is new arrays, unless ``reuse``: then it is the simulator's own output
        arrays (the same :class:`SimStep` every time), overwritten by the next ``step(...,
        reuse=True)``: for callers that consume a period before the next (the sessions'
        batch), it saves allocating 16 arrays per period."""
        n, k = self.n, self._k
        if not (
            type(positions) is np.ndarray
            and positions.dtype == np.int64
            and positions.shape == (n, k)
            and positions.flags.c_contiguous
        ):
            positions = np.ascontiguousarray(np.broadcast_to(positions, (n, k)), dtype=np.int64)
        u, z = self.noise.next()
        args = self._state_args()
        if reuse:
            own = self._own_out
            if own is None:  # n is fixed at __init__ (the params setter refuses another)
                st = self._new_outputs(n)
                own = self._own_out = (st, self._after_draws(st))
            self._period(args, positions, u, z, own[1])
            return own[0]
        st = self._new_outputs(n)
        self._period(args, positions, u, z, self._after_draws(st))
        return st

    def _period(self, args: tuple, positions: np.ndarray, u: np.ndarray, z: np.ndarray, out: tuple) -> None:
        if self.chunks > 1 and parallel_ok():
            K.period_rows_parallel(*args, positions, u, z, *out, self.chunks)
        else:
            K.period_rows(*args, positions, u, z, *out, 0, self.n)

    def _state_args(self) -> tuple:
        """The kernels' arguments before the draws (parameters, patient and sensor state),
        gathered once per change of state."""
        args = self._args
        if args is None:
            args = self._args = (*self._params_args, *self._patient_args, *self._sensor_args, *self._sensor_state_args)
        return args

    def _new_outputs(self, n: int) -> SimStep:
        return SimStep(pt.empty_trace(n, self.grid.n, self.layout.beats), sn.empty_frames(n, self.grid.n, self.m))

    def _after_draws(self, st: SimStep) -> tuple:
        g = self.grid
        return (
            self.layout.beats, g.offsets_s, g.period_s, g.dt_s, *pt.trace_arrays(st.trace), *sn.frame_arrays(st.frames)
        )

    def run(self, positions: np.ndarray, periods: int) -> sn.SensorFrames:
        """Show ``positions`` (N, K) for ``periods`` periods (the same draws as as many calls of
        :meth:`step`): the sensors' notifications of all of them, one after the other on the
        slot axis (``periods * S`` slots). For phases whose ground truth is not needed (the
        baseline phase): one kernel call instead of one per period."""
        n, k = self.n, self._k
        positions = np.ascontiguousarray(np.broadcast_to(positions, (n, k)), dtype=np.int64)
        draws = [self.noise.next() for _ in range(periods)]
        g = self.grid
        frames = sn.empty_frames(n, g.n * periods, self.m)
        K.run_rows(
            *self._state_args(),
            positions,
            np.stack([u for u, _ in draws]),
            np.stack([z for _, z in draws]),
            self.layout.beats,
            g.offsets_s,
            g.period_s,
            g.dt_s,
            *sn.frame_arrays(frames),
        )
        return frames

    # --- ground truth --------------------------------------------------------------------------

    def fear(self) -> np.ndarray:
        return pt.fear_of(self.params, self.patient)

    def arousal_bpm(self) -> np.ndarray:
        return pt.true_arousal_bpm(self.params, self.patient)

    def action_effects(self, positions: np.ndarray) -> np.ndarray:
        return pt.true_action_effects(self.params, self.patient, positions, self.scenario.n_levels)

