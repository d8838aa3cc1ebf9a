"""ResponseModel: recovers known sensitivities from a synthetic stream (lag, noise, drift)
within its stated uncertainty; tracks a drifting sensitivity; batch equals single runs."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.arousal import ModelConfig, ResponseModel
from exposure_ctrl.scenario import resolve_scenario

SPIDER = resolve_scenario("spider")


def random_walk_scenes(rng: np.random.Generator, positions: np.ndarray) -> np.ndarray:
    """One random legal move (not hold) per patient."""
    mask = SPIDER.action_mask(positions)
    mask[:, 0] = False
    p = mask / mask.sum(axis=1, keepdims=True)
    actions = np.array([rng.choice(len(row), p=row) for row in p])
    return SPIDER.apply_action(positions, actions)


def simulate(
    rng: np.random.Generator,
    theta: np.ndarray,
    minutes: float,
    *,
    noise_bpm: float = 2.0,
    lag_s: float = 20.0,
    tick_s: float = 5.0,
    drift=None,
    hr: bool = True,
    suds_every_s: float | None = None,
    suds_noise_bpm: float = 8.0,
    config: ModelConfig | None = None,
) -> tuple[ResponseModel, np.ndarray]:
    """A synthetic patient per row of ``theta`` (N, P): arousal = theta(t) . z(t) + noise, z the
    design vector of the scenes shown through a first-order lag. Scenes move one random step
    every 20..60 s. ``drift(t, theta)`` gives the coefficients at t. Returns the model and the
    coefficients at the end."""
    n = theta.shape[0]
    model = ResponseModel(SPIDER, n=n, config=config)
    pos = np.tile(np.asarray(SPIDER.positions(SPIDER.start)), (n, 1))
    model.set_scene(0.0, pos)
    phi = model.design(pos)
    z = phi.copy()
    next_change = rng.uniform(20, 60, n)
    next_suds = 0.0
    t = 0.0
    th = theta
    while t < minutes * 60:
        t += tick_s
        z = phi + (z - phi) * np.exp(-tick_s / lag_s)
        th = theta if drift is None else drift(t, theta)
        truth = (th * z).sum(axis=1)
        if hr:
            model.observe_hr(t, truth + rng.normal(0, noise_bpm, n))
        if suds_every_s is not None and t >= next_suds:
            suds_bpm = truth + rng.normal(0, suds_noise_bpm, n)
            suds = (
                SPIDER.targets.suds_window.low
                + (suds_bpm - SPIDER.targets.arousal_window_bpm.low) / model._suds_map[2]
            )
            model.observe_suds(t, suds)
            next_suds = t + suds_every_s
        change = t >= next_change
        if change.any():
            new = random_walk_scenes(rng, pos)
            pos = np.where(change[:, None], new, pos)
            model.set_scene(t, pos, change)
            phi = model.design(pos)
            next_change = np.where(change, t + rng.uniform(20, 60, n), next_change)
    return model, th


def draw_theta(rng: np.random.Generator, model: ResponseModel, n: int) -> np.ndarray:
    return model.prior_mean + model.prior_sd * rng.standard_normal((n, model.n_coef))


def test_recovers_known_sensitivities_within_its_uncertainty():
    rng = np.random.default_rng(2024)
    n = 32
    theta = draw_theta(rng, ResponseModel(SPIDER), n)
    model, _ = simulate(rng, theta, minutes=30)
    z = (model.mean - theta) / model.coef_sd()
    assert np.mean(np.abs(z) < 2) > 0.9
    assert np.abs(z).max() < 4.5
    # and it learnt: the posterior is much narrower than the prior
    assert np.median(model.coef_sd() / model.prior_sd) < 0.75
    # so are the whole-range sensitivities per parameter
    sm, ss = model.sensitivity_arrays()
    true_sens = theta @ model._contrast.T
    assert np.mean(np.abs(sm - true_sens) < 2 * ss) > 0.9


def test_uncertainty_shrinks_with_time():
    rng = np.random.default_rng(5)
    theta = draw_theta(rng, ResponseModel(SPIDER), 16)
    m10, _ = simulate(np.random.default_rng(1), theta, minutes=10)
    m20, _ = simulate(np.random.default_rng(1), theta, minutes=20)
    err10 = np.abs(m10.mean - theta)[:, 1:].mean()
    err20 = np.abs(m20.mean - theta)[:, 1:].mean()
    assert err20 < err10
    assert np.median(m20.coef_sd()) < np.median(m10.coef_sd())


def test_tracks_a_drifting_sensitivity():
    rng = np.random.default_rng(7)
    n = 16
    model0 = ResponseModel(SPIDER)
    j = model0.coef_names.index("jar")
    theta = np.tile(model0.prior_mean, (n, 1))
    theta[:, j] = 12.0
    minutes = 40.0

    def habituate(t, th):  # the jar's effect falls from 12 to 4 bpm over the session
        out = th.copy()
        out[:, j] = 12.0 - 8.0 * t / (minutes * 60)
        return out

    model, th_end = simulate(rng, theta, minutes=minutes, drift=habituate)
    est = model.mean[:, j]
    sd = model.coef_sd()[:, j]
    assert np.all(np.abs(est - th_end[:, j]) < 3 * sd)
    assert np.mean(np.abs(est - 4.0)) < np.mean(np.abs(est - 12.0))  # nearer now than the start
    assert est.mean() < 12.0 - 8.0 / 3
    # a model that does not forget cannot follow as well
    stiff = ModelConfig(drift_bpm_per_sqrt_min=1e-6, intercept_drift_bpm_per_sqrt_min=1e-6)
    m_stiff, _ = simulate(
        np.random.default_rng(7), theta, minutes=minutes, drift=habituate, config=stiff
    )
    assert np.abs(m_stiff.mean[:, j] - 4.0).mean() > np.abs(est - 4.0).mean()


def test_suds_is_a_second_noisier_signal():
    rng = np.random.default_rng(3)
    theta = draw_theta(rng, ResponseModel(SPIDER), 16)
    m_suds, _ = simulate(np.random.default_rng(4), theta, minutes=30, hr=False, suds_every_s=60)
    m_hr, _ = simulate(np.random.default_rng(4), theta, minutes=30)
    m_none, _ = simulate(np.random.default_rng(4), theta, minutes=30, hr=False)
    assert (m_suds.n_suds_updates == 30).all() and (m_suds.n_hr_updates == 0).all()
    # SUDS alone teaches something (against no signal at all for as long), less than heart rate
    _, ss = m_suds.sensitivity_arrays()
    _, ns = m_none.sensitivity_arrays()
    _, hs = m_hr.sensitivity_arrays()
    assert np.all(ss <= ns + 1e-12) and np.median(ss / ns) < 0.95  # unvisited levels stay put
    assert np.median(hs) < np.median(ss)
    z = (m_suds.mean - theta) / m_suds.coef_sd()
    assert np.mean(np.abs(z) < 2) > 0.85


def test_batch_equals_single_runs():
    rng = np.random.default_rng(11)
    n = 4
    batch = ResponseModel(SPIDER, n=n)
    singles = [ResponseModel(SPIDER) for _ in range(n)]
    pos = np.tile(np.asarray(SPIDER.positions(SPIDER.start)), (n, 1))
    t = 0.0
    for _ in range(80):
        t += float(rng.uniform(1, 10))
        if rng.random() < 0.3:
            new = random_walk_scenes(rng, pos)
            mask = rng.random(n) < 0.6
            pos = np.where(mask[:, None], new, pos)
            batch.set_scene(t, pos, mask)
            for i in np.flatnonzero(mask):
                singles[i].set_scene(t, pos[i])
        y = rng.normal(10, 5, n)
        valid = rng.random(n) < 0.8
        if rng.random() < 0.2:
            batch.observe_suds(t, np.clip(y * 4, 0, 100), valid)
            for i in range(n):
                singles[i].observe_suds(t, np.clip(y[i : i + 1] * 4, 0, 100), valid[i : i + 1])
        else:
            batch.observe_hr(t, y, valid)
            for i in range(n):
                singles[i].observe_hr(t, y[i : i + 1], valid[i : i + 1])
    obs = batch.observation()
    for i in range(n):
        np.testing.assert_allclose(batch.mean[i], singles[i].mean[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(batch.cov[i], singles[i].cov[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(obs[i], singles[i].observation()[0], rtol=1e-12, atol=1e-12)


@pytest.fixture
def trained() -> ResponseModel:
    rng = np.random.default_rng(8)
    theta = draw_theta(rng, ResponseModel(SPIDER), 5)
    model, _ = simulate(rng, theta, minutes=8)
    return model


def test_fast_predictions_equal_the_general_ones(trained):
    mean, sd = trained.predict_next()
    m2, s2 = trained.predict(trained.next_positions())
    np.testing.assert_allclose(mean, m2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sd, s2, rtol=1e-10, atol=1e-10)
    eff, eff_sd = trained.action_effects()
    np.testing.assert_allclose(eff, m2 - m2[:, :1], atol=1e-10)
    phi = trained.design(trained.next_positions()) - trained.design(trained.positions)[:, None]
    np.testing.assert_allclose(
        eff_sd, np.sqrt(np.einsum("nap,npq,naq->na", phi, trained.cov, phi)), atol=1e-10
    )
    sm, ss = trained.sensitivity_arrays()
    c = trained._contrast
    np.testing.assert_allclose(sm, trained.mean @ c.T, atol=1e-10)
    np.testing.assert_allclose(
        ss, np.sqrt(np.einsum("kp,npq,kq->nk", c, trained.cov, c)), atol=1e-10
    )
    # each parameter's whole-range effect is a difference of two predictions
    k = 2
    lo = trained.positions.copy()
    hi = trained.positions.copy()
    lo[:, k] = 0
    hi[:, k] = SPIDER.n_levels[k] - 1
    d = trained.predict(hi[:, None])[0][:, 0] - trained.predict(lo[:, None])[0][:, 0]
    np.testing.assert_allclose(sm[:, k], d, atol=1e-10)


def test_closest_action_is_the_best_legal_neighbour(trained):
    for target in (0.0, 10.0, 30.0):
        action, _mean, sd = trained.closest_action(target)
        m_all, _ = trained.predict(trained.next_positions())
        legal = SPIDER.action_mask(trained.positions)
        for i in range(trained.n):
            best = min(np.flatnonzero(legal[i]), key=lambda a: abs(m_all[i, a] - target))
            assert abs(m_all[i, action[i]] - target) == pytest.approx(abs(m_all[i, best] - target))
            assert legal[i, action[i]]
        assert np.all(sd > 0)
    moved, _, _ = trained.closest_action(10.0, include_hold=False)
    assert (moved != 0).all()


def test_observation_is_fixed_size_named_and_finite(trained):
    obs = trained.observation()
    names = trained.observation_names
    assert obs.shape == (trained.n, trained.observation_size) == (trained.n, len(names))
    assert len(set(names)) == len(names)
    assert "model_next_jar_up_bpm" in names and "model_sens_music_sd_bpm" in names
    assert np.isfinite(obs).all()
    # the hold column is the steady-state prediction of the current scene
    np.testing.assert_allclose(obs[:, 2], trained.predict(trained.positions[:, None])[0][:, 0])


def test_sensitivities_read_like_a_clinician_would_say_them():
    model = ResponseModel(SPIDER)
    texts = [s.text for s in model.sensitivities()]
    assert any(t.startswith("Colour black: +") and t.endswith("bpm vs light_brown") for t in texts)
    assert any(t.startswith("music calm_music: -") and t.endswith("vs silence") for t in texts)
    assert any(t.startswith("Containment covered → free:") and "per step" in t for t in texts)
    rec = model.record()
    assert set(rec["coefficients"]) == set(model.coef_names)


def test_prior_matches_the_designers_intensity():
    model = ResponseModel(SPIDER)
    scale = SPIDER.targets.ceiling_bpm
    for step in SPIDER.hierarchy:
        mean, sd = model.predict_state(step.state)
        assert mean == pytest.approx(scale * SPIDER.intensity(step.state))
        assert sd > 0


def test_outliers_are_gated_and_time_cannot_go_back():
    model = ResponseModel(SPIDER)
    model.observe_hr(5.0, np.array([500.0]))
    assert model.n_gated[0] == 1 and model.n_hr_updates[0] == 0
    np.testing.assert_allclose(model.mean[0], model.prior_mean)
    with pytest.raises(ValueError, match="backwards"):
        model.observe_hr(4.0, np.array([5.0]))
