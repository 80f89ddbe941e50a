"""photoz engine: template table, simulator, exact posterior (PIT), readers, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import GPSError
from core.tasks.photoz import io as pio
from core.tasks.photoz.exact import exact_posterior
from core.tasks.photoz.metrics import count_peaks, point_metrics, pz_summary, score
from core.tasks.photoz.simulator import PhotozSimConfig, asinh_flux, asinh_mag, simulate
from core.tasks.photoz.templates import BANDS, TABLE_DIR, load_table, template_grid, verify_table

DATA = Path(__file__).parent / "data"
FAST = PhotozSimConfig(dz=0.005, av_grid=(0.0, 0.3, 0.8), n_age=12)  # coarse grid: same physics, ~40x cheaper


def test_template_table_checksum_and_config():
    verify_table()
    meta = json.loads((TABLE_DIR / "templates_v1.json").read_text())
    tab = load_table()
    assert tab["spectra"].shape == (len(meta["sfhs"]), len(meta["ages_gyr"]), len(meta["z_over_zsun"]),
                                    meta["wave"][2])
    assert np.all(tab["spectra"] >= 0) and np.all((tab["living_frac"] > 0.3) & (tab["living_frac"] <= 1))
    assert (TABLE_DIR / "templates_v1.npz").stat().st_size < 5e6


def test_ssp_sanity_r_magnitude():
    # simulators.md T27 [V-run]: 0.1 Gyr burst, log M = 10, z = 0.05, solar -> r ~ 14.5 AB
    g = template_grid(BANDS["sdss"], np.array([0.05, 0.06]), av_grid=(0.0,))
    i = np.flatnonzero((np.abs(g.age[:, 0] - 0.1049) < 1e-3) & (g.met == 1.0))[0]
    r = -2.5 * np.log10(g.flux[i, 0, 2] * 1e-6 / 3631)
    assert abs(r - 14.5) < 0.25
    # dust dims and redshift dims: fainter with A_V, fainter with z
    g2 = template_grid(BANDS["sdss"], np.array([0.05, 0.1]), av_grid=(0.0, 1.0))
    assert np.all(g2.flux[1::2, :, 2] < g2.flux[0::2, :, 2]) and np.all(g2.flux[:, 1, 2] < g2.flux[:, 0, 2])


def test_template_colours_are_smooth_in_redshift():
    """Band integrals on the filters' own sparse sampling aliased spectral features: g - r of a template jittered by
    ~0.006 mag between neighbouring z nodes (second differences), a sawtooth in the exact p(z)."""
    g = template_grid(BANDS["sdss"], np.arange(0.005, 0.3, 0.0025), av_grid=(0.0,))
    col = -2.5 * np.log10(g.flux[:, :, 1] / g.flux[:, :, 2])
    assert np.median(np.abs(np.diff(col, 2, axis=1))) < 5e-4


def test_asinh_roundtrip_and_negative_flux():
    b = np.full(5, 0.4)
    f = np.array([-3.0, -0.1, 0.0, 2.0, 1e4])
    m = asinh_mag(f, b)
    assert np.all(np.isfinite(m))
    np.testing.assert_allclose(asinh_flux(m, b), f, atol=1e-9)
    np.testing.assert_allclose(m[-1], -2.5 * np.log10(1e4 * 1e-6 / 3631), atol=1e-3)   # Pogson when bright


def test_simulate_deterministic_prefix_and_selection():
    a = simulate(300, seed=3, config=FAST)
    b = simulate(1500, seed=3, config=FAST)
    np.testing.assert_array_equal(a.x, b.x[:300])
    np.testing.assert_array_equal(a.y, b.y[:300])
    assert np.all(b.column("mag_r") < 17.77)
    assert a.targets == ("z", "age", "log_mstar", "met", "av")
    assert not np.array_equal(simulate(300, seed=4, config=FAST).x, a.x)
    with pytest.raises(GPSError, match="selection keeps almost no galaxies"):
        simulate(10, seed=1, config=FAST.replace(selection_mag=5.0))


def test_formed_mass_prior_has_a_schechter_like_cutoff():
    """log M_formed follows p ~ exp(-10^(log M - logm_cut)) on [logm_min, logm_max] (drawn before the selection),
    and logm_cut = 0 gives the flat prior."""
    from scipy import stats

    from core.tasks.photoz.simulator import logm_from_uniform

    cfg = PhotozSimConfig()
    m = logm_from_uniform(np.random.default_rng(0).uniform(size=20000), cfg)
    fine = np.linspace(cfg.logm_min, cfg.logm_max, 20001)
    cdf = np.cumsum(np.exp(-(10.0 ** (fine - cfg.logm_cut))))
    assert stats.kstest(m, lambda v: np.interp(v, fine, cdf / cdf[-1])).pvalue > 0.01
    assert np.mean(m > 11.5) < 0.02 and m.max() <= cfg.logm_max
    flat = PhotozSimConfig(logm_cut=0.0, logm_max=11.5)
    np.testing.assert_allclose(logm_from_uniform(np.array([0.0, 0.5, 1.0]), flat), [8.0, 9.75, 11.5])
    with pytest.raises(GPSError, match="logm_cut"):     # exp(-10^(8 - 5)): no mass left anywhere (NaN masses)
        PhotozSimConfig(logm_cut=5.0)


def test_amplitude_integral_matches_quadrature():
    """The exact posterior's analytic mass integral (cutoff prior, bounded log M) equals a direct quadrature of
    int dlogM p(log M) prod_b N(F_b; 10^(log M - 10) T_b, sigma_b^2) up to one constant, for the most massive mock."""
    from core.tasks.photoz.exact import fluxes_of, log_weights
    from core.tasks.photoz.simulator import grid_for, theta_log_prior, z_prior

    d = simulate(40, seed=5, config=FAST)
    flux, sigma = fluxes_of(d, FAST)
    grid = grid_for(FAST)
    i = int(np.argmax(d.extra["logm_formed"]))
    prior = theta_log_prior(FAST, grid)[:, None] + np.log(z_prior(FAST, grid.z))[None, :]
    with np.errstate(invalid="ignore"):
        lw = np.where(np.isfinite(prior), log_weights(flux[i : i + 1], sigma[i : i + 1], FAST)[0] - prior, -np.inf)
    m = np.linspace(FAST.logm_min, FAST.logm_max, 20001)
    log_pm = -(10.0 ** (m - FAST.logm_cut))
    amp = 10.0 ** (m - 10.0)
    top = np.argsort(lw.ravel())[::-1][:30]
    num = []
    for k in top:
        t, kz = np.unravel_index(k, lw.shape)
        ll = -0.5 * (((flux[i] - amp[:, None] * grid.flux[t, kz]) / sigma[i]) ** 2).sum(axis=1) + log_pm
        num.append(np.log(np.trapezoid(np.exp(ll - ll.max()), m)) + ll.max())
    diff = lw.ravel()[top] - np.array(num)
    assert np.ptp(diff) < 0.01      # (the analytic weights also carry the error model's Jacobian, ~1e-3 here)


def test_age_prior_is_a_fraction_of_the_universe_age():
    """age / t_univ(z) ~ U(age_frac_min, 1) (simulators.md 3.5) on log-spaced nodes, the same prior at every z, no
    galaxy older than the Universe."""
    from astropy.cosmology import Planck18

    from core.tasks.photoz.simulator import grid_for, theta_log_prior

    cfg = PhotozSimConfig()
    grid = grid_for(cfg)
    p = np.exp(theta_log_prior(cfg, grid))
    assert p.shape == (grid.n_templates,) and abs(p.sum() - 1) < 1e-9
    f = grid.age[:, 0] / Planck18.age(grid.z[0]).to_value("Gyr")
    nodes = np.unique(f)
    for j in (5, 20, 30, 38):                  # prior CDF of f at cell edges (geometric midpoints) = uniform
        edge = np.sqrt(nodes[j] * nodes[j + 1])
        np.testing.assert_allclose(p[f <= nodes[j]].sum(), (edge - nodes[0]) / (1 - nodes[0]), atol=1e-6)
    d = simulate(3000, seed=1, config=cfg.replace(selection_mag=99.0))
    t_univ = Planck18.age(d.y[:, 0]).to_value("Gyr")
    frac = d.y[:, 1] / t_univ
    assert frac.max() <= 1.0 + 1e-5 and frac.min() >= cfg.age_frac_min - 1e-5  # (ages linear in z between nodes)
    assert abs(np.median(frac) - 0.51) < 0.04 and abs(np.mean(frac < 0.25) - 0.235) < 0.03
    # every template keeps its fraction at every z (a fixed 13 Gyr template dropped out of the prior at z = 0.06)
    t_grid = Planck18.age(grid.z).to_value("Gyr")
    np.testing.assert_allclose(grid.age, f[:, None] * t_grid[None, :], rtol=1e-9)


def test_pruned_weights_match_the_full_sum(monkeypatch):
    """Pruning (template, z) pairs more than _PRUNE nats below a galaxy's best changes no p(z)."""
    import core.tasks.photoz.exact as ex

    d = simulate(64, seed=8, config=FAST)
    pruned = exact_posterior(d, FAST).pdf
    monkeypatch.setattr(ex, "_PRUNE", np.inf)
    full = exact_posterior(d, FAST).pdf
    assert np.max(np.abs(pruned - full)) < 1e-8 * np.max(full)


