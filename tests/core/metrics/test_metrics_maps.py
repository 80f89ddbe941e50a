"""Map metrics and streamed posterior-map summaries on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import GPSError
from core.inference.posterior_maps import MapPosteriorBuilder, summarize_map_samples
from core.metrics.maps import (coverage_pixel, galaxy_pixels, mae_pixel, per_object_mae, regret_reference,
                               residual_vs_truth, score_map_posterior)


def _gaussian_posterior(n=6, s=400, size=12, sigma=0.1, seed=0, scale=1.0):
    """Truth ~ N(mu, sigma^2) per pixel and posterior draws ~ N(mu, (scale*sigma)^2): calibrated when scale=1."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.2, 0.8, (n, size, size))
    truth = mu + sigma * rng.standard_normal(mu.shape)
    draws = mu[:, None] + scale * sigma * rng.standard_normal((n, s, size, size))
    mask = np.zeros((n, size, size), bool)
    mask[:, :2] = True
    b = MapPosteriorBuilder(n, (size, size), thresholds=(0.5,), keep_samples=2)
    for start in range(0, n, 4):            # streamed in two batches
        b.add(start, draws[start:start + 4])
    return b.finish(target="f_ex", unit="", mask=mask, method="toy", truth=truth.astype(np.float32)), draws, mu


def test_summaries_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.random((3, 50, 5, 4)).astype(np.float32)
    s = summarize_map_samples(x, thresholds=(0.3, 0.9))
    np.testing.assert_allclose(s["mean"], x.mean(1), rtol=1e-5)
    np.testing.assert_allclose(s["q16"], np.percentile(x, 16, axis=1), rtol=1e-5)
    np.testing.assert_allclose(s["p_exceed"][:, 1], (x > 0.9).mean(1))
    assert s["p_exceed"].shape == (3, 2, 5, 4)


def test_builder_streams_and_keeps_samples():
    post, draws, _ = _gaussian_posterior()
    assert post.mean.shape == (6, 12, 12) and post.samples.shape == (2, 400, 12, 12)
    np.testing.assert_allclose(post.samples, draws[:2].astype(np.float32))
    np.testing.assert_allclose(post.mean, draws.mean(1), atol=1e-5)
    assert np.isnan(post.residual[:, :2]).all() and np.isfinite(post.residual[:, 2:]).all()
    assert post.exceedance(0.5).shape == (6, 12, 12)
    with pytest.raises(GPSError):
        post.exceedance(0.7)
    sub = post.subset([1, 4])
    assert sub.n == 2 and sub.samples.shape[0] == 1


def test_builder_refuses_incomplete():
    b = MapPosteriorBuilder(3, (4, 4))
    b.add(0, np.zeros((2, 5, 4, 4)))
    with pytest.raises(GPSError):
        b.finish(target="f_ex", unit="", mask=np.zeros((3, 4, 4), bool), method="x")


def test_coverage_calibrated_and_overconfident():
    post, _, _ = _gaussian_posterior(n=8, s=400, size=16)
    s = score_map_posterior(post)
    assert abs(s["coverage_68_pixel"] - 0.6827) < 0.04
    assert abs(s["coverage_95_pixel"] - 0.9545) < 0.03
    narrow, _, _ = _gaussian_posterior(n=8, s=400, size=16, scale=0.3)
    assert score_map_posterior(narrow)["coverage_68_pixel"] < 0.35


def test_mae_known_answer_and_galaxy_pixels():
    truth = np.zeros((2, 4, 4))
    pred = np.full((2, 4, 4), 0.1)
    pred[0, 0, 0] = 5.0                     # a masked pixel: must not count
    mask = np.zeros((2, 4, 4), bool)
    mask[0, 0, 0] = True
    pix = galaxy_pixels(mask, truth)
    assert pix.sum() == 31
    assert mae_pixel(pred, truth, pix) == pytest.approx(0.1)
    truth2 = truth.copy()
    truth2[1, 3, 3] = np.nan                # no truth: excluded
    assert galaxy_pixels(mask, truth2).sum() == 30
    np.testing.assert_allclose(per_object_mae(pred, truth, pix), [0.1, 0.1])
    assert coverage_pixel(pred - 0.05, pred + 0.05, truth, pix) == 0.0
    assert coverage_pixel(pred - 0.2, pred + 0.2, truth, pix) == 1.0
    assert regret_reference(pred, pred, truth, pix) == 0.0
    assert regret_reference(pred, truth, truth, pix) == pytest.approx(0.1)


def test_residual_vs_truth_bins():
    truth = np.array([[[0.05, 0.15, 0.95, 0.95]]])
    pred = truth + np.array([[[0.1, -0.2, 0.0, -0.4]]])
    pix = np.ones_like(truth, bool)
    r = residual_vs_truth(pred, truth, pix, bins=10)
    assert r["count"][0] == 1 and r["count"][1] == 1 and r["count"][9] == 2
    assert r["mean_abs_residual"][9] == pytest.approx(0.2)
    assert r["mean_residual"][1] == pytest.approx(-0.2)
    assert np.isnan(r["mean_abs_residual"][5])


def test_score_against_exact_reference():
    post, _, mu = _gaussian_posterior(n=4, s=200, size=8)

    class Exact:                         # quacks like the IFU ReferencePosterior
        levels = (0.16, 0.5, 0.84)
        quantiles = np.stack([mu - 0.1, mu, mu + 0.1], axis=1)
        mean = mu

    s = score_map_posterior(post, exact=Exact())
    assert s["mae_exact"] == pytest.approx(mae_pixel(mu, post.truth, galaxy_pixels(post.mask, post.truth)))
    assert abs(s["regret_reference"]) < 0.01       # sample median of N(mu, .) is ~mu
    with pytest.raises(GPSError):
        score_map_posterior(post, pixels=np.zeros_like(post.mask))


def test_fits_export_keeps_wcs():
    from astropy.io import fits
    from astropy.wcs import WCS

    post, _, _ = _gaussian_posterior(n=2, s=20, size=8)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [4.5, 4.5]
    w.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    hdul = post.to_hdulist(1, header=w.to_header())
    names = [h.name for h in hdul]
    assert {"MEAN", "STD", "Q16", "Q84", "P_GT_0.5", "RESIDUAL", "INPUT_MASK"} <= set(names)
    assert hdul["MEAN"].header["CRVAL1"] == pytest.approx(150.0)
    np.testing.assert_allclose(hdul["MEAN"].data, post.mean[1])
    assert isinstance(hdul, fits.HDUList)
