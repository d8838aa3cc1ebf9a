"""The ``sim`` heart-rate source: a simulated chest strap on a simulated patient, for the live loop.

The patient perceives whatever scene the headset acknowledged (:meth:`SimulatedStrapSource.perceive`,
given to the session runner as ``on_acked_state``) and is simulated one second at a time on the
injected clock: real time with :class:`~exposure_ctrl.clock.MonotonicClock`, faster with
:class:`~exposure_ctrl.clock.ScaledClock`, as fast as the consumer reads with
:class:`~exposure_ctrl.clock.ManualClock`. It delivers what the strap model delivers
(:mod:`exposure_ctrl.sim.sensors`): a :class:`~exposure_ctrl.sensors.sample.HeartSample` about
every second with the RR intervals since the previous one; contact loss, dropouts and
disconnects (reported as ``DISCONNECTED``; the base class turns the silence into a gap).

When the patient aborts (removes the headset), ``on_abort`` is called once; the strap keeps
streaming (it is on the chest, not on the head).

Chosen by name: ``open_source("sim", clock=..., scenario=..., seed=..., cohort=...)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from exposure_ctrl.clock import Clock, MonotonicClock
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario import Scenario, resolve_scenario
from exposure_ctrl.sensors.source import DEFAULT_STALE_AFTER_S, BaseHeartRateSource, DeviceInfo, SourceState
from exposure_ctrl.sim.cohorts import EVAL_SIZE, CohortSpec, Mixture, Split, cohort_for, sample_patients
from exposure_ctrl.sim.sensors import SensorConfig, frames_to_samples
from exposure_ctrl.sim.simulator import Simulator

__all__ = ["SimulatedStrapSource", "open_sim_source"]

log = logging.getLogger(__name__)


class SimulatedStrapSource(BaseHeartRateSource):
    """A simulated patient wearing a simulated strap (see the module docstring).

    Args:
        scenario: the session's scenario (the patient's response is mapped onto it).
        clock: the session's clock.
        seed: seeds the patient's draw and every random number of the simulation.
        cohort: cohort name or spec (default: the scenario's own).
        patient_index: a specific patient of ``split`` (default: drawn from the seed).
        split: ``train`` (default) or ``eval``.
        sensor: the strap model (``strap``, ``strap-flaky``, ``ideal``, ``wrist``).
        on_abort: called once when the patient aborts (removes the headset).
        stale_after_s: see :class:`~exposure_ctrl.sensors.source.BaseHeartRateSource`.
        name: the source name stamped on samples.
    """

    def __init__(
        self,
        scenario: Scenario | str,
        *,
        clock: Clock | None = None,
        seed: int | None = 0,
        cohort: str | CohortSpec | Mixture | None = None,
        patient_index: int | None = None,
        split: Split = "train",
        sensor: str | SensorConfig = "strap",
        on_abort: Callable[[], None] | None = None,
        stale_after_s: float | None = DEFAULT_STALE_AFTER_S,
        name: str = "sim",
    ) -> None:
        super().__init__(name, clock=clock, stale_after_s=stale_after_s)
        self.scenario = scenario if isinstance(scenario, Scenario) else resolve_scenario(scenario)
        self.cohort = cohort_for(self.scenario, cohort)
        self.rng = np.random.default_rng(seed)
        if patient_index is None:
            patient_index = int(self.rng.integers(0, 2**31 if split == "train" else EVAL_SIZE))
        self.patient_index = int(patient_index)
        self.split = split
        self.params = sample_patients(self.scenario, self.cohort, [self.patient_index], split=split)
        self.on_abort = on_abort
        self._positions = np.asarray(self.scenario.positions(self.scenario.safe_state), dtype=np.int64)
        self.sim = Simulator(
            self.scenario, self.params, rng=self.rng, sensor=sensor, positions=self._positions, period_s=1.0
        )
        self.aborted = False
        self.t_origin: float | None = None
        self._quiet_until_s = -1.0  # session time until which the link is forced down

    def perceive(self, state: Mapping[str, Any]) -> None:
        """The headset now shows ``state``: the patient perceives it from the next second on."""
        try:
            self._positions = np.asarray(self.scenario.positions(state), dtype=np.int64)
        except ValueError as e:
            raise ConfigError(f"the simulated patient cannot see this scene: {e}") from e

    async def go_quiet(self, seconds: float) -> None:
        """Force a link loss of ``seconds`` from the next sample on (for tests of the consumer)."""
        self._quiet_until_s = float(self.sim.patient.t_s[0]) + float(seconds)

    def truth(self) -> dict[str, float]:
        """Ground truth now (for tests and evaluation): fear and the fear-driven rise (bpm)."""
        return {"fear": float(self.sim.fear()[0]), "arousal_bpm": float(self.sim.arousal_bpm()[0])}

    async def _run(self) -> None:
        clock = self.clock
        self.t_origin = t0 = clock.now()
        self._emit_status(SourceState.CONNECTED, "simulated strap")
        self._emit_info(DeviceInfo(t0, name="simulated strap", address="sim", battery_pct=100, body_location="chest", source=self.name))
        link_down = False
        while True:
            step = self.sim.step(self._positions[None, :])
            f = step.frames
            samples = iter(frames_to_samples(f, 0, source=self.name, t_offset=t0))  # the present slots
            for s in range(f.n_slots):
                t = t0 + float(f.t_s[s, 0])
                while clock.now() < t:  # a real sleep may wake a hair early: never run ahead
                    await clock.sleep(t - clock.now())
                down = bool(f.disconnected[s, 0]) or float(f.t_s[s, 0]) <= self._quiet_until_s
                if down and not link_down:
                    link_down = True
                    self._emit_status(SourceState.DISCONNECTED, "simulated link loss", t=t)
                elif not down and link_down:
                    link_down = False
                    self._emit_status(SourceState.CONNECTED, "simulated strap reconnected", t=t)
                if f.present[s, 0]:
                    sample = next(samples)
                    if not down:
                        self._emit_sample(sample)
            if step.trace.aborted_now[0] and not self.aborted:
                self.aborted = True
                if self.on_abort is not None:
                    try:
                        self.on_abort()
                    except Exception:  # the session's callback must not stop the strap
                        log.exception("on_abort failed")


def open_sim_source(
    arg: str | None = None,
    *,
    clock: Clock | None = None,
    scenario: Scenario | str | None = None,
    **options: Any,
) -> SimulatedStrapSource:
    """Factory for the source registry: ``sim`` or ``sim:SCENARIO`` (a shipped id or a path)."""
    sc = scenario if scenario is not None else arg
    if sc is None:
        raise ConfigError("the sim source needs a scenario: pass scenario=... or use sim:SCENARIO")
    return SimulatedStrapSource(sc, clock=clock if clock is not None else MonotonicClock(), **options)
