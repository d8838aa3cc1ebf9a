"""The Gymnasium environment ``exposure_ctrl/Exposure-v0``: one simulated exposure session."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario import Scenario, resolve_scenario
from exposure_ctrl.sim import render
from exposure_ctrl.sim.batch import SessionBatch, SessionOptions
from exposure_ctrl.sim.cohorts import CohortSpec, Mixture, Split, cohort_for
from exposure_ctrl.sim.records import Recorder
from exposure_ctrl.sim.reward import RewardConfig
from exposure_ctrl.sim.sensors import SensorConfig

__all__ = ["ExposureEnv", "resolve_env_scenario"]

_RESET_OPTIONS = frozenset({"patient_index", "new_course"})


def resolve_env_scenario(scenario: str | Scenario) -> Scenario:
    """A :class:`Scenario`, a shipped scenario's id, or a path to a YAML file."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str):
        return resolve_scenario(scenario)
    raise ConfigError(f"scenario must be a Scenario, a shipped scenario's id or a path; found {type(scenario).__name__}")


def row_info(info: dict[str, Any], i: int) -> dict[str, Any]:
    """Patient ``i``'s entries of a batch info dict (arrays → scalars or small arrays; a missing
    value, NaN in the batch, becomes None: no SUDS rating this step, no recovery phase)."""
    out: dict[str, Any] = {}
    for key, v in info.items():
        kind = type(v)
        if kind is np.ndarray:
            if v.ndim == 1:
                y = v.item(i)
                out[key] = None if y != y else y  # NaN → None
            else:
                out[key] = v[i].copy()
        elif kind is dict:
            out[key] = row_info(v, i)
        else:
            out[key] = v
    return out


