"""Tests of the vectorized NUTS driver and of the convergence diagnostics (R-hat, bulk ESS)."""

from __future__ import annotations

import numpy as np

from core.inference.hmc import NutsSettings, ess_bulk, rank_normalized_rhat, run_nuts, split_rhat


def test_rhat_iid_near_one_and_detects_stuck_chains():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4, 1000))
    r = rank_normalized_rhat(x)
    assert r.shape == (50,)
    assert np.all(r < 1.01)
    assert np.all(np.abs(split_rhat(x) - 1) < 0.01)
    bad = x.copy()
    bad[:, 0] += 1.5                                   # one chain in another mode
    assert np.all(rank_normalized_rhat(bad) > 1.1)
    scale = x.copy()
    scale[:, 0] *= 4.0                                 # same location, different spread: only the tail R-hat sees it
    assert np.all(rank_normalized_rhat(scale) > 1.05)
    trend = x + np.linspace(0, 2, 1000)                # non-stationary within chains: split R-hat sees it
    assert np.all(split_rhat(trend) > 1.1)


def test_ess_iid_and_autocorrelated():
    rng = np.random.default_rng(1)
    n, c, s = 20, 4, 1000
    iid = rng.normal(size=(n, c, s))
    e = ess_bulk(iid)
    assert np.all(np.abs(e / (c * s) - 1) < 0.25)
    rho = 0.9
    ar = np.empty_like(iid)
    ar[..., 0] = iid[..., 0]
    for t in range(1, s):
        ar[..., t] = rho * ar[..., t - 1] + np.sqrt(1 - rho ** 2) * iid[..., t]
    expected = c * s * (1 - rho) / (1 + rho)
    assert np.all(np.abs(ess_bulk(ar) / expected - 1) < 0.4)


def _gaussian_gen(mu, sd):
    import jax.numpy as jnp

    def potential(theta):
        return 0.5 * jnp.sum(((theta - mu) / sd) ** 2)
    return potential


def test_run_nuts_on_gaussians_with_padding():
    rng = np.random.default_rng(2)
    n, dim = 11, 2                                      # not a multiple of the batch size -> padded last batch
    mu = rng.normal(size=(n, dim)) * 3
    sd = np.exp(rng.normal(size=(n, dim)) * 0.5)
    init = mu[:, None, :] + rng.normal(size=(n, 4, dim))
    calls = []
    s = NutsSettings(chains=4, warmup=300, draws=500, batch_size=8)
    res = run_nuts(_gaussian_gen, (mu, sd), init, s, seed=0, progress=lambda d, t: calls.append((d, t)))
    assert res.samples.shape == (n, 4, 500, dim)
    assert calls[-1] == (n, n) and len(calls) == 2
    flat = res.samples.reshape(n, -1, dim)
    np.testing.assert_allclose(flat.mean(axis=1), mu, atol=0.15 * sd.max())
    np.testing.assert_allclose(flat.std(axis=1) / sd, 1.0, atol=0.12)
    assert res.divergences.sum() == 0
    assert np.all(rank_normalized_rhat(res.samples[..., 0]) < 1.02)
    assert np.all(ess_bulk(res.samples[..., 0]) > 400)
    # determinism by seed
    res2 = run_nuts(_gaussian_gen, (mu, sd), init, s, seed=0)
    np.testing.assert_array_equal(res.samples, res2.samples)
