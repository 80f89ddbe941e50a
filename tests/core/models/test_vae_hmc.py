"""Tests of the vae_hmc model (conditional beta-VAE + JAX decoder + NUTS) on a linear-Gaussian toy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.training import TrainConfig
from core.models.priors import TargetPrior
from core.models.vae import VaeHmcConfig, VaeHmcModel

A = np.array([1.0, 0.5, -0.8])
S = np.array([0.5, 0.7, 1.0])
MU0, SD0 = 12.0, 0.8


def toy(n: int, seed: int) -> CatalogData:
    rng = np.random.default_rng(seed)
    y = MU0 + SD0 * rng.normal(size=n)
    x = ((y - MU0) / SD0)[:, None] * A + rng.normal(size=(n, 3)) * S
    return CatalogData(x=x, features=("a", "b", "c"), y=y, targets=("log_mh",), units={"log_mh": "dex(solMass)"})


def exact(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Analytic posterior mean/sd; NaN features are left out (that is the exact marginal posterior)."""
    obs = np.isfinite(x)
    xx = np.where(obs, x, 0.0)
    prec = 1.0 + (obs * A ** 2 / S ** 2).sum(axis=1)
    return MU0 + SD0 * (xx * A / S ** 2).sum(axis=1) / prec, SD0 / np.sqrt(prec)


CFG = VaeHmcConfig(latent_dim=2, hidden=64, prior="gaussian", prior_mean=MU0, prior_sd=SD0, warmup=200, draws=250,
                   batch_size=64, train=TrainConfig(epochs=40, batch_size=512, lr=3e-3, patience=6, seed=0))


@pytest.fixture(scope="module")
def trained() -> VaeHmcModel:
    data = toy(20000, 1)
    model = VaeHmcModel(CFG, data.features, data.targets, data.units)
    model.fit(data)
    return model


@pytest.fixture(scope="module")
def test_post(trained):
    test = toy(60, 7)
    test.x[40:, 2] = np.nan          # the last 20 galaxies miss feature c
    test.x[50:, 0] = np.nan          # the last 10 also miss feature a
    return test, trained.posterior(test, seed=3)


def test_posterior_matches_analytic_and_diagnostics(test_post):
    test, post = test_post
    assert post.samples.shape == (60, 4 * 250, 1)
    m, s = exact(test.x)
    err = np.abs(post.mean()[:, 0] - m) / s
    assert err.mean() < 0.15 and err.max() < 0.6
    assert np.abs(post.std()[:, 0] / s - 1).mean() < 0.1
    for key in ("rhat", "ess", "divergences"):
        assert post.diagnostics[key].shape == (60,)
    assert np.all(post.diagnostics["rhat"] < 1.05)
    assert np.median(post.diagnostics["rhat"]) < 1.01
    assert np.all(post.diagnostics["ess"] > 200)
    assert post.diagnostics["divergences"].sum() <= 2


def test_nan_marginalization_equals_dropping_the_feature(test_post, trained):
    """Galaxies with NaN features match the exact posterior that uses only the observed features."""
    test, post = test_post
    m, s = exact(test.x)
    full_sd = exact(np.nan_to_num(test.x, nan=0.0))[1]
    sel = slice(40, 60)
    assert np.all(s[sel] > full_sd[sel] * 1.05)            # the missing feature really widens the posterior
    assert np.abs(post.std()[sel, 0] / s[sel] - 1).mean() < 0.1
    assert (np.abs(post.mean()[sel, 0] - m[sel]) / s[sel]).mean() < 0.2
    # the potential ignores whatever value sits in a masked slot
    import jax.numpy as jnp

    gen, shared = trained._potential_gen()
    theta = jnp.asarray([0.3, -0.2, 0.5])
    xs, mask = trained._standardize(test.x[45:46])
    u1 = gen(*shared, jnp.asarray(xs[0]), jnp.asarray(mask[0]))(theta)
    xs2 = xs.copy()
    xs2[0, 2] = 123.0
    u2 = gen(*shared, jnp.asarray(xs2[0]), jnp.asarray(mask[0]))(theta)
    assert float(u1) == float(u2)