@pytest.fixture(scope="module")
def mock_exact():
    data = simulate(2000, seed=11, config=FAST)
    return data, exact_posterior(data, FAST, n_samples=50, seed=0)


def test_exact_posterior_pit_uniform(mock_exact):
    # simulators.md section 5: the yardstick must itself be calibrated on fresh simulations
    data, post = mock_exact
    z = data.y[:, 0]
    s = score(post, z)
    assert post.valid.all()
    assert s["pit_ks_p"] > 0.01
    assert 0.64 < s["coverage_68"] < 0.72 and 0.93 < s["coverage_95"] < 0.97
    assert s["sigma_nmad"] < 0.03 and s["outlier_frac"] < 0.01


def test_exact_joint_samples_track_truth(mock_exact):
    data, post = mock_exact
    js = post.info["joint_samples"]
    assert js.shape == (2000, 50, 5)
    diff = np.abs(np.median(js[:, :, 0], 1) - post.quantiles([0.5])[:, 0, 0])
    assert np.median(diff) < 0.005                       # 50 draws: sampling noise only
    err_m = np.median(np.abs(np.median(js[:, :, 2], 1) - data.y[:, 2]))
    assert err_m < 0.2                                   # log M* to ~0.1 dex
    pit_m = (js[:, :, 2] < data.y[:, 2:3]).mean(1)
    assert 0.4 < pit_m.mean() < 0.6


