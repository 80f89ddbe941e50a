"""Known-answer tests for core.metrics (Gaussian posteriors with closed forms)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from core.inference.posterior import Posterior
from core.metrics import SCORE_KEYS, score_posterior, score_posterior_all
from core.metrics.binned import metrics_per_bin
from core.metrics.calibration import (coverage, coverage_curve, crps, interval_width, intervals, pit, pit_ks,
                                      sbc_ranks, sbc_uniformity, tarp)
from core.metrics.point import bias, mae, outlier_fraction, r2, rmse, sigma_nmad
from core.metrics.ppc import ppc_discrepancy, ppc_pvalues, ppc_uniformity
from core.metrics.reference import kde_on_grid, kl_to_reference, log_score_gap, regret, wasserstein1

GRID = np.linspace(-8.0, 8.0, 1601)


def gauss_grid(mu, sd) -> Posterior:
    mu, sd = np.broadcast_arrays(np.atleast_1d(np.asarray(mu, float)), np.atleast_1d(np.asarray(sd, float)))
    pdf = stats.norm.pdf(GRID[None], mu[:, None], sd[:, None])
    return Posterior(params=("theta",), units=("dex",), grid=GRID, pdf=pdf, method="grid")


def gauss_samples(mu, sd, s=2000, seed=1) -> Posterior:
    rng = np.random.default_rng(seed)
    mu, sd = np.broadcast_arrays(np.atleast_1d(np.asarray(mu, float)), np.atleast_1d(np.asarray(sd, float)))
    x = mu[:, None] + sd[:, None] * rng.standard_normal((mu.size, s))
    return Posterior(params=("theta",), units=("dex",), samples=x[..., None], method="samples")


def crps_gauss(mu, sd, y):
    z = (y - mu) / sd
    return sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


@pytest.fixture(scope="module")
def calibrated():
    """Truths drawn from the posteriors themselves: posterior N(m_i, 0.3), truth ~ N(m_i, 0.3)."""
    rng = np.random.default_rng(42)
    n = 3000
    m = rng.uniform(-2, 2, n)
    truth = m + 0.3 * rng.standard_normal(n)
    return m, truth


# -- point -------------------------------------------------------------------------------------------
def test_point_metrics_known_values():
    truth = np.array([0.0, 1.0, 2.0, 3.0])
    pred = np.array([0.5, 1.0, 1.5, 3.0])
    assert mae(pred, truth) == pytest.approx(0.25)
    assert rmse(pred, truth) == pytest.approx(np.sqrt(0.125))
    assert bias(pred, truth) == pytest.approx(0.0)
    assert r2(pred, truth) == pytest.approx(1 - 0.5 / 5.0)
    assert outlier_fraction(pred, truth, threshold=0.4) == pytest.approx(0.5)
    # NaN rows are ignored, not counted as zero error
    assert mae(np.append(pred, np.nan), np.append(truth, 7.0)) == pytest.approx(0.25)
    # per-parameter arrays
    two = rmse(np.stack([pred, pred + 1], 1), np.stack([truth, truth], 1))
    assert two.shape == (2,) and two[1] == pytest.approx(np.sqrt(np.mean((pred + 1 - truth) ** 2)))


def test_sigma_nmad_is_std_for_gaussian():
    rng = np.random.default_rng(0)
    t = np.zeros(200000)
    assert sigma_nmad(0.2 * rng.standard_normal(t.size), t) == pytest.approx(0.2, rel=0.02)
    # photo-z convention: dz / (1 + z)
    z = np.full(4, 1.0)
    assert outlier_fraction(np.array([1.0, 1.2, 1.4, 2.0]), z, 0.15, scale=1 + z) == pytest.approx(0.5)


# -- calibration ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["grid", "samples"])
def test_calibrated_gaussian_covers_and_has_uniform_pit(calibrated, kind):
    m, truth = calibrated
    post = gauss_grid(m, 0.3) if kind == "grid" else gauss_samples(m, 0.3)
    assert coverage(post, truth, 0.68) == pytest.approx(0.68, abs=0.03)
    assert coverage(post, truth, 0.95) == pytest.approx(0.95, abs=0.015)
    assert coverage(post, truth, 0.68, kind="hpd") == pytest.approx(0.68, abs=0.03)
    assert pit_ks(pit(post, truth)[:, 0]) > 0.01
    levels, cov = coverage_curve(post, truth, [0.2, 0.5, 0.9])
    assert np.allclose(cov, levels, atol=0.04)
    lo, hi = intervals(post, 0.68)
    assert np.median(hi - lo) == pytest.approx(2 * 0.3 * stats.norm.ppf(0.84), rel=0.03)


def test_too_narrow_posterior_undercovers_and_fails_pit(calibrated):
    m, truth = calibrated
    post = gauss_grid(m, 0.15)
    assert coverage(post, truth, 0.68) < 0.45
    assert pit_ks(pit(post, truth)[:, 0]) < 1e-6
    levels, ecp = tarp(gauss_samples(m, 0.15, s=500), truth)
    assert np.max(np.abs(ecp - levels)) > 0.1


def test_tarp_and_sbc_calibrated(calibrated):
    m, truth = calibrated
    post = gauss_samples(m, 0.3, s=400)
    levels, ecp = tarp(post, truth)
    assert np.max(np.abs(ecp - levels)) < 0.05
    ranks = sbc_ranks(post, truth)
    assert ranks.shape == (len(m), 1) and ranks.min() >= 0 and ranks.max() <= 400
    assert sbc_uniformity(ranks[:, 0], 400) > 0.01
    bad = sbc_ranks(gauss_samples(m + 0.3, 0.3, s=400), truth)
    assert sbc_uniformity(bad[:, 0], 400) < 1e-6


def test_hpd_region_of_bimodal_grid_is_not_the_central_interval():
    pdf = 0.5 * stats.norm.pdf(GRID, -3, 0.5) + 0.5 * stats.norm.pdf(GRID, 3, 0.5)
    post = Posterior(params=("t",), units=("",), grid=GRID, pdf=pdf[None].repeat(2, 0))
    truth = np.array([0.0, 3.0])                      # the valley is inside the central 68% but not the HPD
    central = coverage(post.subset([0]), truth[:1], 0.68)
    hpd = coverage(post.subset([0]), truth[:1], 0.68, kind="hpd")
    assert central == 1.0 and hpd == 0.0
    assert coverage(post.subset([1]), truth[1:], 0.68, kind="hpd") == 1.0


def test_crps_closed_form_grid_and_samples():
    y = np.array([0.0, 0.7, -2.0, 9.0])               # the last truth lies outside the grid
    mu, sd = np.array([0.0, 0.0, 0.5, 0.0]), np.array([1.0, 1.0, 0.5, 1.0])
    exact = crps_gauss(mu, sd, y)
    assert exact[0] == pytest.approx((np.sqrt(2) - 1) / np.sqrt(np.pi))
    got_grid = crps(gauss_grid(mu, sd), y)[:, 0]
    assert np.allclose(got_grid, exact, atol=2e-4)
    got_s = crps(gauss_samples(mu, sd, s=40000, seed=3), y)[:, 0]
    assert np.allclose(got_s, exact, atol=0.01)
    # a wider posterior scores worse at the centre than the right one
    assert crps(gauss_grid(0.0, 3.0), [0.0])[0, 0] > exact[0]


def test_invalid_rows_are_excluded():
    post = gauss_grid([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    post.valid = np.array([True, False, True])
    u = pit(post, [0.0, 0.0, np.nan])
    assert u[0, 0] == pytest.approx(0.5, abs=1e-3) and np.isnan(u[1, 0]) and np.isnan(u[2, 0])
    assert coverage(post, [0.0, 5.0, np.nan], 0.68) == 1.0
    w = interval_width(post, 0.68)
    assert np.isnan(w[1, 0]) and w[0, 0] == pytest.approx(2 * stats.norm.ppf(0.84), rel=1e-3)


# -- reference -----------------------------------------------------------------------------------------
def test_kl_grid_matches_closed_form():
    m1, s1, m2, s2 = 0.0, 1.0, 0.5, 1.5
    closed = np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    kl = kl_to_reference(gauss_grid([m1, m1], [s1, s1]), gauss_grid([m2, m1], [s2, s1]), per_object=True)
    assert kl[0] == pytest.approx(closed, rel=1e-4) and kl[1] == pytest.approx(0.0, abs=1e-8)


def test_kl_from_samples_via_kde_close_to_closed_form():
    m1, s1, m2, s2 = 0.0, 1.0, 0.5, 1.5
    closed = np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    q = gauss_samples([m2] * 20, [s2] * 20, s=4000, seed=5)
    assert kl_to_reference(gauss_grid([m1] * 20, [s1] * 20), q) == pytest.approx(closed, abs=0.01)
    # the same distribution as samples is close to zero
    assert kl_to_reference(gauss_grid([0.0] * 20, [1.0] * 20), gauss_samples([0.0] * 20, [1.0] * 20, s=4000)) < 0.01


def test_kde_binned_agrees_with_direct():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.2, size=(6, 1000))
    x[5] = rng.normal(1.9, 0.02, size=1000)          # narrow and at the grid edge (mass beyond the grid)
    g = np.linspace(-1, 2, 301)
    a = kde_on_grid(x, g, method="direct")
    b = kde_on_grid(x, g, method="binned")
    assert np.max(np.abs(a - b)) < 1e-3 * a.max()  # linear binning at h/8
    assert np.trapezoid(a[:5], g, axis=1) == pytest.approx(np.ones(5), abs=1e-3)


@pytest.mark.parametrize("shift", [0.0, 0.25, 1.0])
def test_w1_between_shifted_gaussians_is_the_shift(shift):
    p = gauss_grid([0.0, 1.0], [0.5, 0.3])
    assert wasserstein1(p, gauss_grid([shift, 1.0 + shift], [0.5, 0.3])) == pytest.approx(shift, abs=1e-4)
    qs = gauss_samples([shift, 1.0 + shift], [0.5, 0.3], s=20000, seed=2)
    assert wasserstein1(p, qs) == pytest.approx(shift, abs=0.01)


def test_w1_counts_sample_mass_outside_the_grid():
    p = gauss_grid([7.5], [0.1])
    q = Posterior(params=("t",), units=("",), samples=np.full((1, 10, 1), 10.0))  # all mass beyond grid end 8
    assert wasserstein1(p, q) == pytest.approx(2.5, abs=2e-3)


def test_regret_and_log_score_gap(calibrated):
    m, truth = calibrated
    exact = gauss_grid(m, 0.3)
    assert regret(exact, exact, truth)["rmse_regret"] == pytest.approx(0.0, abs=1e-12)
    worse = gauss_grid(m + 0.2, 0.3)
    reg = regret(exact, worse, truth)
    assert reg["rmse_regret"] > 0.05 and reg["mae_regret"] > 0.03 and reg["rmse_ratio"] > 1.1
    # E[log p* - log q] at the truth estimates KL = 0.2^2 / (2 * 0.3^2) = 0.222 nats
    assert log_score_gap(exact, worse, truth) == pytest.approx(0.222, abs=0.03)


# -- score_posterior ---------------------------------------------------------------------------------------
def test_score_posterior_keys_and_exact_self_score(calibrated):
    m, truth = calibrated[0][:1500], calibrated[1][:1500]
    exact = gauss_grid(m, 0.3)
    s = score_posterior(exact, truth, exact)
    assert set(SCORE_KEYS) <= set(s)
    assert s["kl_to_exact"] == pytest.approx(0.0, abs=1e-9) and s["w1_to_exact"] == pytest.approx(0.0, abs=1e-9)
    assert s["coverage_68"] == pytest.approx(0.68, abs=0.04) and s["pit_ks_p"] > 0.01
    assert s["rmse"] == pytest.approx(0.3, rel=0.05) and s["n"] == len(m)
    samp = score_posterior(gauss_samples(m, 0.3, s=500), truth, exact)
    assert samp["rmse_ratio"] == pytest.approx(1.0, abs=0.01) and samp["kl_to_exact"] < 0.02
    none = score_posterior(exact, truth)
    assert none["kl_to_exact"] is None and none["w1_to_exact"] is None and none["crps"] > 0


def test_score_posterior_multi_param_and_invalid_rows():
    rng = np.random.default_rng(3)
    n = 500
    truth = rng.normal(size=(n, 2))
    samples = truth[:, None, :] + rng.normal(size=(n, 300, 2)) * np.array([0.1, 1.0])
    post = Posterior(params=("a", "b"), units=("", ""), samples=samples)
    post.valid = np.ones(n, bool)
    post.valid[:10] = False
    allp = score_posterior_all(post, truth)
    assert allp["a"]["rmse"] < 0.05 < allp["b"]["rmse"]
    assert allp["a"]["n"] == n - 10 and allp["a"]["n_excluded"] == 10
    assert score_posterior(post, truth, param=1)["rmse"] == allp["b"]["rmse"]


# -- per bin -------------------------------------------------------------------------------------------------
def test_metrics_per_bin_counts_and_values():
    truth = np.array([0.1, 0.2, 1.1, 1.2, 1.3, 2.0])
    post = gauss_grid(truth + np.array([0.1, -0.1, 0.2, 0.2, 0.2, 0.0]), 0.5)
    exact = gauss_grid(truth, 0.5)
    rows = metrics_per_bin(truth, post, [0.0, 1.0, 2.0, 3.0, 4.0], exact=exact)
    assert [r["n"] for r in rows] == [2, 3, 1, 0]                # half-open bins: 2.0 falls in [2, 3)
    assert [r["n"] for r in metrics_per_bin(truth, post, [0.0, 1.0, 2.0])] == [2, 4]   # last bin is closed
    assert rows[0]["rmse"] == pytest.approx(0.1, abs=1e-3) and rows[0]["bias"] == pytest.approx(0.0, abs=1e-3)
    assert rows[1]["bias"] == pytest.approx(0.2, abs=1e-3) and rows[1]["rmse_exact"] == pytest.approx(0, abs=1e-3)
    assert rows[1]["mean_std"] == pytest.approx(0.5, rel=1e-3) and rows[1]["coverage_95"] == 1.0
    assert np.isnan(rows[3]["rmse"]) and metrics_per_bin(truth, post, [0, 3])[0]["rmse_exact"] is None


# -- PPC -----------------------------------------------------------------------------------------------------
def test_ppc_uniform_when_replicas_match_and_flags_a_shifted_feature():
    rng = np.random.default_rng(7)
    n, s = 2000, 200
    mu = rng.normal(size=(n, 1, 2))
    x_obs = (mu[:, 0, :] + rng.normal(size=(n, 2)))
    x_rep = mu + rng.normal(size=(n, s, 2))
    x_rep[:, :, 1] += 0.8                             # feature 1 is mis-modelled
    p = ppc_pvalues(x_obs, x_rep)
    ks = ppc_uniformity(p)
    assert ks[0] > 0.01 and ks[1] < 1e-6
    x_obs[0, 0] = np.nan
    assert np.isnan(ppc_pvalues(x_obs, x_rep)[0, 0])
    d = ppc_discrepancy(x_obs[:, :1], x_rep[:, :, :1])
    assert d["mean_chi2_per_dof"] == pytest.approx(1.0, abs=0.1) and d["dof"][0] == 0
    assert ppc_discrepancy(x_obs, x_rep)["mean_chi2_per_dof"] > 1.3
