"""The live session: heart rate in, graded scene changes out, everything recorded.

:class:`SessionRunner` owns one session from baseline to the end. It consumes three streams on
one asyncio loop and decides on the session clock:

- the heart-rate source (:mod:`exposure_ctrl.sensors.source`): every sample goes through the
  artifact filter and the features (:class:`~exposure_ctrl.arousal.tracker.ArousalTracker`) and
  into the store; a sample that crosses a decision time triggers the decision at once, so the
  scene command follows the sample that informed it;
- the headset (:class:`unity_bridge.endpoint.ControllerEndpoint` events): acks, panic, SUDS,
  removal, loss;
- therapist commands (:class:`~exposure_ctrl.session.commands.TherapistCommand` on
  :attr:`SessionRunner.commands`), executed at once.

Phases: **baseline** (safe scene; the resting heart rate is measured) → **exposure** (decisions
every ``decision_period_s``: observation → policy → shield → scene) → **recovery** (safe scene
until heart rate is back near baseline or ``recovery_s`` passed) → **ended**, with an outcome:
``completed``, ``therapist_ended``, ``aborted_by_patient`` or ``safety``.

Modes: *autonomous* (the policy acts; the therapist may override), *advisory* (the policy
proposes; the therapist accepts or rejects), *manual* (the therapist drives; the policy only
suggests). In every mode the shield filters every change and the therapist comes first.

A decision is also taken without samples (a watchdog wakes up when no sample came), so a
silent strap is noticed: the shield sees the stale signal, blocks escalation and goes safe after
``blind_safe_after_s``.

Observers (the terminal view, the web console) read :attr:`SessionRunner.snapshot`, refreshed on
every event; they never block the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from exposure_ctrl.arousal.features import FEATURE_NAMES, N_FEATURES, Feature
from exposure_ctrl.arousal.tracker import ArousalTracker
from exposure_ctrl.clock import Clock
from exposure_ctrl.errors import SessionStateError
from exposure_ctrl.policy.base import Policy
from exposure_ctrl.policy.navigate import action_toward, climb_target, descend_target
from exposure_ctrl.safety import (
    NO_COMMAND,
    THERAPIST_SAFE,
    Reason,
    SafetyInputs,
    ShieldConfig,
    ShieldState,
    resume,
    shield_step,
)
from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.sensors.source import DeviceInfo, Gap, SourceState, SourceStatus
from exposure_ctrl.sim.batch import safety_inputs
from exposure_ctrl.sim.observation import ObservationLayout
from exposure_ctrl.session.commands import CommandKind, TherapistCommand
from exposure_ctrl.store.records import GapKind, Mode, Outcome, Phase, Response, SudsSource, Trigger
from exposure_ctrl.store.writer import SessionWriter
from unity_bridge import events as bev

__all__ = ["SessionSettings", "SessionRunner", "Snapshot", "SessionResult"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """What a session was asked to do (recorded in the store as the session's settings)."""

    patient: str
    mode: Mode = Mode.AUTONOMOUS
    duration_s: float | None = None  # cap on the exposure phase (None: the scenario's maximum)
    transition_s: float = 1.0  # scene transition time sent to the headset
    accept_poor_baseline: bool = False  # start exposure on a poor baseline without asking
    interactive: bool = True  # someone can confirm a poor baseline / resume after a safe stop
    latched_end_after_s: float = 120.0  # a safe stop nobody resumes ends the session (safety)
    baseline_extensions: int = 1  # a poor baseline is measured again this many times first
    removed_abort_after_s: float = 30.0  # headset off this long: the patient aborted
    recovery_settle_s: float = 30.0  # back near baseline this long ends recovery
    model_record_every_s: float = 30.0
    sensor: str = ""
    headset: str = ""
    policy: str = ""
    speed: float | None = None
    seed: int | None = None

    def record(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["mode"] = Mode.parse(self.mode, "mode").value
        return d


@dataclasses.dataclass
class Snapshot:
    """What a view shows; refreshed by the runner on every event. Read-only for views."""

    t: float = 0.0
    phase: str = Phase.BASELINE.value
    phase_started_t: float = 0.0
    mode: str = Mode.AUTONOMOUS.value
    paused: bool = False
    latched: bool = False
    latch_reason: str = ""
    baseline_bpm: float | None = None
    baseline_verdict: str = ""
    awaiting_baseline_confirmation: bool = False
    hr_bpm: float | None = None
    hr_above_bpm: float | None = None
    rmssd_ms: float | None = None
    since_clean_s: float | None = None
    hr_history: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=600))
    state: dict = dataclasses.field(default_factory=dict)
    shown_state: dict = dataclasses.field(default_factory=dict)
    intensity: float = 0.0
    hierarchy_index: int = -1
    last_policy_action: str = ""
    last_policy_reason: str = ""
    pending_proposal: str = ""
    last_shield: str = ""
    last_intervention: str = ""
    sensor_status: str = "connecting"
    headset_status: str = "waiting"
    alarms: list = dataclasses.field(default_factory=list)
    suds: int | None = None
    suds_history: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=500))  # (t, value, source)
    sensitivities: list = dataclasses.field(default_factory=list)
    outcome: str = ""
    end_reason: str = ""
    messages: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=50))
    n_messages: int = 0  # messages ever added (views print the new ones)