def test_exact_flags_bad_rows():
    data = simulate(20, seed=2, config=FAST)
    data.extra["fluxerr_g"][3] = -1.0
    post = exact_posterior(data, FAST)
    assert not post.valid[3] and post.valid.sum() == 19


def test_read_mlz_table():
    d = pio.read_photometry(DATA / "photoz_SDSS_MGS_head40.train")
    assert len(d) == 40 and d.targets == ("z",)
    assert d.meta["columns"]["mag_z"] == "z" and d.meta["columns"]["z"] == "zs" and d.meta["columns"]["err_u"] == "eu"
    np.testing.assert_allclose(d.column("mag_u")[0], 19.655096)
    np.testing.assert_allclose(d.column("err_u")[0], 0.063680)                      # the repaired header
    np.testing.assert_allclose(d.column("err_g")[0], 0.008182)
    np.testing.assert_allclose(d.y[0, 0], 0.083125)


def test_read_annz_table():
    d = pio.read_photometry(DATA / "photoz_boss_dr10_head40.csv")
    assert len(d) == 40 and d.meta["columns"]["z"] == "Z" and d.meta["columns"]["mag_z"] == "MAG_Z"
    np.testing.assert_allclose(d.column("mag_u")[0], 22.744637)
    np.testing.assert_allclose(d.y[0, 0], 0.659822)