class ExposureEnv(gym.Env[np.ndarray, np.int64]):
    """One session of virtual-reality exposure therapy with a simulated patient.

    ## Description

    A patient with a phobia sits in a VR scene (a :class:`~exposure_ctrl.scenario.Scenario`:
    a spider in a jar, an audience, a roof terrace) wearing a heart-rate chest strap. The agent
    adjusts the scene one parameter step at a time so that the patient's arousal stays in the
    therapeutic window while they climb the fear hierarchy as they habituate. The patient is
    simulated (:mod:`exposure_ctrl.sim.patient`: latent fear with onset delay, rise and decay,
    habituation in the window, sensitisation and aborts above tolerance, beat-by-beat heart rate),
    the strap too (:mod:`exposure_ctrl.sim.sensors`: dropouts, contact loss, disconnects). The
    agent sees only what the live controller sees: the arousal features and the response
    model's estimates from :class:`~exposure_ctrl.arousal.ArousalTracker`. The safety shield
    (:mod:`exposure_ctrl.safety`) filters every action inside the step, exactly as live.

    ## Action Space

    ``Discrete(1 + 2K)`` for a scenario with K parameters: 0 holds, ``1 + 2k`` moves parameter
    k one level up (more fear), ``2 + 2k`` one level down. Moves past either end are impossible:
    ``info["action_mask"]`` and :meth:`action_masks` (for sb3-contrib's ``MaskablePPO``) mark
    the legal ones; an impossible action is held by the shield (and costs ``blocked``).

    ## Observation Space

    ``Box(low, high, (D,), float32)``: the tracker's arousal features and response-model
    estimates, the normalised parameter positions and the elapsed fraction of the exposure
    phase; names in :attr:`observation_names`, layout and bounds in
    :mod:`exposure_ctrl.sim.observation`. With ``scaled=True`` (default) the columns are divided
    by their typical magnitude; multiply by :attr:`observation_scales` to get the features'
    own units (bpm, seconds, ...).

    ## Rewards

    Per decision period (see :mod:`exposure_ctrl.sim.reward`):
    ``window * time in window - ceiling * time above ceiling + progress * new hierarchy steps
    - change * scene changed by the policy - blocked * proposal refused by the shield
    - abort * patient aborted``. Times are fractions of the period, measured on the fear-driven
    heart-rate rise (ground truth); the terms are in ``info["reward_terms"]``.

    ## Starting State

    A new patient is drawn from the cohort (``split="train"``: index from ``np_random``;
    ``"eval"``: one of the held-out patients; or ``options={"patient_index": i}``), sits through
    the scenario's baseline phase in the safe scene (``timing.baseline_s``, simulated inside
    :meth:`reset`: the features' resting baseline is measured then), and exposure starts at
    the scenario's ``start`` state. With ``course_sessions > 1`` the next reset continues the same
    patient's course with part of the habituation retained (return of fear), until the course
    is over, the patient aborted, or ``options={"new_course": True}``.

    ## Episode End

    Terminated when the patient aborts (fear above tolerance for too long: removes the headset)
    or when the session is over: ``timing.exposure_max_s`` of exposure, after which the recovery
    phase is simulated inside the last step (``info["recovery_s"]``: time back near baseline).
    The session's length is part of the task and is observed (``exposure_time_frac``), so its end
    is a termination; no other time limit is built in (wrap in ``TimeLimit`` for shorter
    episodes). Stepping a finished episode raises :class:`gymnasium.error.ResetNeeded`.

    ## Arguments

    - ``scenario``: a shipped scenario's id (``"spider"``), a YAML path or a ``Scenario``.
    - ``cohort``: a cohort name (``spider-moderate``, ``spider-severe``, ``social-anxiety``,
      ``heights``, ``mixed``, ``trivial``) or spec; default: the scenario's own cohort.
    - ``split``: ``"train"`` (default) or ``"eval"`` (held-out patients, disjoint by construction).
    - ``sensor``: ``"strap"`` (default), ``"strap-flaky"``, ``"ideal"`` or ``"wrist"``.
    - ``reward``: a :class:`~exposure_ctrl.sim.reward.RewardConfig`.
    - ``suds_every_s``: a SUDS rating is given every this many seconds of exposure (None: never).
    - ``recovery``: simulate the recovery phase at the end (default True).
    - ``course_sessions``: sessions per patient (multi-session course mode).
    - ``therapist_resume_s``: the simulated therapist resumes a latched shield after this long
      once the patient is below the window's top and seen (None: never).
    - ``scaled``: divide observation columns by their scales (default True).
    - ``truth_in_info``: add ground truth (fear, true action effects and sensitivities) to
      ``info["truth"]``, for evaluation only.
    - ``recorder``: receives typed records (:mod:`exposure_ctrl.sim.records`).
    - ``render_mode``: ``"ansi"`` (one line of text), ``"rgb_array"`` (a strip chart of the
      heart rate above baseline against the window and ceiling, and the hierarchy step:
      :mod:`exposure_ctrl.sim.render`; what Stable-Baselines3's ``make_vec_env`` asks for) or
      None.

    The ``trivial`` cohort with ``sensor="ideal"`` is a deterministic, fully controllable patient
    for learnability smoke tests.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 1}

    def __init__(
        self,
        scenario: str | Scenario = "spider",
        cohort: str | CohortSpec | Mixture | None = None,
        *,
        split: Split = "train",
        sensor: str | SensorConfig = "strap",
        reward: RewardConfig | None = None,
        suds_every_s: float | None = 60.0,
        recovery: bool = True,
        course_sessions: int = 1,
        therapist_resume_s: float | None = 60.0,
        scaled: bool = True,
        truth_in_info: bool = False,
        recorder: Recorder | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode must be one of {self.metadata['render_modes']} or None, found {render_mode!r}")
        self.scenario = resolve_env_scenario(scenario)
        self.render_mode = render_mode
        self.options = SessionOptions(
            cohort=cohort_for(self.scenario, cohort),
            split=split,
            sensor=sensor,
            reward=reward if reward is not None else RewardConfig(),
            suds_every_s=suds_every_s,
            recovery=recovery,
            course_sessions=course_sessions,
            therapist_resume_s=therapist_resume_s,
            scaled=scaled,
            truth_in_info=truth_in_info,
        )
        self._batch = SessionBatch(self.scenario, 1, self.options, self.np_random)
        self._batch.recorder = recorder
        lay = self._batch.layout
        self.action_space = spaces.Discrete(self.scenario.n_actions)
        self.observation_space = spaces.Box(lay.low, lay.high, dtype=np.float32)
        self._done = True
        self._history: list[float] = []  # heart rate above baseline per period (rgb_array)

    # --- names -----------------------------------------------------------------------------

    @property
    def observation_names(self) -> tuple[str, ...]:
        """Column names of the observation (for :class:`~exposure_ctrl.policy.ObservationView`)."""
        return self._batch.layout.names

    @property
    def observation_scales(self) -> np.ndarray:
        """Multiply an observation by these to get each column in its own unit."""
        return self._batch.layout.scales.copy()

    @property
    def recorder(self) -> Recorder | None:
        return self._batch.recorder

    @recorder.setter
    def recorder(self, rec: Recorder | None) -> None:
        self._batch.recorder = rec

    # --- the API -----------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        opts = dict(options or {})
        unknown = set(opts) - _RESET_OPTIONS
        if unknown:
            raise ConfigError(f"unknown reset option(s) {sorted(unknown)}; expected {sorted(_RESET_OPTIONS)}")
        b = self._batch
        b.set_rng(self.np_random)
        idx = opts.get("patient_index")
        b.start([0], patient_index=None if idx is None else [int(idx)], new_course=bool(opts.get("new_course", False)))
        self._done = False
        if self.render_mode == "rgb_array":
            self._history = [float(self.tracker.features.hr_above()[0])]
        info = self._reset_info()
        return b.observation()[0], info

    def _reset_info(self) -> dict[str, Any]:
        b = self._batch
        pos = b.positions[0]
        return {
            "action_mask": b.action_masks()[0],
            "positions": pos.copy(),
            "hierarchy_index": int(b.max_step[0]),
            "patient": {
                "cohort": b.cohort_name,
                "split": self.options.split,
                "index": int(b.patient_index[0]),
                "session": int(b.session[0]),
            },
            "baseline_bpm": float(b.baseline_bpm[0]),
            "baseline_good": bool(b.baseline_good[0]),
        }

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise ResetNeeded("the session is over (or never started): call reset() first")
        a = np.asarray(action, dtype=np.int64).reshape(1)
        obs, reward, terminated, info = self._batch.step(a)
        done = bool(terminated[0])
        self._done = done
        if self.render_mode == "rgb_array":
            self._history.append(float(self.tracker.features.hr_above()[0]))
            del self._history[: -(render.WIDTH - render.BAR)]  # what the chart shows
        return obs[0], float(reward[0]), done, False, row_info(info, 0)

    def action_masks(self) -> np.ndarray:
        """Legal actions now (bool, 1 + 2K), for sb3-contrib's MaskablePPO."""
        return self._batch.action_masks()[0]

    def render(self) -> str | np.ndarray | None:
        b = self._batch
        sc = self.scenario
        if self.render_mode == "rgb_array":
            return render.draw(
                np.asarray(self._history),
                b.window,
                b.ceiling,
                int(b._step_index[0]),
                int(b.max_step[0]),
                len(sc.hierarchy),
            )
        if self.render_mode != "ansi":
            return None
        state = sc.describe(sc.state_at(b.positions[0]))
        above = float(self.tracker.features.hr_above()[0])
        return f"t={b.exposure_s[0]:6.0f}s  hr_above={above:5.1f} bpm  step={int(b.max_step[0])}  {state}"

    # --- evaluation --------------------------------------------------------------------------

    def truth(self) -> dict[str, np.ndarray]:
        """Ground truth now (fear, fear-driven rise, true action effects and sensitivities)."""
        return {k: v[0] for k, v in self._batch.truth().items()}

    @property
    def tracker(self) -> Any:
        """The arousal tracker (features and response model) of the current session."""
        return self._batch.tracker
