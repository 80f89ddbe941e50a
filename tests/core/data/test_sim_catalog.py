"""Catalogue simulator: determinism, prefix property, literature marginals (T7, T8), exact-posterior calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from core.data.cache import cache_path, cached, load_arrays, save_arrays
from core.data.simulators import SIMULATORS
from core.data.simulators.catalog import (FEATURES, CatalogSimConfig, cov_obs, mean_obs_given_mstar,
                                          simulate_catalog)
from core.data.simulators.catalog_posterior import ExactPosterior
from core.errors import GPSError
from core.tasks import get_task


@pytest.fixture(scope="module")
def big():
    return simulate_catalog(200_000, seed=11)


def test_schema_and_meta():
    d = simulate_catalog(50, seed=3)
    task = get_task("halo_mass")
    assert d.features == task.input_names == FEATURES and d.targets == ("log_mh",)
    assert d.units["log_mstar"] == "dex(solMass)" and d.units["log_mh"] == "dex(solMass)"
    assert d.meta["simulator"] == "catalog" and d.meta["seed"] == 3
    assert CatalogSimConfig.from_dict(d.meta["config"]) == CatalogSimConfig()
    assert set(d.extra) >= {"e", "q", "log_mstar_true", "bt", "logz"}
    assert np.isfinite(d.x).all() and np.all((d.y >= 10.5) & (d.y <= 15.0))


def test_determinism_and_prefix():
    a = simulate_catalog(1000, seed=5)
    b = simulate_catalog(2500, seed=5)
    c = simulate_catalog(1000, seed=6)
    assert np.array_equal(a.x, b.x[:1000]) and np.array_equal(a.y, b.y[:1000])
    assert np.array_equal(a.extra["q"], b.extra["q"][:1000])
    assert np.array_equal(a.x, simulate_catalog(1000, seed=5).x)
    assert not np.allclose(a.x, c.x)
    empty = simulate_catalog(0, seed=5)
    assert empty.x.shape == (0, 8) and empty.y.shape == (0, 1)


def test_feature_subset_is_column_selection():
    cfg = CatalogSimConfig(features=("g_r", "log_mstar"))
    d = simulate_catalog(300, seed=2, config=cfg)
    full = simulate_catalog(300, seed=2)
    assert d.features == ("g_r", "log_mstar")
    assert np.array_equal(d.x, full.x[:, [3, 0]])


def test_bad_config_is_refused():
    with pytest.raises(GPSError, match="features"):
        CatalogSimConfig(features=("log_mstar", "colour_xyz"))
    with pytest.raises(GPSError, match="positive-definite"):
        CatalogSimConfig(rho_sfr_col=-0.95, rho_col=0.95, rho_sfr_red=0.95)
    with pytest.raises(GPSError):
        CatalogSimConfig(logmh_min=12.0, logmh_max=12.2)


def test_mean_and_cov_shapes():
    mu = mean_obs_given_mstar(np.array([[10.0], [11.0]]), np.ones((1, 3)), CatalogSimConfig())
    assert mu.shape == (2, 3, 8)
    cov = cov_obs(0, CatalogSimConfig())
    assert cov.shape == (8, 8) and np.allclose(cov, cov.T)
    # the sample covariance of x given fixed latents matches cov_obs (single source of truth)
    cfg = CatalogSimConfig(prior="flat", logmh_min=11.0, logmh_max=11.5)
    d = simulate_catalog(20_000, seed=9, config=cfg)
    sf = d.extra["q"] == 0
    resid = d.x[sf] - mean_obs_given_mstar(d.extra["log_mstar_true"][sf], 0, cfg)
    assert np.abs(np.cov(resid.T) - cov_obs(0, cfg)).max() < 0.01


def test_marginal_quenched_fraction_T7(big):
    x = big.x
    ssfr = x[:, 1] - x[:, 0]
    for logm, lit in ((9.7, 0.25), (10.5, 0.47), (11.3, 0.81)):
        sel = np.abs(x[:, 0] - logm) < 0.1
        assert sel.sum() > 100
        assert abs((ssfr[sel] < -11).mean() - lit) < 0.12


def test_passive_haloes_heavier_T8(big):
    x, y, q = big.x, big.y[:, 0], big.extra["q"]
    for lo in (10.3, 10.6, 10.9):
        sel = (x[:, 0] >= lo) & (x[:, 0] < lo + 0.3)
        ratio = np.mean(10 ** y[sel & (q == 1)]) / np.mean(10 ** y[sel & (q == 0)])
        assert ratio >= 1.9


def test_colour_bimodality_T12(big):
    gr, q = big.x[:, 3], big.extra["q"]
    massive = big.x[:, 0] > 10.3
    assert 0.80 < np.median(gr[massive & (q == 1)]) < 1.0            # red sequence ~0.9
    assert 0.3 < np.median(gr[massive & (q == 0)]) < 0.75            # blue cloud (dusty at high mass)


def _pit_ks(post, y):
    pit = post.cdf_at(y)[:, 0]
    return stats.kstest(pit, "uniform").pvalue


def test_exact_posterior_calibrated_and_normalised():
    d = simulate_catalog(2000, seed=101)
    ep = ExactPosterior()
    post = ep.posterior(d.x)
    assert np.allclose(np.trapezoid(post.pdf, post.grid, axis=1), 1.0)
    assert _pit_ks(post, d.y[:, 0]) > 0.01
    m = post.mean()[:, 0]
    rmse = np.sqrt(np.mean((m - d.y[:, 0]) ** 2))
    r2 = 1 - rmse ** 2 / np.var(d.y[:, 0])
    assert 0.07 < rmse < 0.2 and r2 > 0.85                            # T14 ballpark (mass range 10.5-15)
    # informative: far better than the prior
    prior_sd = np.sqrt(np.trapezoid(np.exp(ep.log_prior) * (ep.grid - np.trapezoid(
        np.exp(ep.log_prior) * ep.grid, ep.grid)) ** 2, ep.grid))
    assert rmse < 0.5 * prior_sd


def test_exact_posterior_feature_subset_and_nan_rows():
    rng = np.random.default_rng(0)
    names = tuple(rng.permutation(FEATURES)[:4])
    cfg = CatalogSimConfig(features=names, missing_fraction=0.3)
    d = simulate_catalog(2000, seed=202, config=cfg)
    assert np.isnan(d.x).any()
    post = ExactPosterior(cfg).posterior(d.x)
    assert np.isfinite(post.pdf).all()
    assert _pit_ks(post, d.y[:, 0]) > 0.01


def test_nan_marginalisation_equals_dropping_the_column():
    d = simulate_catalog(200, seed=7)
    x = d.x.copy()
    x[:100, 2] = np.nan
    full = ExactPosterior().posterior(x)
    drop = ExactPosterior(features=FEATURES[:2] + FEATURES[3:]).posterior(np.delete(d.x, 2, axis=1))
    assert np.allclose(full.pdf[:100], drop.pdf[:100], rtol=1e-8, atol=1e-10)
    assert not np.allclose(full.pdf[100:], drop.pdf[100:])


def test_nan_everywhere_gives_prior_and_inf_is_refused():
    ep = ExactPosterior()
    post = ep.posterior(np.full((2, 8), np.nan))
    assert np.allclose(post.pdf, np.exp(ep.log_prior)[None], rtol=1e-8)
    x = simulate_catalog(3, seed=1).x
    x[1, 4] = np.inf
    with pytest.raises(GPSError, match="r_i"):
        ep.posterior(x)
    with pytest.raises(GPSError, match="wrong shape"):
        ep.posterior(np.zeros((3, 5)))


def test_flat_prior_and_other_shmr_calibrated():
    cfg = CatalogSimConfig(prior="flat", logmh_min=11.0, logmh_max=14.5, shmr="moster18")
    d = simulate_catalog(2000, seed=303, config=cfg)
    post = ExactPosterior(cfg).posterior(d.x)
    assert _pit_ks(post, d.y[:, 0]) > 0.01


def test_flat_proposal_reaches_below_the_physical_edge():
    """``flat_below``: the flat proposal starts below logmh_min (its exact posterior and prior on the wider support),
    while the prior correction's grid is the physical support [logmh_min, logmh_max] and the ratio times the flat
    density is the HMF normalised there; an HMF set ignores the setting."""
    from core.data.simulators import prior_correction

    cfg = CatalogSimConfig(prior="flat", flat_below=0.5, logmh_max=14.0)
    d = simulate_catalog(3000, seed=505, config=cfg)
    h = d.y[:, 0]
    assert 10.0 <= h.min() < 10.05 and h.max() <= 14.0
    assert np.mean(h < 10.5) == pytest.approx(0.5 / 4.0, abs=0.02)
    post = ExactPosterior(cfg).posterior(d.x)
    assert post.grid[0] == 10.0 and _pit_ks(post, h) > 0.01
    corr = prior_correction(d)
    assert corr["grid"][0] == 10.5 and corr["grid"][-1] == 14.0 and corr["physical"] == {"prior": "hmf"}
    assert np.trapezoid(np.exp(corr["log_ratio"]) / 4.0, corr["grid"]) == pytest.approx(1.0, rel=1e-6)
    assert CatalogSimConfig(flat_below=0.5).logmh_range() == (10.5, 15.0)


def test_assembly_latent_calibrated():
    cfg = CatalogSimConfig(shmr="moster13", assembly_latent=True, n_a=8, n_h=141)
    d = simulate_catalog(1000, seed=404, config=cfg)
    assert "a" in d.extra
    post = ExactPosterior(cfg).posterior(d.x)
    assert _pit_ks(post, d.y[:, 0]) > 0.01


def test_registry_and_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("GPS_CACHE_DIR", str(tmp_path))
    spec = SIMULATORS.get("catalog")
    assert spec.task == "halo_mass" and spec.config_cls is CatalogSimConfig
    cfg = CatalogSimConfig(missing_fraction=0.1)
    calls = []

    def build():
        calls.append(1)
        return spec.simulate(500, seed=4, config=cfg)

    a = cached("catalog", cfg, 500, 4, build)
    b = cached("catalog", cfg, 500, 4, build)
    assert len(calls) == 1 and cache_path("catalog", cfg, 500, 4).exists()
    assert np.array_equal(a.x, b.x, equal_nan=True) and np.array_equal(a.y, b.y)
    assert a.features == b.features and a.units == b.units and a.meta == b.meta
    assert all(np.array_equal(a.extra[k], b.extra[k]) for k in a.extra)
    post = spec.exact_posterior_factory(cfg, b.features).posterior(b.x[:5])
    assert post.pdf.shape == (5, cfg.n_h)
    save_arrays({"maps": np.ones((2, 3, 4), np.float32), "names": np.array(["a", "bc"])}, {"k": [1, 2]},
                tmp_path / "m.h5")
    arr, meta = load_arrays(tmp_path / "m.h5")
    assert arr["maps"].shape == (2, 3, 4) and list(arr["names"]) == ["a", "bc"] and meta == {"k": [1, 2]}


def test_cache_key_follows_the_simulator_cache_version(tmp_path, monkeypatch):
    """A simulator whose output changed for the same config (photoz: filters resampled to 2 A) bumps CACHE_VERSION;
    a set cached before must not be loaded."""
    from core.tasks.photoz.simulator import PhotozSimConfig

    monkeypatch.setenv("GPS_CACHE_DIR", str(tmp_path))
    cfg = PhotozSimConfig()
    now = cache_path("photoz", cfg, 10, 1)
    assert now.name.endswith("_c2.h5")
    monkeypatch.setattr(PhotozSimConfig, "CACHE_VERSION", 3)
    assert cache_path("photoz", cfg, 10, 1) != now
    assert "_c" not in cache_path("catalog", CatalogSimConfig(), 10, 1).name.split("_v")[-1]
