"""dm_to_galaxies: field simulator, exact oracle (brute-force Monte Carlo check of section 4.6), metrics, readers."""

from __future__ import annotations

import numpy as np
import pytest

from core.tasks.dm_to_galaxies.oracle import oracle_field
from core.tasks.dm_to_galaxies.simulator import (FieldSimConfig, field_tables, hod_mean, sample_galaxies,
                                                 simulate_dm, simulate_fields)

SMALL = FieldSimConfig(dim=3, n_grid=8, box_size=12.0, log_m_lo=11.5, log_m_hi=13.0, dlog_m=0.5, log_m_min=11.8,
                       sigma_log_m=0.3, log_m0=11.5, log_m1=12.3, alpha=1.0, smoothing=1.5)


def test_oracle_matches_brute_force_monte_carlo():
    """8^3 box, 3 mass bins, 2e4 realisations: occupation frequencies and mean counts agree with the oracle."""
    rng = np.random.default_rng(1)
    dm = simulate_dm(SMALL, rng)
    p, mu = oracle_field(dm, SMALL)
    n_real = 20000
    occ = np.zeros(SMALL.shape)
    cnt = np.zeros(SMALL.shape)
    for _ in range(n_real):
        g = sample_galaxies(dm, SMALL, rng)
        occ += g > 0
        cnt += g
    z = (occ / n_real - p) / np.sqrt(p * (1 - p) / n_real)
    assert 0.85 < np.sqrt(np.mean(z ** 2)) < 1.15
    assert np.mean(z) == pytest.approx(0.0, abs=0.15)
    # the mean count: the z-scores need the count variance; compare totals and per-voxel relative error
    assert cnt.sum() / n_real == pytest.approx(mu.sum(), rel=0.01)
    assert np.corrcoef(cnt.ravel() / n_real, mu.ravel())[0, 1] > 0.99
    # the test has power: the naive Poisson-galaxy approximation 1 - exp(-E[N]) is rejected
    naive = -np.expm1(-mu)
    z_naive = (occ / n_real - naive) / np.sqrt(naive * (1 - naive) / n_real)
    assert np.sqrt(np.mean(z_naive ** 2)) > 1.5


def test_simulator_reproduces_hod_number_density_and_is_deterministic():
    cfg = FieldSimConfig(dim=3, n_grid=16)
    t = field_tables(cfg)
    expected = float((t.n_halo * (t.ncen + t.nsat)).sum()) * 16 ** 3
    assert expected / 25.0 ** 3 == pytest.approx(3.0e-2, rel=0.1)     # [D] n_g(M_r<-18) = 3.0e-2 (h/Mpc)^3
    dm, gal = simulate_fields(6, 3, cfg)
    assert gal.sum() / 6 == pytest.approx(expected, rel=0.2)
    assert dm.mean() == pytest.approx(1.0, abs=0.1) and dm.min() > 0
    dm2, gal2 = simulate_fields(3, 3, cfg)                              # prefix property
    np.testing.assert_array_equal(gal[:3], gal2)
    np.testing.assert_array_equal(dm[:3], dm2)


def test_zheng07_means_and_satellite_fraction_mr20():
    m = np.array([1e11, 1e12, 1e13, 1e14])
    ncen, nsat = hod_mean(m, (12.02, 0.26, 11.38, 13.31, 1.06))
    assert ncen[0] < 1e-3 and ncen[-1] == pytest.approx(1.0) and ncen[1] == pytest.approx(0.459, abs=0.01)
    assert nsat[0] == 0.0 and nsat[-1] == pytest.approx(((1e14 - 10 ** 11.38) / 10 ** 13.31) ** 1.06)
    cfg = FieldSimConfig(dim=3, n_grid=8).with_hod("Mr-20")
    t = field_tables(cfg)
    n_cen, n_sat = (t.n_halo * t.ncen).sum(), (t.n_halo * t.nsat).sum()
    assert (n_cen + n_sat) / cfg.voxel_volume == pytest.approx(6.3e-3, rel=0.1)   # [D] T30
    assert n_sat / (n_cen + n_sat) == pytest.approx(0.24, abs=0.04)


def test_kernels_are_normalised_and_2d_slab_density():
    cfg = FieldSimConfig(n_grid=32)
    t = field_tables(cfg)
    np.testing.assert_allclose(t.kernels.reshape(len(t.mass), -1).sum(1), 1.0, rtol=1e-9)
    dm = simulate_dm(cfg, np.random.default_rng(0))
    assert dm.shape == (32, 32) and 0.7 < dm.mean() < 1.3


# ---------------------------------------------------------------------------------------------------- metrics
def test_classification_and_pr_metrics_known_answers():
    from core.tasks.dm_to_galaxies.metrics import (classification_metrics, pr_auc, precision_at_recall,
                                                   threshold_for_recall)

    truth = np.array([1, 1, 0, 0, 0, 1, 0, 0], bool)
    pred = np.array([1, 0, 1, 0, 0, 1, 0, 0], bool)
    m = classification_metrics(pred, truth)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["mcc"] == pytest.approx((2 * 4 - 1 * 1) / np.sqrt(3 * 3 * 5 * 5))
    score = np.array([0.9, 0.2, 0.8, 0.1, 0.05, 0.7, 0.3, 0.0])
    # ranking: 0.9(T) 0.8(F) 0.7(T) 0.3(F) 0.2(T) -> AP = (1 + 2/3 + 3/5) / 3
    assert pr_auc(score, truth) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert pr_auc(truth.astype(float), truth) == pytest.approx(1.0)
    assert threshold_for_recall(score, truth, 0.6) == pytest.approx(0.7)
    assert precision_at_recall(score, truth, 1.0) == pytest.approx(3 / 5)


