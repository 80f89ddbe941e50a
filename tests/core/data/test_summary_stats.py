"""Summary statistics of the central_mass task: Sersic fit, axis ratio, R_e, lambda_Re, sigma_e, magnitudes."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.central_data import CentralMassData
from core.data.summary_stats import (FEATURES, abs_mag, fit_sersic, half_light_radius, integrated_colour, lambda_re,
                                     luminosity_map, pearson_matrix, second_moments, sersic_profile, sigma_e,
                                     summary_statistics)


def _sersic_image(n: float, re: float, q: float = 1.0, pa: float = 0.0, size: int = 129, oversample: int = 5):
    """Pixel-integrated (oversampled) elliptical Sersic image centred on the middle pixel."""
    c = (size - 1) / 2.0
    off = (np.arange(oversample) + 0.5) / oversample - 0.5
    y, x = np.mgrid[:size, :size].astype(float)
    img = np.zeros((size, size))
    for dy in off:
        for dx in off:
            xx, yy = x + dx - c, y + dy - c
            xm = xx * np.cos(pa) + yy * np.sin(pa)
            ym = -xx * np.sin(pa) + yy * np.cos(pa)
            img += sersic_profile(np.sqrt(xm ** 2 + (ym / q) ** 2), 1.0, re, n)
    return img / oversample ** 2, (c, c)


@pytest.mark.parametrize("n_true", [1.0, 4.0])
def test_sersic_fit_recovers_index(n_true):
    img, cen = _sersic_image(n_true, re=10.0, q=0.7, pa=0.5)
    n, re, _ = fit_sersic(img, np.ones_like(img, bool), cen, q=0.7, pa=0.5, r_min=1.5)
    assert abs(n - n_true) < 0.1 * n_true
    assert abs(re - 10.0) < 1.0


def test_axis_ratio_and_half_light_radius():
    img, cen = _sersic_image(1.0, re=8.0, q=0.5, pa=0.3)
    q, pa = second_moments(img, cen, radius=16.0)
    assert abs(q - 0.5) < 0.05
    assert abs(((pa - 0.3 + np.pi / 2) % np.pi) - np.pi / 2) < 0.05
    re = half_light_radius(img, cen, q, pa)
    assert abs(re - 8.0) < 0.8     # the image is truncated, the growth curve is close to R_e


def test_lambda_re_rotator_vs_dispersion():
    size = 48
    y, x = np.mgrid[:size, :size] - (size - 1) / 2.0
    flux = np.exp(-np.hypot(x, y) / 6.0)
    valid = np.ones((size, size), bool)
    v_rot = 200.0 * np.tanh(x / 3.0)
    zero = np.zeros((size, size))
    cen = ((size - 1) / 2.0,) * 2
    assert lambda_re(v_rot, zero + 1e-6, flux, valid, cen, 1.0, 0.0, 10.0) > 0.99
    assert lambda_re(zero, zero + 150.0, flux, valid, cen, 1.0, 0.0, 10.0) < 1e-6
    mixed = lambda_re(v_rot, zero + 150.0, flux, valid, cen, 1.0, 0.0, 10.0)
    assert 0.2 < mixed < 0.9
    assert sigma_e(zero, zero + 150.0, flux, valid, cen, 1.0, 0.0, 10.0) == pytest.approx(150.0)
    # V and sigma add in quadrature (ATLAS3D sigma_e)
    assert sigma_e(zero + 100.0, zero + 100.0, flux, valid, cen, 1.0, 0.0, 10.0) == pytest.approx(np.sqrt(2) * 100)


def test_magnitude_and_colour():
    # 1 pixel of 1 kpc^2 at mu such that Sigma_L = 1 Lsun/pc^2 -> L = 1e6 Lsun -> M = 4.65 - 15
    mu = np.full((1, 1), 4.65 + 21.572)
    lum = luminosity_map(mu, 1.0, 0.0)
    assert lum[0, 0] == pytest.approx(1e6)
    assert abs_mag(lum) == pytest.approx(4.65 - 15.0)
    # dimming: the same galaxy at z = 0.1 is 10 log10(1.1) mag fainter per arcsec^2, corrected back
    assert luminosity_map(mu + 10 * np.log10(1.1), 1.0, 0.1)[0, 0] == pytest.approx(1e6)
    assert integrated_colour(np.array([1.0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(0.5)


def test_summary_statistics_on_container_and_pearson():
    img, _ = _sersic_image(2.0, re=6.0, q=0.8, size=48, oversample=3)
    mu = 21.0 - 2.5 * np.log10(img)
    n = 4
    v = np.tile(100 * np.tanh((np.arange(24) - 11.5) / 3)[None, :], (24, 1))
    data = CentralMassData(maps={"image": np.repeat(mu[None], n, 0), "g_r": np.full((n, 48, 48), 0.7),
                                 "vel": np.repeat(v[None], n, 0), "sigma": np.full((n, 24, 24), 120.0)},
                           pixel_kpc={"image": np.full(n, 0.5), "g_r": np.full(n, 0.5), "vel": np.full(n, 0.5),
                                      "sigma": np.full(n, 0.5)},
                           extra={"redshift": np.zeros(n)})
    st = summary_statistics(data)
    assert set(FEATURES) <= set(st)
    assert np.all(np.isfinite(np.stack([st[k] for k in FEATURES])))
    assert np.allclose(st["g_r"], 0.7)
    assert abs(st["sersic_n"][0] - 2.0) < 0.4
    assert 0.0 < st["lambda_re"][0] < 1.0
    names, mat = pearson_matrix({"a": np.arange(10.0), "b": 2 * np.arange(10.0), "c": -np.arange(10.0)})
    assert names == ["a", "b", "c"]
    assert mat[0, 1] == pytest.approx(1.0) and mat[0, 2] == pytest.approx(-1.0)
