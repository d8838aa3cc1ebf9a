"""How a simulated patient responds to a scenario's parameters, for ANY scenario.

The mapping is generic, read from each parameter's ``kind``, ``role``, ``weight`` and intensity
priors; a few scenario-specific extras (keyed by scenario id) add what the literature or common
sense says about particular scenes. Everything here is [A] (an assumption) unless
``docs/simulator.md`` cites a source.

**Stimulus parameters** (``role: stimulus``). Patient i's contribution of parameter k at level l:

    a[i, k, l] = w[k] * m[i, k] * c[i, k, l]

- ``w[k]``: the designer's weight of the parameter, normalised over the stimulus parameters;
- ``m[i, k]``: the patient's sensitivity to it, lognormal around 1 (patients differ widely:
  CALIBRATION.md, "individual sensitivities vary widely");
- ``c[i, k, l]``: the patient's own curve over the levels: the designer's prior raised to a
  patient-specific power (concave for some, convex for others); for *categorical* parameters
  (no natural order) each level also gets independent noise, so the patient's own order can
  differ from the prior's; *ordinal* parameters get, with some probability, a bump at an interior
  level (non-monotone responses, e.g. three listeners worse than fifteen).

**Pairwise interactions**: ``interaction[i, k, k'] * a_k * a_k'`` for every pair of stimulus
parameters, normally distributed around 0 (or around an extra's mean, e.g. size x distance:
a big spider close by is worse than the sum of the two).

**Soothing parameters** (``role: soothing``) act multiplicatively on the whole drive: level l's
factor is ``1 - s[i] * (1 - p[l] / p_max)`` where ``p`` is the prior. A *responder* has
``s`` in a positive range (calm music soothes); a non-responder has ``s`` near zero or slightly
negative (music irritates a little).

**Gates** (extras only): a level that hides the stimulus multiplies the drive by a small factor
for every patient (a covered jar).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sim import kernels as K

__all__ = ["ResponseSpread", "ScenarioExtras", "EXTRAS", "sample_response", "ResponseTables", "tables_drive"]


@dataclasses.dataclass(frozen=True)
class ResponseSpread:
    """How much patients of a cohort differ in their response to scene parameters."""

    sensitivity_sd: float = 0.5  # lognormal SD of the per-parameter sensitivity m[i, k]
    curve_sd: float = 0.3  # lognormal SD of the exponent applied to the prior curve
    categorical_sd: float = 0.2  # SD of per-level noise for categorical parameters
    bump_prob: float = 0.2  # probability that an ordinal parameter (>= 3 levels) has a bump
    bump_height: tuple[float, float] = (0.2, 0.6)  # uniform range, in units of the curve
    interaction_sd: float = 1.0  # SD of generic pair coefficients
    soothing_responder_prob: float = 0.6
    soothing_strength: tuple[float, float] = (0.15, 0.4)  # responders: fraction of drive removed
    soothing_nonresponder: tuple[float, float] = (-0.1, 0.05)  # others: near zero, may irritate


@dataclasses.dataclass(frozen=True)
class ScenarioExtras:
    """Scenario-specific knowledge added on top of the generic mapping.

    ``interactions``: (parameter, parameter) → mean pair coefficient;
    ``gates``: parameter → {level: factor on the whole drive};
    ``bumps``: parameter → (probability, level): that many patients fear this interior level most.
    """

    interactions: Mapping[tuple[str, str], float] = dataclasses.field(default_factory=dict)
    gates: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    bumps: Mapping[str, tuple[float, str]] = dataclasses.field(default_factory=dict)


EXTRAS: dict[str, ScenarioExtras] = {
    # A covered jar hides the spider; size and movement matter more when the spider is close.
    "spider": ScenarioExtras(
        interactions={("distance_m", "size"): 3.0, ("distance_m", "movement"): 2.0, ("jar", "distance_m"): 2.0},
        gates={"jar": {"covered": 0.1}},
    ),
    # Three listeners produced a higher heart rate than six or fifteen in one study
    # (CALIBRATION.md); staring and criticism together are worse than apart.
    "public_speaking": ScenarioExtras(
        interactions={("attitude", "eye_contact"): 2.0, ("audience", "room"): 1.0},
        bumps={"audience": (0.35, "three")},
    ),
    # Height matters more without a railing and at the edge.
    "heights": ScenarioExtras(
        interactions={("height_m", "railing"): 2.5, ("height_m", "position"): 2.5, ("floor", "height_m"): 1.5},
    ),
}


@dataclasses.dataclass(frozen=True)
class ResponseTables:
    """One patient's (or N patients') true response tables; see :class:`~exposure_ctrl.sim.patient.PatientParams`."""

    level_drive: np.ndarray  # (N, K, L)
    level_gain: np.ndarray  # (N, K, L)
    interaction: np.ndarray  # (N, K, K)
    drive_scale: np.ndarray  # (N,)


def _prior_table(sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Priors (K, L) padded with 0 and a mask of real levels."""
    k = sc.n_parameters
    lv = int(sc.n_levels.max())
    prior = np.zeros((k, lv))
    real = np.zeros((k, lv), dtype=bool)
    for i, p in enumerate(sc.parameters):
        prior[i, : p.n_levels] = p.intensities
        real[i, : p.n_levels] = True
    return prior, real


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What :func:`sample_response` reads from a scenario and its extras (no randomness)."""

    scenario: Scenario
    extras: ScenarioExtras
    k: int
    lv: int
    prior: np.ndarray  # (K, L)
    real: np.ndarray  # (K, L) bool
    stim: np.ndarray  # (K,) bool
    w: np.ndarray  # (K,) normalised designer weights of the stimulus parameters
    cat: np.ndarray  # (K,) bool
    ordinal: np.ndarray  # (K,) bool: ordinal with >= 3 levels
    interior: np.ndarray  # (K,) max(levels - 2, 1)
    bumps: tuple[tuple[int, float, int], ...]  # (parameter, probability, level) from the extras
    mean: np.ndarray  # (K, K) mean pair coefficients
    pair: np.ndarray  # (K, K) bool: stimulus pairs, upper triangle
    soothing: tuple[tuple[int, np.ndarray], ...]  # (parameter, calm (L,))
    gates: tuple[tuple[int, int, float], ...]  # (parameter, level, factor)
    top: np.ndarray  # (K,) positions of the hierarchy's top


_SHAPES: dict[tuple[int, int], _Shape] = {}


def _shape(sc: Scenario, extras: ScenarioExtras) -> _Shape:
    """The scenario's part of :func:`sample_response`, computed once per scenario object (the
    cache holds the scenario, so its id cannot be reused while it is cached)."""
    key = (id(sc), id(extras))
    hit = _SHAPES.get(key)
    if hit is not None and hit.scenario is sc and hit.extras is extras:
        return hit
    k = sc.n_parameters
    lv = int(sc.n_levels.max())
    prior, real = _prior_table(sc)
    ids = sc.parameter_ids
    stim = np.array([p.role == "stimulus" for p in sc.parameters])
    w = np.array([p.weight for p in sc.parameters]) * stim
    w = w / max(w.sum(), 1e-12)
    mean = np.zeros((k, k))
    for (pa, pb), mu in extras.interactions.items():
        ia, ib = sorted((ids.index(pa), ids.index(pb)))
        mean[ia, ib] = mu
    soothing = []
    for kk, p in enumerate(sc.parameters):
        if p.role == "soothing":
            pmax = max(prior[kk].max(), 1e-12)
            soothing.append((kk, 1.0 - prior[kk] / pmax))  # calm: 1 at the most soothing level
    shape = _Shape(
        scenario=sc,
        extras=extras,
        k=k,
        lv=lv,
        prior=prior,
        real=real,
        stim=stim,
        w=w,
        cat=np.array([p.kind == "categorical" for p in sc.parameters]),
        ordinal=np.array([p.kind == "ordinal" and p.n_levels >= 3 for p in sc.parameters]),
        interior=np.maximum(sc.n_levels - 2, 1),
        bumps=tuple((ids.index(pid), pr, sc.parameter(pid).index_of(level)) for pid, (pr, level) in extras.bumps.items()),
        mean=mean,
        pair=np.triu(np.ones((k, k), dtype=bool), 1) & stim[:, None] & stim[None, :],
        soothing=tuple(soothing),
        gates=tuple(
            (ids.index(pid), sc.parameter(pid).index_of(level), factor)
            for pid, levels in extras.gates.items()
            for level, factor in levels.items()
        ),
        top=np.asarray(sc.hierarchy_positions[-1]),
    )
    if len(_SHAPES) >= 32:
        _SHAPES.clear()
    _SHAPES[key] = shape
    return shape


def sample_response(
    sc: Scenario,
    rng: np.random.Generator,
    n: int,
    spread: ResponseSpread,
    extras: ScenarioExtras | None = None,
) -> ResponseTables:
    """Draw the response tables of ``n`` patients to scenario ``sc`` from ``rng``."""
    extras = EXTRAS.get(sc.id, _NO_EXTRAS) if extras is None else extras
    sh = _shape(sc, extras)
    k, lv, prior, real, stim = sh.k, sh.lv, sh.prior, sh.real, sh.stim

    # sensitivity and curve
    m = np.exp(spread.sensitivity_sd * rng.standard_normal((n, k)))
    gamma = np.exp(spread.curve_sd * rng.standard_normal((n, k)))
    curve = np.power(prior[None, :, :], gamma[:, :, None])
    cat_noise = spread.categorical_sd * rng.standard_normal((n, k, lv))
    curve = np.where(sh.cat[None, :, None], np.maximum(curve + cat_noise, 0.0), curve)
    # bumps: an interior level feared more than its neighbours
    bump_u = rng.random((n, k))
    bump_at_u = rng.random((n, k))
    bump_h = rng.uniform(*spread.bump_height, size=(n, k))
    prob = np.where(sh.ordinal, spread.bump_prob, 0.0)
    at = np.floor(1 + bump_at_u * sh.interior).astype(np.int64)  # interior
    for kk, pr, level in sh.bumps:
        prob[kk] = pr
        at[:, kk] = level
    has_bump = bump_u < prob[None, :]
    lvl = np.arange(lv)[None, None, :]
    bump = bump_h[:, :, None] * np.exp(-0.5 * ((lvl - at[:, :, None]) / 0.7) ** 2)
    curve = curve + np.where(has_bump[:, :, None], bump, 0.0)
    # level 0 of an ordinal parameter is the least feared by construction: nothing below zero
    level_drive = sh.w[None, :, None] * m[:, :, None] * curve * real[None] * stim[None, :, None]

    # interactions (upper triangle, stimulus pairs only)
    inter = spread.interaction_sd * rng.standard_normal((n, k, k))
    inter = np.where(sh.pair[None], inter + sh.mean[None], 0.0)

    # soothing parameters and gates: multiplicative factors
    gain = np.ones((n, k, lv))
    responder = rng.random((n, k)) < spread.soothing_responder_prob
    s_resp = rng.uniform(*spread.soothing_strength, size=(n, k))
    s_non = rng.uniform(*spread.soothing_nonresponder, size=(n, k))
    s = np.where(responder, s_resp, s_non)
    for kk, calm in sh.soothing:
        gain[:, kk, :] = np.where(real[kk], 1.0 - s[:, kk, None] * calm[None, :], 1.0)
    for kk, level, factor in sh.gates:
        gain[:, kk, level] = factor

    raw_top, _ = tables_drive(level_drive, gain, inter, np.ones(n), sh.top)
    # A patient whose top scene drives nothing would divide by zero; such a draw is vanishingly
    # rare but is clipped rather than trusted.
    scale = 1.0 / np.maximum(raw_top, 1e-3)
    return ResponseTables(level_drive, gain, inter, scale)


_NO_EXTRAS = ScenarioExtras()


def tables_drive(
    level_drive: np.ndarray,
    level_gain: np.ndarray,
    interaction: np.ndarray,
    drive_scale: np.ndarray,
    positions: np.ndarray,
    habituated: np.ndarray | None = None,
    habituation_max: np.ndarray | None = None,
    sensitisation_max: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Drive of the scenes at ``positions`` (N, K): ``(drive (N,), raw contributions (N, K))``.

    ``habituated`` (N, K) is the contribution habituation has removed from each parameter (in
    the units of ``level_drive``; negative: added by sensitisation). At a level contributing
    ``raw`` it removes at most ``habituation_max * raw`` and adds at most
    ``sensitisation_max * raw``: habituation acquired at a low level transfers only partly to
    higher ones (generalisation decrement), fully to lower ones. The contributions are summed
    with their pairwise interaction terms, multiplied by the level gains and by
    ``drive_scale``; a drive is never negative. The arithmetic is
    :func:`exposure_ctrl.sim.kernels.drive_of`, the same the patient's transition uses.
    """
    n, k, _ = level_drive.shape
    f = np.float64
    pos = np.ascontiguousarray(np.broadcast_to(positions, (n, k)), dtype=np.int64)
    hab = np.zeros((n, k)) if habituated is None else np.ascontiguousarray(habituated, dtype=f)
    hmax = np.ones(n) if habituation_max is None else np.ascontiguousarray(habituation_max, dtype=f)
    smax = np.ones(n) if sensitisation_max is None else np.ascontiguousarray(sensitisation_max, dtype=f)
    drive = np.empty(n)
    raw = np.empty((n, k))
    K.drive_rows(
        np.ascontiguousarray(level_drive, dtype=f),
        np.ascontiguousarray(level_gain, dtype=f),
        np.ascontiguousarray(interaction, dtype=f),
        np.ascontiguousarray(drive_scale, dtype=f),
        pos,
        hab,
        hmax,
        smax,
        drive,
        raw,
    )
    return drive, raw