def test_recall_operating_point_with_confidence_holds_out_of_sample():
    """Set on 1,000 positives at recall 0.95: new-set recall falls short ~half the time plainly, ~10% with c=0.9."""
    from core.tasks.dm_to_galaxies.metrics import threshold_for_recall

    rng = np.random.default_rng(1)
    short = {0.0: 0, 0.9: 0}
    for _ in range(200):
        val_pos, test_pos = rng.normal(size=1000), rng.normal(size=20000)  # scores of occupied voxels
        val = np.r_[val_pos, rng.normal(-2.0, 1.0, size=3000)]
        truth = np.r_[np.ones(1000, bool), np.zeros(3000, bool)]
        for c in short:
            t = threshold_for_recall(val, truth, 0.95, confidence=c)
            short[c] += np.mean(test_pos >= t) < 0.95
    assert 0.35 < short[0.0] / 200 < 0.65
    assert 0.03 < short[0.9] / 200 < 0.2


def test_power_spectrum_ratios_on_known_fields():
    from core.tasks.dm_to_galaxies.metrics import (k_bins, one_point_pdf, poisson_deviance,
                                                   transfer_and_correlation)

    rng = np.random.default_rng(0)
    lam = np.exp(rng.normal(size=(16, 32, 32)))
    truth = rng.poisson(lam)
    same = transfer_and_correlation(truth, truth, 25.0)
    np.testing.assert_allclose(same["T"], 1.0)
    np.testing.assert_allclose(same["r"], 1.0)
    indep = transfer_and_correlation(rng.poisson(lam), truth, 25.0)       # another sample: T ~ 1, r < 1
    assert np.mean(np.abs(indep["T"] - 1)) < 0.1 and 0.2 < np.mean(indep["r"]) < 0.9
    smooth = transfer_and_correlation(lam, truth, 25.0)                   # the mean field: less power
    assert np.all(smooth["T"] < 1.0)
    assert len(same["k"]) == len(k_bins(32, 25.0)) - 1 and same["k"][0] > 2 * np.pi / 25.0
    assert one_point_pdf(np.array([0, 0, 1, 7]), 3).tolist() == [0.5, 0.25, 0.0, 0.25]
    assert poisson_deviance(lam, truth) < poisson_deviance(np.full_like(lam, lam.mean()), truth)


# ---------------------------------------------------------------------------------------------------- readers
def test_readers_npy_hdf5_fits_and_errors(tmp_path):
    import h5py
    from astropy.io import fits

    from core.errors import GPSError
    from core.tasks.dm_to_galaxies.io import read_field

    rng = np.random.default_rng(0)
    maps = rng.lognormal(size=(3, 16, 16)) * 1e10
    p = tmp_path / "Maps_Mtot_Nbody_IllustrisTNG_LH_z=0.00.npy"
    np.save(p, maps)
    d = read_field(p)
    assert d.dm.shape == (3, 16, 16) and d.box_size == 25.0 and d.dim == 2
    np.testing.assert_allclose(d.dm.reshape(3, -1).mean(1), 1.0, rtol=1e-5)
    cube = rng.lognormal(size=(8, 8, 8))
    h = tmp_path / "cube.h5"
    with h5py.File(h, "w") as f:
        f.attrs["BoxSize"] = 50000.0                                         # kpc/h, TNG style
        f["delta"] = cube
    d = read_field(h, dim=3)
    assert d.dm.shape == (1, 8, 8, 8) and d.box_size == pytest.approx(50.0)
    ff = tmp_path / "map.fits"
    hdu = fits.PrimaryHDU(maps[0])
    hdu.header["BOXSIZE"] = 20.0
    hdu.writeto(ff)
    assert read_field(ff).box_size == 20.0
    bad = maps.copy()
    bad[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(GPSError, match="non-finite"):
        read_field(tmp_path / "nan.npy", box_size=25.0)
    np.save(tmp_path / "neg.npy", maps - 2e10)
    with pytest.raises(GPSError, match="negative density"):
        read_field(tmp_path / "neg.npy", box_size=25.0)
    np.save(tmp_path / "rank.npy", np.ones(5))
    with pytest.raises(GPSError, match="2 to 4 axes"):
        read_field(tmp_path / "rank.npy", box_size=25.0)
    np.save(tmp_path / "nobox.npy", maps)
    with pytest.raises(GPSError, match="box size"):
        read_field(tmp_path / "nobox.npy")
    with pytest.raises(GPSError, match="larger than"):
        read_field(p, max_voxels=100)
    np.save(tmp_path / "rect.npy", np.ones((2, 8, 9)))
    with pytest.raises(GPSError, match="square"):
        read_field(tmp_path / "rect.npy", box_size=25.0)