def test_jax_decoder_matches_torch():
    import torch

    from core.models.jax_decoder import decoder_apply, export_decoder

    for hetero in (False, True):
        cfg = CFG.replace(heteroscedastic=hetero, latent_dim=4, hidden=32, depth=3)
        model = VaeHmcModel(cfg, ("a", "b", "c"), ("log_mh",))
        torch.manual_seed(1)
        net = model._build()
        with torch.no_grad():
            net.log_sigma.normal_()
        rng = np.random.default_rng(0)
        y = rng.normal(size=200).astype(np.float32)
        z = rng.normal(size=(200, 4)).astype(np.float32)
        with torch.no_grad():
            mt, lt = net.decode(torch.as_tensor(y), torch.as_tensor(z))
        mj, lj = decoder_apply(export_decoder(net), y, z, hetero)
        np.testing.assert_allclose(np.asarray(mj), mt.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(np.asarray(lj), lt.detach().numpy(), atol=1e-5)


def test_inf_refused_and_untrained_refused(trained):
    test = toy(5, 2)
    test.x[1, 0] = np.inf
    with pytest.raises(GPSError, match="infinite"):
        trained.posterior(test)
    with pytest.raises(GPSError, match="not been trained"):
        VaeHmcModel(CFG, ("a", "b", "c"), ("log_mh",)).posterior(toy(2, 0))


def test_state_round_trip_identical_posterior(trained):
    tensors, extra = trained.get_state()
    json.dumps(extra)
    assert all(isinstance(v, np.ndarray) for v in tensors.values())
    clone = VaeHmcModel(CFG, trained.features, trained.targets, trained.units)
    clone.set_state(tensors, extra)
    test = toy(60, 9)            # same padded batch shape as the fixture: the compiled sampler is reused
    a = trained.posterior(test, seed=5)
    b = clone.posterior(test, seed=5)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.diagnostics["rhat"], b.diagnostics["rhat"])
    # n_samples is honoured: evenly thinned draws of every chain of the same run (diagnostics use every draw)
    c = clone.posterior(test, n_samples=400, seed=5)
    keep = np.unique(np.linspace(0, CFG.draws - 1, 400 // CFG.chains).round().astype(int))
    assert c.samples.shape == (len(test), 400, 1)
    np.testing.assert_array_equal(c.samples, a.samples.reshape(len(test), CFG.chains, -1)[:, :, keep].reshape(
        len(test), -1, 1))
    np.testing.assert_array_equal(c.diagnostics["rhat"], a.diagnostics["rhat"])


def test_posterior_predictive(trained, test_post):
    test, post = test_post
    xrep = trained.posterior_predictive(test, post, n=400, seed=0)
    assert xrep.shape == (60, 400, 3)
    # E[x_rep] = A (E[y|x] - MU0)/SD0 under the toy's generative model; Var adds the noise S^2
    ybar = (post.mean()[:, 0] - MU0) / SD0
    np.testing.assert_allclose(xrep.mean(axis=1), ybar[:, None] * A, atol=0.25)
    var_u = (post.std()[:, 0] / SD0) ** 2
    expected_sd = np.sqrt(S ** 2 + A ** 2 * var_u.mean())
    np.testing.assert_allclose(xrep.std(axis=1).mean(axis=0), expected_sd, rtol=0.1)
    assert np.all(xrep.std(axis=1).mean(axis=0) > S)      # wider than the noise alone


def test_training_prior_reflection_and_soft_edge():
    rng = np.random.default_rng(0)
    y = rng.uniform(10.5, 15.0, size=200000)
    p = TargetPrior.from_samples(y, bandwidth=0.05)
    inside = np.exp(p.log_prob(np.array([10.5, 10.51, 12.0, 14.99, 15.0])))
    np.testing.assert_allclose(inside, 1 / 4.5, rtol=0.1)         # flat up to the edges, no half-height drop
    out = p.log_prob(np.array([10.4, 15.1])) - p.log_prob(np.array([10.5, 15.0]))
    assert np.all(out < -10)                                        # ~ -0.5 (0.1/0.02)^2 = -12.5
    import jax.numpy as jnp

    grid = np.linspace(10.3, 15.2, 97)
    np.testing.assert_allclose(np.asarray(p.log_prob_jax(jnp.asarray(grid))), p.log_prob(grid), rtol=1e-5, atol=1e-4)   # float32
    arrays, extra = p.to_state()
    q = TargetPrior.from_state(arrays, json.loads(json.dumps(extra)))
    np.testing.assert_array_equal(q.log_prob(grid), p.log_prob(grid))
    with pytest.raises(GPSError):
        TargetPrior.from_samples(np.array([1.0, 1.0]))
