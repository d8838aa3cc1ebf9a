"""Wiring a live session from options: clock, heart-rate source, headset, policy, store, report.

``exposure-ctrl run`` builds a :class:`LiveSession` and runs it (under a terminal view and the
console); so do the tests. Everything a
session holds (sockets, the strap, the store writer) is opened here with ``async with`` and
closed here, whatever happens.

The embedded default (no options) is a complete simulated session of the default scenario: a
simulated patient behind the simulated strap, the reference headset over real loopback ZeroMQ,
the shipped policy, an accelerated clock, the store in the user's data folder, and a review
report at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from exposure_ctrl.clock import Clock, MonotonicClock, ScaledClock
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario import Scenario, resolve_scenario
from exposure_ctrl.session.runner import SessionResult, SessionRunner, SessionSettings
from exposure_ctrl.store import Mode, Outcome, Store, default_store_path, validate_patient_code

__all__ = ["RunOptions", "LiveSession", "PatientStream", "DEFAULT_SCENARIO", "DEFAULT_SPEED"]

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = "spider"
DEFAULT_SPEED = 60.0
"""Clock speed of a simulated session when none is given: a 20-minute session in 20 s."""

SIMULATED_SENSORS = ("sim", "replay", "virtual-ble")


@dataclasses.dataclass
class RunOptions:
    """Everything ``exposure-ctrl run`` takes (see ``exposure-ctrl run --help``)."""

    scenario: str = DEFAULT_SCENARIO
    patient: str = "DEMO-001"
    policy: str | None = None
    mode: str = "autonomous"
    sensor: str = "sim"
    device: str | None = None
    headset: str = "emulator"
    bind: str | None = None
    insecure: bool = False
    curve_dir: Path | None = None
    speed: float | None = None
    seed: int | None = None
    cohort: str | None = None
    sim_sensor: str = "strap"  # with --sensor sim: strap, strap-flaky, ideal, wrist
    duration_s: float | None = None
    baseline_s: float | None = None
    store: Path | None = None
    report: bool = True
    report_out: Path | None = None
    accept_poor_baseline: bool = False
    interactive: bool = False
    transition_s: float = 1.0


def _sensor_kind(sensor: str) -> str:
    return sensor.split(":", 1)[0]


def check_speed(opts: RunOptions) -> None:
    """``--speed`` other than 1 needs a simulated or replayed heart rate."""
    if _sensor_kind(opts.sensor) not in SIMULATED_SENSORS and opts.speed is not None and opts.speed != 1.0:
        raise ConfigError(
            f"--speed only works with a simulated or replayed heart rate (--sensor sim or "
            f"replay:FILE); a real strap ({opts.sensor}) runs in real time"
        )


def make_clock(opts: RunOptions) -> Clock:
    check_speed(opts)
    kind = _sensor_kind(opts.sensor)
    if kind in SIMULATED_SENSORS:
        return ScaledClock(opts.speed if opts.speed is not None else (1.0 if kind == "replay" else DEFAULT_SPEED))
    return MonotonicClock()


def _scenario_for_run(sc: Scenario, opts: RunOptions) -> Scenario:
    if opts.baseline_s is None:
        return sc
    return sc.with_timing(baseline_s=float(opts.baseline_s))


class PatientStream:
    """A simulated patient's heartbeat for the virtual BLE strap (``--sensor virtual-ble``).

    The same patient model as ``--sensor sim``, but its notifications travel through bumble and
    the real bleak API: a full rehearsal of the BLE path without a radio. The patient perceives
    the scene the headset acknowledged (:meth:`perceive`).
    """

    def __init__(self, sc: Scenario, *, seed: int | None, cohort: str | None, on_abort: Callable[[], None] | None) -> None:
        import numpy as np

        from exposure_ctrl.sim.cohorts import cohort_for, sample_patients
        from exposure_ctrl.sim.simulator import Simulator

        rng = np.random.default_rng(seed)
        params = sample_patients(sc, cohort_for(sc, cohort), [int(rng.integers(0, 2**31))], split="train")
        self.sc = sc
        self.positions = np.asarray(sc.positions(sc.safe_state), dtype=np.int64)
        self.sim = Simulator(sc, params, rng=rng, sensor="ideal", positions=self.positions, period_s=1.0)
        self.on_abort = on_abort
        self.aborted = False

    def perceive(self, state: Any) -> None:
        import numpy as np

        self.positions = np.asarray(self.sc.positions(state), dtype=np.int64)

    def __iter__(self) -> Any:
        from exposure_ctrl.sim.sensors import frames_to_samples

        while True:
            step = self.sim.step(self.positions[None, :])
            for sample in frames_to_samples(step.frames, 0):
                yield sample.bpm, sample.rr_ms, sample.contact
            if step.trace.aborted_now[0] and not self.aborted:
                self.aborted = True
                if self.on_abort is not None:
                    self.on_abort()


def warm_kernels(sc: Scenario, *, simulated: bool) -> None:
    """Load (or compile, on a fresh install) the numba kernels of the per-sample and per-decision
    path with the argument types the session passes: the features and the response model, the
    observation, the shield and its inputs and, for a simulated patient (``simulated``), the
    simulator (one sensor stands for all: the sensor kind is a value, not an argument type).
    ``tests/session/test_warm.py`` checks in a fresh process that a session compiles nothing more."""
    import numpy as np

    from exposure_ctrl.arousal.tracker import ArousalTracker
    from exposure_ctrl.safety import ShieldConfig, ShieldState, shield_step
    from exposure_ctrl.sim.batch import safety_inputs
    from exposure_ctrl.sim.observation import ObservationLayout

    start = np.asarray(sc.positions(sc.safe_state), dtype=np.int64)
    tracker = ArousalTracker(sc, n=1)  # the first tracker of a process loads every arousal kernel
    raw = tracker.features.observe(0.0)
    inputs = safety_inputs(raw, tracker.features.hr, start[None, :], np.array([0.0]))
    shield_step(ShieldConfig.from_scenario(sc), sc, ShieldState.initial(1), inputs, np.zeros(1, dtype=np.int64), 0.0)
    layout = ObservationLayout(sc, tracker.observation_names, tracker.observation_scales)
    layout.build(np.zeros((1, len(tracker.observation_names))), start[None, :].astype(np.float64), np.array([0.0]))
    if simulated:
        from exposure_ctrl.sim.cohorts import cohort_for, sample_patients
        from exposure_ctrl.sim.simulator import Simulator

        params = sample_patients(sc, cohort_for(sc, None), [0], split="train")
        sim = Simulator(sc, params, rng=np.random.default_rng(0), sensor="ideal", positions=start[None, :], period_s=1.0)
        sim.step(start[None, :])


class LiveSession:
    """Holds the pieces of one session while it runs (for views that want them)."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.scenario = _scenario_for_run(resolve_scenario(opts.scenario), opts)
        self.patient = validate_patient_code(opts.patient)  # pseudonyms only (invariant 4)
        self.mode = Mode.parse(opts.mode, "mode")
        from exposure_ctrl.sensors.source import parse_source_spec

        parse_source_spec(opts.sensor)  # an unknown source is refused before anything is recorded
        if opts.headset not in ("emulator", "listen"):
            raise ConfigError(f"--headset is 'emulator' or 'listen', found {opts.headset!r}")
        if opts.headset == "listen" and not opts.bind:
            raise ConfigError("--headset listen needs --bind tcp://HOST:PORT (e.g. tcp://127.0.0.1:5556)")
        check_speed(opts)  # before the slow loading below
        from exposure_ctrl.policy import load_policy

        self.loaded_policy = load_policy(opts.policy, self.scenario)
        if getattr(self.loaded_policy, "simulation_only", False) and _sensor_kind(opts.sensor) != "sim":
            raise ConfigError(f"policy {self.loaded_policy.id!r} needs the simulated patient (--sensor sim)")
        # Everything slow to start (the policy's torch, the compiled kernels' first calls) happens
        # before the clock starts: at --speed 60, a 0.3 s pause would be 18 simulated seconds
        # without a heart rate, and the shield would rightly go safe.
        warm_kernels(self.scenario, simulated=_sensor_kind(opts.sensor) in ("sim", "virtual-ble"))
        self.clock = make_clock(opts)
        self.runner: SessionRunner | None = None
        self.emulator: Any = None
        self.endpoint: Any = None
        self.source: Any = None
        self.store_path = Path(opts.store) if opts.store else default_store_path()
        self.report_path: Path | None = None
        self.result: SessionResult | None = None

    async def run(self, on_start: Callable[["LiveSession"], Awaitable[None] | None] | None = None) -> SessionResult:
        from unity_bridge.emulator import HeadsetEmulator
        from unity_bridge.endpoint import ControllerEndpoint
        from unity_bridge.security import CurveServer

        from exposure_ctrl.sensors.source import open_source

        opts, sc = self.opts, self.scenario
        settings = SessionSettings(
            patient=self.patient,
            mode=self.mode,
            duration_s=opts.duration_s,
            transition_s=opts.transition_s,
            accept_poor_baseline=opts.accept_poor_baseline,
            interactive=opts.interactive,
            sensor=opts.sensor,
            headset=opts.headset,
            policy=self.loaded_policy.id,
            speed=self.clock.speed if self.clock.speed != float("inf") else None,
            seed=opts.seed,
        )
        store = Store.open(self.store_path, create=True)
        try:
            writer = store.begin_session(
                patient=self.patient,
                scenario=sc,
                mode=self.mode,
                policy_id=self.loaded_policy.id,
                policy_sha256=self.loaded_policy.sha256,
                seed=opts.seed,
                settings=settings.record() | {"cohort": opts.cohort, "bind": opts.bind},
                started_at=self.clock.wall(),
                t_origin=self.clock.now(),
            )
        finally:
            store.close()
        curve = None
        if opts.curve_dir is not None:
            curve = CurveServer.from_dir(opts.curve_dir)
        bind = opts.bind or "tcp://127.0.0.1:*"
        endpoint = ControllerEndpoint(
            bind,
            session_id=str(writer.session_id),
            scenario_id=sc.id,
            parameters=list(sc.parameter_ids),
            initial_state=sc.safe_state,
            safe_state=sc.safe_state,
            curve=curve,
            insecure=opts.insecure,
        )
        self.endpoint = endpoint
        kind = _sensor_kind(opts.sensor)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(writer.aclose)
            try:
                await stack.enter_async_context(endpoint)
                on_abort = None
                if opts.headset == "emulator":
                    emulator = HeadsetEmulator(endpoint.address, parameters=list(sc.parameter_ids), client="reference-emulator")
                    self.emulator = await stack.enter_async_context(emulator)
                    on_abort = self._patient_removes_headset  # the simulated patient takes it off
                perceive = None
                source_options: dict[str, Any] = {}
                if kind == "sim":
                    source_options = {
                        "scenario": sc, "seed": opts.seed, "cohort": opts.cohort,
                        "sensor": opts.sim_sensor, "on_abort": on_abort,
                    }
                elif kind == "virtual-ble":
                    stream = PatientStream(sc, seed=opts.seed, cohort=opts.cohort, on_abort=on_abort)
                    source_options = {"stream": stream, "seed": opts.seed}
                    perceive = stream.perceive
                source = open_source(opts.sensor, clock=self.clock, **source_options)
                self.source = await stack.enter_async_context(source)
            except BaseException as e:
                # Nothing ran, but the session exists in the store: record why it ended.
                writer.end(self.clock.now(), Outcome.SAFETY, f"the session could not start: {e}")
                raise
            perceive = perceive or getattr(self.source, "perceive", None)
            self.runner = SessionRunner(
                scenario=sc,
                clock=self.clock,
                source=self.source,
                endpoint=endpoint,
                policy=self.loaded_policy.policy,
                writer=writer,
                settings=settings,
                on_acked_state=perceive,
            )
            if on_start is not None:
                maybe = on_start(self)
                if asyncio.iscoroutine(maybe):
                    await maybe
            self.result = await self.runner.run()
        if opts.report:
            from exposure_ctrl.report.review import write_review

            with Store.open(self.store_path, create=False) as st:
                self.report_path = write_review(st, self.result.session_id, opts.report_out)
        return self.result

    def _patient_removes_headset(self) -> None:
        """The simulated patient aborts: the headset reports it, as a real one would."""
        if self.emulator is not None:
            asyncio.get_running_loop().create_task(self.emulator.send_event("removed"))