@dataclasses.dataclass(frozen=True)
class SessionResult:
    session_id: int
    outcome: Outcome
    reason: str
    exposure_s: float
    hierarchy_index: int
    n_samples: int
    n_scene_changes: int


class SessionRunner:
    """One session; see the module docstring. Use :meth:`run` once."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        clock: Clock,
        source: Any,
        endpoint: Any,
        policy: Policy,
        writer: SessionWriter,
        settings: SessionSettings,
        on_acked_state: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.sc = scenario
        self.clock = clock
        self.source = source
        self.endpoint = endpoint
        self.policy = policy
        self.writer = writer
        self.settings = settings
        self.mode = Mode.parse(settings.mode, "mode")
        self.on_acked_state = on_acked_state
        self.commands: asyncio.Queue[TherapistCommand] = asyncio.Queue()
        self.snapshot = Snapshot(mode=self.mode.value)

        self.tracker = ArousalTracker(scenario, n=1, positions=scenario.positions(scenario.safe_state))
        # The very observation the gym builds (DESIGN.md invariant 6).
        self.layout = ObservationLayout(scenario, self.tracker.observation_names, self.tracker.observation_scales)
        self.shield_cfg = ShieldConfig.from_scenario(scenario)
        self.shield = ShieldState.initial(1)
        self.safe_pos = np.asarray(scenario.positions(scenario.safe_state), dtype=np.int64)
        self.positions = self.safe_pos.copy()

        self.phase = Phase.BASELINE
        self.phase_t = 0.0
        self.exposure_start_t: float | None = None
        self.last_change_t = 0.0
        self.last_decision_t: float | None = None
        self.next_decision_t = math.inf
        self.paused = False
        self.awaiting_baseline = False
        self.baseline_t0 = 0.0  # start of the current baseline measurement
        self.baseline_extended = 0
        self.pending: tuple[int, int, str] | None = None  # (decision id, action, reason)
        self.headset_lost_since: float | None = None
        self.headset_gap: int | None = None
        self.removed_since: float | None = None
        self.latched_since: float | None = None
        self.near_baseline_since: float | None = None
        self.last_model_record_t = -math.inf
        self.max_hierarchy_index = -1
        self.n_samples = 0
        self.n_scene_changes = 0
        self.scene_ids: dict[int, int] = {}  # endpoint scene seq → store scene id
        self.sensor_gap: int | None = None
        self.outcome: Outcome | None = None
        self.end_reason = ""
        self._end_requested: tuple[Outcome, str] | None = None
        self._lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._t_seen = -math.inf  # latest time given to the tracker (see _monotone)
        self._sample_arrival: float | None = None
        self._features_at: tuple[float, np.ndarray] | None = None  # (t, features) of this decision
        self._lag_warned = False
        self.sample_to_scene_s: collections.deque[float] = collections.deque(maxlen=100_000)
        """Real seconds from the arrival of the sample that triggered a decision to its scene
        command being on the wire (for the benchmark and the health display)."""

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> SessionResult:
        """Run the session to its end; returns the outcome. Records everything on the way."""
        t0 = self.clock.now()
        self._enter_phase(t0, Phase.BASELINE, "session started")
        self.tracker.begin_baseline(t0)
        self.baseline_t0 = t0
        self.tracker.set_scene(t0, self.positions)
        self.last_change_t = t0
        self.next_decision_t = t0 + self.sc.timing.decision_period_s
        self._set_state_snapshot()
        loops = {
            "sensor": self._sensor_loop(),
            "headset": self._headset_loop(),
            "commands": self._command_loop(),
            "watchdog": self._watchdog_loop(),
        }
        self._tasks = [asyncio.create_task(c, name=f"session-{n}") for n, c in loops.items()]
        try:
            done_wait = asyncio.create_task(self._done.wait())
            await asyncio.wait([done_wait, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            done_wait.cancel()
            for task in self._tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            # Stop the loops. They also check _stopping after every event: on Python < 3.12 a
            # cancellation that races with a result inside asyncio.wait_for can be swallowed, and
            # a loop that missed its cancel must still end. The wait is bounded either way.
            self._stopping = True
            for task in self._tasks:
                task.cancel()
            _, pending = await asyncio.wait(self._tasks, timeout=5.0)
            for task in pending:
                log.error("session loop %s did not stop within 5 s; abandoning it", task.get_name())
            if self.phase is not Phase.ENDED:
                # Ended from outside: request_end (recorded as asked), or Ctrl-C / a crash of a
                # loop (recorded as a safety stop). The headset goes safe either way.
                t = self._monotone(self.clock.now())
                if self._end_requested is not None:
                    self.outcome, self.end_reason = self._end_requested
                else:
                    self.outcome, self.end_reason = Outcome.SAFETY, "the controller stopped unexpectedly"
                with contextlib.suppress(Exception):
                    await self.endpoint.send_safe("controller stopping")
                with contextlib.suppress(Exception):
                    self._enter_phase(t, Phase.ENDED, self.end_reason)
                self.writer.end(t, self.outcome, self.end_reason)
                self.snapshot.outcome, self.snapshot.end_reason = self.outcome.value, self.end_reason
        exposure = 0.0
        if self.exposure_start_t is not None:
            exposure = self.snapshot.t - self.exposure_start_t
        return SessionResult(
            session_id=self.writer.session_id,
            outcome=self.outcome,
            reason=self.end_reason,
            exposure_s=max(0.0, exposure),
            hierarchy_index=self.max_hierarchy_index,
            n_samples=self.n_samples,
            n_scene_changes=self.n_scene_changes,
        )

    def request_end(self, outcome: Outcome, reason: str) -> None:
        """End from outside (e.g. Ctrl-C): recovery is skipped, everything is recorded."""
        self._end_requested = (outcome, reason)
        self._done.set()

    # --- loops ---------------------------------------------------------------------------------

    async def _sensor_loop(self) -> None:
        async for event in self.source:
            if self._stopping:
                return
            t = self.clock.now()
            if isinstance(event, HeartSample):
                await self._on_sample(event)
            elif isinstance(event, SourceStatus):
                self._on_status(event)
            elif isinstance(event, Gap):
                gap = self.writer.gap_start(event.start, GapKind.SENSOR, event.reason)
                self.writer.gap_end(gap, event.end)
            elif isinstance(event, DeviceInfo):
                self.writer.sensor_event(
                    t,
                    "device",
                    {"name": event.name, "address": event.address, "battery_pct": event.battery_pct},
                )
            if self.phase is Phase.ENDED:
                return
        # A recording ran out: the session cannot see any more.
        t = self.clock.now()
        self.writer.sensor_event(t, "ended", {"detail": "the heart-rate source has no more samples"})
        self._message("heart-rate source ended")
        async with self._lock:
            await self._finish_exposure(t, Outcome.COMPLETED, "the heart-rate recording ended", skip_recovery=True)

    async def _headset_loop(self) -> None:
        async for ev in self.endpoint.events():
            if self._stopping:
                return
            async with self._lock:
                await self._on_headset(ev)
            if self.phase is Phase.ENDED:
                return

    async def _command_loop(self) -> None:
        while not self._stopping:
            cmd = await self.commands.get()
            if self._stopping:
                return
            async with self._lock:
                await self._on_command(cmd)
            if self.phase is Phase.ENDED:
                return

    async def _watchdog_loop(self) -> None:
        period = self.sc.timing.decision_period_s
        while self.phase is not Phase.ENDED and not self._stopping:
            await self.clock.sleep(period / 4)
            t = self.clock.now()
            # Decide without a sample when none came a little after the decision time.
            if t >= self.next_decision_t + period / 4:
                async with self._lock:
                    await self._step(t)

    # --- heart rate ----------------------------------------------------------------------------

    async def _on_sample(self, s: HeartSample) -> None:
        self._sample_arrival = time.perf_counter()
        lag = self.clock.now() - s.t
        if lag > self.sc.safety.stale_after_s / 2 and self.clock.speed > 1 and not self._lag_warned:
            self._lag_warned = True
            self._message(
                f"samples arrive {lag:.1f} s late: this machine cannot keep up with clock speed "
                f"{self.clock.speed:g}; use a lower --speed (the shield treats late data as stale)"
            )
        flags = self.tracker.add(s)
        self._features_at = None
        rec = s.with_flags(flags) if flags else s
        self.writer.sample(rec)
        self.n_samples += 1
        snap = self.snapshot
        if s.bpm and not flags:
            snap.hr_history.append((s.t, float(s.bpm)))
        if s.t >= self.next_decision_t:
            async with self._lock:
                await self._step(s.t)
        self._sample_arrival = None

    def _on_status(self, st: SourceStatus) -> None:
        self.writer.sensor_event(st.t, st.state.value, {"detail": st.detail})
        self.snapshot.sensor_status = st.state.value
        if st.state in (SourceState.STALE, SourceState.DISCONNECTED):
            self._message(f"heart rate {st.state.value}: {st.detail}".strip(": "))

    # --- headset -------------------------------------------------------------------------------

    async def _on_headset(self, ev: Any) -> None:
        t = self._monotone(self.clock.now())
        snap = self.snapshot
        if isinstance(ev, bev.HeadsetConnected):
            self.writer.headset_event(t, "connected", {"client": ev.client})
            self.headset_lost_since = None
            if self.headset_gap is not None:
                self.writer.gap_end(self.headset_gap, t)
                self.headset_gap = None
            snap.headset_status = f"connected ({ev.client})"
            snap.shown_state = dict(ev.state)
            self._perceive(ev.state)
        elif isinstance(ev, (bev.HeadsetLost, bev.Bye)):
            kind = "lost" if isinstance(ev, bev.HeadsetLost) else "bye"
            self.writer.headset_event(t, kind, {"client": ev.client})
            if self.headset_lost_since is None:
                self.headset_lost_since = t
                self.headset_gap = self.writer.gap_start(t, GapKind.HEADSET, kind)
            snap.headset_status = "LOST" if kind == "lost" else "left"
            self._message(f"headset {kind}: policy paused until it is back")
        elif isinstance(ev, bev.HeadsetReplaced):
            self.writer.headset_event(t, "replaced", {"old": ev.old_client, "new": ev.new_client})
        elif isinstance(ev, bev.SceneAcked):
            scene = self.scene_ids.get(ev.scene_seq)
            if scene is not None:
                self.writer.scene_acked(scene, t, rtt_ms=ev.rtt_s * 1000.0)
            snap.shown_state = dict(ev.state)
            self._perceive(ev.state)
        elif isinstance(ev, bev.Panic):
            self.writer.headset_event(t, "panic", {"reaction_ms": getattr(ev, "reaction_s", 0.0) * 1000})
            self._message("PANIC: the patient pressed stop; safe scene shown, policy paused")
            await self._shield_now(t, panic=True, already_safe=True)
            self.paused = True
        elif isinstance(ev, bev.Suds):
            self.writer.headset_event(t, "suds", {"value": ev.value})
            self._suds(t, int(ev.value), SudsSource.HEADSET, "patient")
        elif isinstance(ev, bev.Removed):
            self.writer.headset_event(t, "removed", {})
            self.removed_since = t
            self._message("the patient took the headset off")
            await self._shield_now(t, removed=True)
        elif isinstance(ev, bev.Worn):
            self.writer.headset_event(t, "worn", {})
            self.removed_since = None
            self._message("headset back on: resume when ready")
        elif isinstance(ev, bev.Gaze):
            self.writer.headset_event(t, "gaze", {"value": bool(ev.value)})

    def _perceive(self, state: Mapping[str, Any]) -> None:
        if self.on_acked_state is not None:
            try:
                self.on_acked_state(state)
            except Exception:  # a view or simulator must never stop the session
                log.exception("on_acked_state failed")

    # --- therapist -----------------------------------------------------------------------------

    async def _on_command(self, cmd: TherapistCommand) -> None:
        t = self._monotone(self.clock.now())
        kind = cmd.kind
        result = "done"
        if kind is CommandKind.SUDS:
            assert cmd.value is not None
            self._suds(t, cmd.value, SudsSource.THERAPIST, cmd.who)
        elif kind is CommandKind.NOTE:
            self.writer.note(t, cmd.text or "", cmd.who)
        elif kind is CommandKind.PAUSE:
            self.paused = True
            self.pending = None
        elif kind is CommandKind.RESUME:
            self.paused = False
            self.removed_since = None
            self.latched_since = None
            self.shield = resume(self.shield)
        elif kind is CommandKind.HOLD:
            self.last_change_t = t
            self.pending = None
            result = f"holding for {self.sc.timing.min_dwell_s:g} s"
        elif kind is CommandKind.CONFIRM_BASELINE:
            if self.awaiting_baseline:
                self.awaiting_baseline = False
                self.writer.note(t, "exposure started on a baseline of poor quality, confirmed", cmd.who)
                await self._start_exposure(t)
            else:
                result = "ignored: no baseline waits for confirmation"
        elif kind is CommandKind.END:
            if self.phase is Phase.RECOVERY:
                await self._end(t, self.outcome or Outcome.THERAPIST_ENDED, self.end_reason or "ended by the therapist")
            else:
                await self._finish_exposure(t, Outcome.THERAPIST_ENDED, f"ended by {cmd.who}")
        elif kind in (CommandKind.STEP_UP, CommandKind.STEP_DOWN, CommandKind.SAFE):
            result = await self._therapist_move(t, cmd)
        elif kind in (CommandKind.ACCEPT, CommandKind.REJECT):
            if self.pending is None:
                result = "ignored: no pending proposal"
            else:
                decision, action, reason = self.pending
                self.pending = None
                accepted = kind is CommandKind.ACCEPT
                self.writer.decision_response(
                    decision, t, Response.ACCEPTED if accepted else Response.REJECTED, cmd.who
                )
                if accepted:
                    result = await self._execute_policy_action(t, action, reason, accepted_by=cmd.who)
                else:
                    result = "rejected"
        self.writer.command(t, cmd.who, kind.value, _command_args(cmd), result)
        self._message(f"{cmd.who}: {cmd.describe()} → {result}")
        self._refresh(t)

    async def _therapist_move(self, t: float, cmd: TherapistCommand) -> str:
        if self.phase is not Phase.EXPOSURE:
            return f"ignored: scene changes only during exposure (now {self.phase.value})"
        if cmd.kind is CommandKind.SAFE:
            action = THERAPIST_SAFE
        elif cmd.parameter:
            try:
                action = self.sc.action_of(cmd.parameter, "up" if cmd.kind is CommandKind.STEP_UP else "down")
            except KeyError as e:
                return f"refused: {e.args[0]}"
        else:
            pos = self.positions[None, :]
            target = climb_target(self.sc, pos) if cmd.kind is CommandKind.STEP_UP else descend_target(self.sc, pos)
            action = int(action_toward(self.sc, pos, self.sc.hierarchy_positions[target])[0])
            if action == 0:
                return "nothing to change"
        verdict, reason = await self._decide_and_execute(
            t, proposed=0, therapist=action, who=cmd.who, policy_reason=None
        )
        if reason is Reason.THERAPIST:
            return "executed"
        return f"refused: {reason.text}"

    def _suds(self, t: float, value: int, source: SudsSource, who: str) -> None:
        self.tracker.set_suds(t, float(value))
        self._features_at = None
        self.writer.suds(t, value, source, who)
        self.snapshot.suds = value
        self.snapshot.suds_history.append((t, value, source.value))

    # --- deciding ------------------------------------------------------------------------------

    async def _step(self, t: float) -> None:
        """Called with the lock held when a decision is due."""
        t = self._monotone(t)
        if t < self.next_decision_t or self.phase is Phase.ENDED:
            return
        period = self.sc.timing.decision_period_s
        self.next_decision_t = max(self.next_decision_t + period, t + period / 2)
        if self._end_requested is not None:
            return
        if self.phase is Phase.BASELINE:
            if t - self.baseline_t0 >= self.sc.timing.baseline_s and not self.awaiting_baseline:
                await self._finish_baseline(t)
        elif self.phase is Phase.EXPOSURE:
            await self._exposure_decision(t)
        elif self.phase is Phase.RECOVERY:
            await self._recovery_check(t)
        self._refresh(t)

    async def _finish_baseline(self, t: float) -> None:
        base = self.tracker.finish_baseline(t, apply=False)
        rec = base.record(0)
        good = bool(base.good[0])
        if not good and self.baseline_extended < self.settings.baseline_extensions:
            # As a clinician would: the patient has not settled (or the signal was poor), so
            # measure again before asking anyone to accept a poor baseline.
            self.baseline_extended += 1
            self.writer.note(t, f"baseline extended by {self.sc.timing.baseline_s:g} s: {base.describe(0)}", "system")
            self._message(f"baseline not good yet ({base.describe(0)}): measuring again")
            self.tracker.begin_baseline(t)
            self.baseline_t0 = t
            return
        if math.isfinite(base.bpm[0]):
            self.tracker.set_baseline(base.bpm, rmssd_ms=base.rmssd_ms, mask=np.isfinite(base.bpm))
        self.snapshot.baseline_bpm = float(base.bpm[0]) if math.isfinite(base.bpm[0]) else None
        self.snapshot.baseline_verdict = base.describe(0)
        if math.isfinite(base.bpm[0]):
            sd = float(base.sd_bpm[0]) if math.isfinite(base.sd_bpm[0]) else 0.0
            self.writer.baseline(t, float(base.bpm[0]), sd, float(np.clip(base.clean_frac[0], 0, 1)), int(base.n_samples[0]))
        self.writer.note(t, f"baseline: {base.describe(0)}", "system")
        log.info("baseline: %s (%s)", base.describe(0), rec)
        if good or self.settings.accept_poor_baseline:
            await self._start_exposure(t)
        elif self.settings.interactive:
            self.awaiting_baseline = True
            self.snapshot.awaiting_baseline_confirmation = True
            self._message("baseline of poor quality: confirm to start exposure, or end")
        else:
            await self._end(t, Outcome.SAFETY, "baseline of poor quality and nobody to confirm it")

    async def _start_exposure(self, t: float) -> None:
        self.snapshot.awaiting_baseline_confirmation = False
        self._enter_phase(t, Phase.EXPOSURE, "baseline done")
        self.exposure_start_t = t
        start = np.asarray(self.sc.positions(self.sc.start), dtype=np.int64)
        await self._change_scene(t, start, Trigger.SYSTEM, "system", "exposure starts at the scenario's start state")
        self.policy.reset(1)
        self.next_decision_t = t + self.sc.timing.decision_period_s

    def _exposure_limit_s(self) -> float:
        cap = self.sc.timing.exposure_max_s
        if self.settings.duration_s is not None:
            cap = min(cap, self.settings.duration_s)
        return cap

    async def _exposure_decision(self, t: float) -> None:
        assert self.exposure_start_t is not None
        if t - self.exposure_start_t >= self._exposure_limit_s():
            await self._finish_exposure(t, Outcome.COMPLETED, "exposure time completed")
            return
        if self.removed_since is not None and t - self.removed_since >= self.settings.removed_abort_after_s:
            await self._finish_exposure(t, Outcome.ABORTED_BY_PATIENT, "the patient took the headset off and kept it off")
            return
        if self.latched_since is not None and t - self.latched_since >= self.settings.latched_end_after_s:
            await self._finish_exposure(t, Outcome.SAFETY, f"safe stop not resumed within {self.settings.latched_end_after_s:g} s")
            return
        raw = self.tracker.tick(t)  # teaches the model; unscaled features + estimates
        self._features_at = (t, raw[:, :N_FEATURES])
        obs = self.layout.build(
            raw / self.tracker.observation_scales,
            self.positions[None, :].astype(np.float64),
            np.array([t - self.exposure_start_t]),
        )
        mask = self.sc.action_mask(self.positions)[None, :]
        actions, reasons = self.policy.act(obs, mask)
        proposal, why = int(actions[0]), str(reasons[0])
        self.snapshot.last_policy_action = self.sc.describe_action(proposal, self.positions)
        self.snapshot.last_policy_reason = why
        if t - self.last_model_record_t >= self.settings.model_record_every_s:
            self._record_model(t)
        if self.mode is Mode.AUTONOMOUS and not self.paused:
            await self._decide_and_execute(t, proposed=proposal, therapist=NO_COMMAND, who="policy", policy_reason=why)
        else:
            # The policy only proposes: hold, but let the shield run its safety rules.
            decision, _ = await self._decide_and_execute(
                t, proposed=0, therapist=NO_COMMAND, who="policy", policy_reason=why, proposal_only=proposal
            )
            if self.mode is Mode.ADVISORY and not self.paused and proposal != 0 and self.pending is None:
                self.pending = (decision, proposal, why)
                self.snapshot.pending_proposal = f"{self.sc.describe_action(proposal, self.positions)}: {why}"

    async def _execute_policy_action(self, t: float, action: int, reason: str, accepted_by: str) -> str:
        _, r = await self._decide_and_execute(
            t, proposed=action, therapist=NO_COMMAND, who=f"policy (accepted by {accepted_by})", policy_reason=reason, dt=0.0
        )
        return "executed" if r is Reason.NONE else f"shield: {r.text}"

    def _features(self, t: float) -> np.ndarray:
        """The unscaled features (1, N_FEATURES) at ``t``, computed once per decision."""
        if self._features_at is not None and self._features_at[0] == t:
            return self._features_at[1]
        raw = self.tracker.features.observe(t)
        self._features_at = (t, raw)
        return raw

    def _safety_inputs(self, t: float, panic: bool = False, removed: bool = False) -> SafetyInputs:
        """The shield's inputs, built by the very function the gym uses (no train/serve skew),
        plus what only a live session has: the headset link, panic and removal."""
        raw = self._features(t)
        base = safety_inputs(raw, self.tracker.features.hr, self.positions[None, :], np.array([t - self.last_change_t]))
        lost = 0.0 if self.headset_lost_since is None else max(t - self.headset_lost_since, 1e-3)
        return dataclasses.replace(
            base,
            headset_lost_s=np.array([lost]),
            panic=np.array([panic]),
            removed=np.array([removed]),
        )

    async def _decide_and_execute(
        self,
        t: float,
        *,
        proposed: int,
        therapist: int,
        who: str,
        policy_reason: str | None,
        proposal_only: int | None = None,
        dt: float | None = None,
        panic: bool = False,
        removed: bool = False,
        already_safe: bool = False,
    ) -> tuple[int, Reason]:
        """Shield the proposal (and any therapist command), execute, record. Returns the store's
        decision id and the shield's reason."""
        if dt is None:
            dt = 0.0 if self.last_decision_t is None else max(0.0, t - self.last_decision_t)
            if therapist == NO_COMMAND and not (panic or removed):
                self.last_decision_t = t
        inputs = self._safety_inputs(t, panic=panic, removed=removed)
        verdict, self.shield = shield_step(
            self.shield_cfg, self.sc, self.shield, inputs, np.array([proposed]), dt, np.array([therapist])
        )
        action, go_safe, reason = int(verdict.action[0]), bool(verdict.go_safe[0]), Reason(int(verdict.reason[0]))
        shown_proposal = proposed if proposal_only is None else proposal_only
        executed_label = "safe state" if go_safe else self.sc.describe_action(action, self.positions)
        if reason is Reason.NONE:
            verdict_word = "allow"
        elif reason is Reason.THERAPIST:
            verdict_word = "therapist"
        elif go_safe:
            verdict_word = "safe"
        elif action != 0:
            verdict_word = "replace"
        else:
            verdict_word = "block"
        decision = self.writer.decision(
            t,
            mode=self.mode,
            phase=self.phase,
            verdict=verdict_word,
            observation=dict(zip(FEATURE_NAMES, self._features(t)[0].tolist())),
            proposed_action=shown_proposal if therapist == NO_COMMAND else therapist,
            proposed_label=(
                self.sc.describe_action(shown_proposal, self.positions)
                if therapist == NO_COMMAND
                else ("safe state" if therapist == THERAPIST_SAFE else self.sc.describe_action(therapist, self.positions))
            ),
            proposal_reason=policy_reason if therapist == NO_COMMAND else f"command by {who}",
            verdict_reason=reason.code,
            executed_action=0 if go_safe else action,
            executed_label=executed_label,
        )
        self.snapshot.last_shield = reason.text
        if reason.intervened:
            self.snapshot.last_intervention = f"{reason.text} (t={t - self.phase_t:.0f} s into {self.phase.value})"
        if self.shield.latched[0] and self.latched_since is None:
            self.latched_since = t
        trig = Trigger.THERAPIST if reason is Reason.THERAPIST else (Trigger.POLICY if reason is Reason.NONE else Trigger.SHIELD)
        if go_safe:
            await self._go_safe(t, trig, who if trig is Trigger.THERAPIST else "shield", reason.text, already_safe)
        elif action != 0:
            new = self.sc.apply_action(self.positions, action)
            text = policy_reason if trig is Trigger.POLICY else reason.text
            await self._change_scene(t, new, trig, who if trig is not Trigger.SHIELD else "shield", text or "")
        return decision, reason

    async def _shield_now(self, t: float, *, panic: bool = False, removed: bool = False, already_safe: bool = False) -> None:
        if self.phase is not Phase.EXPOSURE:
            if not already_safe:
                await self.endpoint.send_safe("panic" if panic else "removed")
            return
        await self._decide_and_execute(
            t, proposed=0, therapist=NO_COMMAND, who="shield", policy_reason=None, dt=0.0,
            panic=panic, removed=removed, already_safe=already_safe,
        )

    async def _go_safe(self, t: float, trigger: Trigger, who: str, reason: str, already_safe: bool = False) -> None:
        self.positions = self.safe_pos.copy()
        if not already_safe:
            await self.endpoint.send_safe(reason)
        self.writer.scene_change(t, self.sc.safe_state, trigger=trigger, who=who, reason=reason, sent_t=t)
        self.n_scene_changes += 1
        self.tracker.set_scene(t, self.positions)
        self._features_at = None
        self.last_change_t = t
        self.pending = None
        self._perceive(self.sc.safe_state)
        self._set_state_snapshot()

    async def _change_scene(self, t: float, positions: np.ndarray, trigger: Trigger, who: str, reason: str) -> None:
        self.positions = np.asarray(positions, dtype=np.int64).copy()
        state = self.sc.state_at(self.positions)
        seq = await self.endpoint.send_scene(state, self._transition_real_s())
        if self._sample_arrival is not None and seq is not None:
            self.sample_to_scene_s.append(time.perf_counter() - self._sample_arrival)
        scene = self.writer.scene_change(
            t, state, trigger=trigger, who=who, reason=reason,
            sent_t=t if seq is not None else None, wire_seq=seq,
        )
        if seq is not None:
            self.scene_ids[seq] = scene
        self.n_scene_changes += 1
        self.tracker.set_scene(t, self.positions)
        self._features_at = None
        self.last_change_t = t
        self.pending = None
        self.snapshot.pending_proposal = ""
        self._set_state_snapshot()

    def _transition_real_s(self) -> float:
        """The headset runs in real time: a transition of ``transition_s`` session seconds
        lasts ``transition_s / speed`` real seconds on an accelerated clock."""
        speed = self.clock.speed
        if not math.isfinite(speed):
            return 0.0
        return self.settings.transition_s / max(speed, 1e-9)

    def _monotone(self, t: float) -> float:
        """Commands and headset events are stamped with the clock, decisions with the sample
        that triggered them, which can be a little older: the tracker's response model must
        never see its time go back (it raises), so a decision never takes a time before one
        already used."""
        self._t_seen = max(self._t_seen, t)
        return self._t_seen

    # --- ending --------------------------------------------------------------------------------

    async def _finish_exposure(self, t: float, outcome: Outcome, reason: str, skip_recovery: bool = False) -> None:
        if self.phase is Phase.ENDED:
            return
        self.outcome, self.end_reason = outcome, reason
        if self.phase is Phase.BASELINE or skip_recovery:
            await self._end(t, outcome, reason)
            return
        if self.phase is Phase.EXPOSURE:
            self._enter_phase(t, Phase.RECOVERY, reason)
            if not np.array_equal(self.positions, self.safe_pos):
                await self._go_safe(t, Trigger.SYSTEM, "system", "recovery: safe scene")
            self.near_baseline_since = None

    async def _recovery_check(self, t: float) -> None:
        raw = self._features(t)[0]
        near = self.sc.targets.arousal_window_bpm.low / 2
        if raw[Feature.STALE] < 0.5 and raw[Feature.HR_ABOVE_BPM] <= near:
            if self.near_baseline_since is None:
                self.near_baseline_since = t
        else:
            self.near_baseline_since = None
        settled = self.near_baseline_since is not None and t - self.near_baseline_since >= self.settings.recovery_settle_s
        if settled or t - self.phase_t >= self.sc.timing.recovery_s:
            await self._end(t, self.outcome or Outcome.COMPLETED, self.end_reason or "recovery done")

    async def _end(self, t: float, outcome: Outcome, reason: str) -> None:
        if self.phase is Phase.ENDED:
            return
        self.outcome, self.end_reason = outcome, reason
        self._enter_phase(t, Phase.ENDED, reason)
        self._record_model(t)
        with contextlib.suppress(Exception):
            await self.endpoint.end("session_over")
        self.writer.end(t, outcome, reason)
        self.snapshot.outcome = outcome.value
        self.snapshot.end_reason = reason
        self._refresh(t)
        self._done.set()

    # --- records and views ---------------------------------------------------------------------

    def _enter_phase(self, t: float, phase: Phase, reason: str) -> None:
        if phase is not Phase.ENDED and _PHASE_ORDER[phase] < _PHASE_ORDER[self.phase]:
            raise SessionStateError(
                f"cannot go from {self.phase.value} back to {phase.value}",
                current=self.phase.value,
                requested=phase.value,
            )
        self.phase = phase
        self.phase_t = t
        self.writer.phase(t, phase, reason)
        self.snapshot.phase = phase.value
        self.snapshot.phase_started_t = t
        self._message(f"phase: {phase.value} ({reason})")

    def _record_model(self, t: float) -> None:
        self.last_model_record_t = t
        mean, sd = self.tracker.model.sensitivity_arrays()
        est = {pid: (float(mean[0, k]), float(sd[0, k])) for k, pid in enumerate(self.sc.parameter_ids)}
        with contextlib.suppress(ValueError):
            self.writer.model_estimate(t, est)
        self.snapshot.sensitivities = [s.text for s in self.tracker.model.sensitivities(0)]

    def _set_state_snapshot(self) -> None:
        state = self.sc.state_at(self.positions)
        snap = self.snapshot
        snap.state = state
        snap.intensity = float(self.sc.intensity_of_positions(self.positions))
        snap.hierarchy_index = int(self.sc.hierarchy_index_of_intensity(snap.intensity))
        if self.phase is Phase.EXPOSURE:
            self.max_hierarchy_index = max(self.max_hierarchy_index, snap.hierarchy_index)

    def _refresh(self, t: float) -> None:
        snap = self.snapshot
        snap.t = t
        raw = self._features(t)[0]
        stale = raw[Feature.STALE] >= 0.5
        snap.hr_above_bpm = None if stale else float(raw[Feature.HR_ABOVE_BPM])
        snap.hr_bpm = None if stale else float(self.tracker.features.hr[0])
        snap.rmssd_ms = float(raw[Feature.RMSSD_MS]) if raw[Feature.RMSSD_VALID] > 0.5 else None
        snap.since_clean_s = float(raw[Feature.SINCE_CLEAN_S])
        snap.paused = self.paused
        snap.latched = bool(self.shield.latched[0])
        snap.latch_reason = Reason(int(self.shield.latch_reason[0])).text if snap.latched else ""
        alarms = []
        if stale:
            alarms.append(f"HEART RATE NOT SEEN for {raw[Feature.SINCE_CLEAN_S]:.0f} s")
        if self.headset_lost_since is not None:
            alarms.append(f"HEADSET LOST for {t - self.headset_lost_since:.0f} s")
        if snap.latched:
            alarms.append(f"SAFE STOP: {snap.latch_reason}; resume when ready")
        if self.awaiting_baseline:
            alarms.append("BASELINE OF POOR QUALITY: confirm to start exposure")
        if self.removed_since is not None:
            alarms.append("HEADSET OFF THE PATIENT'S HEAD")
        snap.alarms = alarms

    def _message(self, text: str) -> None:
        self.snapshot.messages.append(text)
        self.snapshot.n_messages += 1
        log.info("%s", text)


_PHASE_ORDER = {Phase.BASELINE: 0, Phase.EXPOSURE: 1, Phase.RECOVERY: 2, Phase.ENDED: 3}


def _command_args(cmd: TherapistCommand) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cmd.parameter:
        out["parameter"] = cmd.parameter
    if cmd.value is not None:
        out["value"] = cmd.value
    if cmd.text:
        out["text"] = cmd.text
    return out