def test_fluxes_sentinels_and_guesses(tmp_path):
    from astropy.table import Table

    rng = np.random.default_rng(0)
    f = rng.uniform(50, 500, size=(6, 5))                                          # nanomaggies
    t = Table({f"modelFlux_{b}": f[:, j] for j, b in enumerate("ugriz")})
    for j, b in enumerate("ugriz"):
        t[f"modelFlux_ivar_{b}"] = np.full(6, 1.0)
    t["z_spec"] = np.linspace(0.05, 0.3, 6)
    t["modelFlux_g"][2] = np.nan
    t.write(tmp_path / "cat.fits")
    d = pio.read_photometry(tmp_path / "cat.fits")
    np.testing.assert_allclose(d.column("mag_r")[0], 22.5 - 2.5 * np.log10(f[0, 2]), atol=2e-3)
    np.testing.assert_allclose(d.extra["flux_r"][0], f[0, 2] * 3.631)
    assert d.extra["flag_bad"].tolist() == [False, False, True, False, False, False]
    m = Table({"mag_u": [20.0, 99.0, 20.0], "err_u": [0.1, 0.1, -0.1], "g": [19.0] * 3, "eg": [0.05] * 3,
               "r": [18.0] * 3, "er": [0.05] * 3, "i": [17.5] * 3, "ei": [0.05] * 3, "MAG_Z": [17.0] * 3,
               "MAGERR_Z": [0.05] * 3, "z": [0.1, 0.2, 0.3]})
    d2 = pio.from_table(m)
    assert d2.extra["flag_bad"].tolist() == [False, True, True] and np.isnan(d2.x[1, 0])
    with pytest.raises(GPSError, match="band u"):
        pio.from_table(Table({"g": [1.0]}))


def test_point_metrics_definitions():
    zt = np.full(1001, 0.1)
    dz = np.linspace(-0.01, 0.01, 1001)
    zp = zt + dz * 1.1
    zp[:5] = 0.6                                                                    # 5 outliers
    m = point_metrics(zp, zt)
    assert m["outlier_frac"] == pytest.approx(5 / 1001)
    assert m["sigma_nmad"] == pytest.approx(1.4826 * 0.005, rel=0.02)
    assert abs(m["bias"]) < 1e-4


def test_count_peaks_and_summary():
    g = np.linspace(0, 1, 401)
    one = np.exp(-0.5 * ((g - 0.3) / 0.03) ** 2)
    two = one + 0.5 * np.exp(-0.5 * ((g - 0.7) / 0.03) ** 2)
    tiny = one + 0.02 * np.exp(-0.5 * ((g - 0.7) / 0.03) ** 2)
    assert count_peaks(np.stack([one, two, tiny])).tolist() == [1, 2, 1]
    from core.inference.posterior import Posterior

    post = Posterior(params=("z",), units=("",), grid=g, pdf=np.stack([one, two]) / np.trapezoid(one, g))
    s = pz_summary(post, g)
    assert s["n_peaks"].tolist() == [1, 2] and abs(s["z_mode"][0] - 0.3) < 0.005
    assert abs(s["z_median"][0] - 0.3) < 0.005 and s["z_p16"][0] < 0.3 < s["z_p84"][0]


@pytest.mark.parametrize("name", ["photoz_SDSS_MGS_head40.train", "photoz_boss_dr10_head40.csv"])
def test_predict_file_on_real_formats(tmp_path, name):
    from core.tasks.photoz.predict import predict_file

    t = predict_file(DATA / name, tmp_path / "out.csv")
    assert len(t) == 40 and (tmp_path / "out.csv").exists()
    ok = t["valid"] == 1
    assert ok.sum() >= 30
    assert np.all(t["z_p16"][ok] <= t["z_median"][ok]) and np.all(t["z_median"][ok] <= t["z_p84"][ok])
    assert np.all(t["n_peaks"][ok] >= 1)
