"""Tests of the amortized flow model on a linear-Gaussian toy with an analytic posterior."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.training import TrainConfig
from core.models.flows import FlowConfig, FlowModel

A = np.array([1.0, 0.5, -0.8])
S = np.array([0.5, 0.7, 1.0])
MU0, SD0 = 12.0, 0.8          # prior y ~ N(MU0, SD0^2), physical units (think log Mh)


def toy(n: int, seed: int) -> CatalogData:
    """y ~ N(MU0, SD0^2); x = A (y - MU0)/SD0 + noise S."""
    rng = np.random.default_rng(seed)
    y = MU0 + SD0 * rng.normal(size=n)
    x = ((y - MU0) / SD0)[:, None] * A + rng.normal(size=(n, 3)) * S
    return CatalogData(x=x, features=("a", "b", "c"), y=y, targets=("log_mh",), units={"log_mh": "dex(solMass)"})


def exact(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Analytic posterior mean and sd of y given x (n, 3); NaN inputs are missing (left out of the likelihood)."""
    obs = np.isfinite(x)
    prec = 1.0 + (obs * A ** 2 / S ** 2).sum(axis=1)
    mean_u = (np.where(obs, x, 0.0) * A / S ** 2).sum(axis=1) / prec
    return MU0 + SD0 * mean_u, SD0 / np.sqrt(prec)


@pytest.fixture(scope="module")
def trained() -> FlowModel:
    data = toy(20000, 1)
    cfg = FlowConfig(transforms=2, hidden=(64, 64),
                     train=TrainConfig(epochs=40, batch_size=512, lr=3e-3, patience=6, seed=0))
    model = FlowModel(cfg, data.features, data.targets, data.units)
    model.fit(data)
    return model


def test_posterior_matches_analytic(trained):
    test = toy(200, 7)
    post = trained.posterior(test, n_samples=4000, seed=3)
    assert post.samples.shape == (200, 4000, 1)
    m, s = exact(test.x)
    # the amortized posterior of a well-trained flow: mean within 0.05 SD0 and sd within 8 % of the exact ones
    assert np.abs(post.mean()[:, 0] - m).mean() < 0.05 * SD0
    assert np.abs(post.std()[:, 0] / s - 1).mean() < 0.08
    # coverage of the central 68 % interval on truths
    lo, hi = np.percentile(post.samples[:, :, 0], [16, 84], axis=1)
    cov = ((test.y[:, 0] > lo) & (test.y[:, 0] < hi)).mean()
    assert 0.55 < cov < 0.80


@pytest.mark.parametrize("observed", [(0,), (1, 2), (2,)])
def test_masked_inputs_match_the_analytic_posterior_of_the_subset(trained, observed):
    """Trained with random input masks, the flow gives q(y | x_S) for a subset S: the analytic posterior that uses
    only the observed inputs (zero-filled inputs without the mask would shrink the wrong way)."""
    test = toy(300, 8)
    test.x[:, [j for j in range(3) if j not in observed]] = np.nan
    post = trained.posterior(test, n_samples=2000, seed=4)
    m, s = exact(test.x)
    assert np.abs(post.mean()[:, 0] - m).mean() < 0.2 * s.mean()      # a fifth of the posterior sd
    assert np.abs(post.std()[:, 0] / s - 1).mean() < 0.1


def test_fast_sampler_equals_zuko(trained):
    """The compiled inverse splines give the same draws as zuko's transform.inv for the same base draws."""
    import jax.numpy as jnp
    import torch

    from core.models.flows import _rqs_inverse

    x = toy(16, 2).x
    z = np.random.default_rng(0).normal(size=(16, 300)).astype(np.float32)
    hor, ver, der = trained._knots(x)
    y = jnp.asarray(z)
    for t in range(hor.shape[0] - 1, -1, -1):
        y = _rqs_inverse(y, hor[t], ver[t], der[t])
    with torch.no_grad():
        c = torch.as_tensor(trained._context(x))
        ref = trained.flow(c).transform.inv(torch.as_tensor(z.T)[..., None])[..., 0].numpy().T
    np.testing.assert_allclose(np.asarray(y), ref, atol=2e-5)


def test_log_prob_matches_zuko_and_normalizes(trained):
    import torch

    x = toy(5, 3).x
    grid = np.linspace(MU0 - 6 * SD0, MU0 + 6 * SD0, 1201)
    lp = trained.log_prob(grid, x)
    assert lp.shape == (5, grid.size)
    np.testing.assert_allclose(np.trapezoid(np.exp(lp), grid, axis=1), 1.0, atol=1e-3)
    with torch.no_grad():
        c = torch.as_tensor(trained._context(x))
        ys = torch.as_tensor(((grid - trained.y_mean) / trained.y_std).astype(np.float32))[:, None, None]
        ref = trained.flow(c).log_prob(ys.expand(grid.size, 5, 1)).numpy().T - np.log(trained.y_std)
    np.testing.assert_allclose(lp, ref, atol=1e-4)


def test_nan_is_missing_inf_is_refused(trained):
    test = toy(10, 4)
    test.x[3, 1] = np.nan                       # masked training: a NaN input is a missing input
    post = trained.posterior(test, n_samples=10)
    assert np.isfinite(post.samples).all()
    test.x[3, 1] = np.inf
    with pytest.raises(GPSError, match="infinite"):
        trained.posterior(test, n_samples=10)


def test_unmasked_flow_refuses_nan_with_clear_error():
    data = toy(300, 1)
    m = FlowModel(FlowConfig(transforms=1, hidden=(8,), input_masks=False, train=TrainConfig(epochs=1)),
                  data.features, data.targets)
    m.fit(data)
    test = toy(10, 4)
    test.x[3, 1] = np.nan
    with pytest.raises(GPSError, match=r"missing \(NaN\).*row 3") as err:
        m.posterior(test, n_samples=10)
    assert err.value.field == "b"


def test_untrained_and_wrong_weights_are_refused():
    m = FlowModel(FlowConfig(), ("a", "b", "c"), ("log_mh",))
    with pytest.raises(GPSError, match="not been trained"):
        m.posterior(toy(3, 0))
    other = FlowModel(FlowConfig(transforms=2, hidden=(8,)), ("a", "b", "c"), ("log_mh",))
    other.flow = other._build()
    other.x_mean, other.x_std = np.zeros(3), np.ones(3)
    tensors, extra = other.get_state()
    with pytest.raises(GPSError, match="do not match"):
        m.set_state(tensors, extra)


@pytest.mark.slow
def test_sampling_rate_10k_galaxies_per_second():
    """Bar: >= 10,000 galaxies/s with 1,000 samples each (2 CPU cores; default 3 transforms, 8 features)."""
    import torch

    torch.set_num_threads(2)
    feats = tuple("abcdefgh")
    m = FlowModel(FlowConfig(), feats, ("log_mh",))
    m.flow = m._build()
    m.x_mean, m.x_std = np.zeros(8), np.ones(8)
    x = np.random.default_rng(0).normal(size=(40000, 8))
    m.sample(x[:9000], 1000)                      # compile
    t0 = time.perf_counter()
    m.sample(x, 1000)
    rate = len(x) / (time.perf_counter() - t0)
    print(f"flow sampling: {rate:.0f} galaxies/s with 1000 samples")
    assert rate >= 10000


def _reweighted_copy(model: FlowModel, c: float, tau: float) -> FlowModel:
    """The trained toy flow with a Gaussian prior ratio exp(-(y - c)^2 / 2 tau^2) on a grid (as a proposal-trained
    flow carries one), via the checkpoint state so that the round trip is tested too."""
    tensors, extra = model.get_state()
    g = np.linspace(MU0 - 6 * SD0, MU0 + 6 * SD0, 601)
    tensors["prior_grid"], tensors["prior_log_ratio"] = g, -0.5 * ((g - c) / tau) ** 2
    m = FlowModel(model.config, model.features, model.targets, model.units)
    m.set_state(tensors, extra)
    return m


def test_prior_reweighting_gives_the_analytic_reweighted_posterior(trained):
    """A Gaussian posterior N(m, s^2) times a Gaussian ratio N(c, tau^2) is Gaussian with precision 1/s^2 + 1/tau^2:
    the reweighted sampler and log_prob must give it (up to the flow's own error)."""
    c, tau = MU0 + 0.5, 0.6
    m = _reweighted_copy(trained, c, tau)
    assert m.get_state()[0]["prior_grid"].shape == (601,)
    test = toy(200, 11)
    mu, s = exact(test.x)
    prec = 1 / s ** 2 + 1 / tau ** 2
    mu_w, s_w = (mu / s ** 2 + c / tau ** 2) / prec, 1 / np.sqrt(prec)
    post = m.posterior(test, n_samples=4000, seed=1)
    assert np.abs(post.mean()[:, 0] - mu_w).mean() < 0.05 * SD0
    assert np.abs(post.std()[:, 0] / s_w - 1).mean() < 0.08
    # and it moved: the unweighted flow's means are far from the reweighted ones
    assert np.abs(trained.posterior(test, n_samples=2000, seed=1).mean()[:, 0] - mu_w).mean() > 0.1 * SD0
    g = np.linspace(MU0 - 6 * SD0, MU0 + 6 * SD0, 1201)
    lp = m.log_prob(g, test.x[:20])
    np.testing.assert_allclose(np.trapezoid(np.exp(lp), g, axis=1), 1.0, atol=2e-3)
    assert np.isneginf(m.log_prob(np.array([MU0 + 7 * SD0]), test.x[:3])).all()   # outside the prior's support


def test_flat_proposal_flow_is_reweighted_to_the_hmf_prior():
    """A halo_mass flow trained on a set drawn flat in log Mh carries the HMF / flat ratio (config prior='physical')
    and its posterior medians follow the exact HMF-prior posterior; 'training' keeps the flat prior; an HMF set
    needs no correction."""
    from core.data.simulators.catalog import CatalogSimConfig, simulate_catalog
    from core.data.simulators.catalog_posterior import ExactPosterior

    flat = simulate_catalog(20000, seed=1, config=CatalogSimConfig(prior="flat"))
    cfg = FlowConfig(hidden=(64, 64), train=TrainConfig(epochs=8, batch_size=512, lr=2e-3, patience=4, seed=0))
    m = FlowModel(cfg, flat.features, ("log_mh",))
    m.fit(flat)
    assert m.prior_grid is not None and "proposal" in m.history["prior"]
    test = simulate_catalog(600, seed=5, config=CatalogSimConfig(prior="flat", logmh_min=12.5, logmh_max=15.0))
    ex = ExactPosterior(CatalogSimConfig()).posterior(test.x).median()[:, 0]
    rew = m.posterior(test, n_samples=500, seed=0).median()[:, 0]
    g0, r0 = m.prior_grid, m.prior_log_ratio
    m.prior_grid = m.prior_log_ratio = None
    raw = m.posterior(test, n_samples=500, seed=0).median()[:, 0]
    m.prior_grid, m.prior_log_ratio = g0, r0
    assert np.median(np.abs(rew - ex)) < 0.06 and np.median(raw - ex) > 0.2   # the flat prior puts massive haloes high
    keep = FlowModel(cfg.replace(prior="training"), flat.features, ("log_mh",))
    keep._set_prior_correction(flat)
    assert keep.prior_grid is None
    hmf = simulate_catalog(100, seed=2, config=CatalogSimConfig())
    m._set_prior_correction(hmf)
    assert m.prior_grid is None
    with pytest.raises(GPSError, match="prior"):
        FlowConfig(prior="flat")


def test_prior_caveat_when_a_physical_prior_model_meets_proposal_data(trained):
    from core import api
    from core.data.simulators.catalog import CatalogSimConfig, simulate_catalog

    flat = simulate_catalog(50, seed=3, config=CatalogSimConfig(prior="flat"))
    hmf = simulate_catalog(50, seed=3, config=CatalogSimConfig())
    m = _reweighted_copy(trained, MU0, 1.0)
    assert "not calibration tests" in api.prior_caveat(m, flat) and "prior=hmf" in api.prior_caveat(m, flat)
    assert api.prior_caveat(m, hmf) is None and api.prior_caveat(trained, flat) is None


def test_quantile_table_sampler_is_exact_into_the_tails():
    """Draws from tabulated Gaussian CDFs (0.01 dex grid) follow the Gaussian, including its 0.1% quantiles."""
    from scipy.stats import kstest, norm

    from core.inference.prior_reweight import draw_from_quantiles as _draw_from_quantiles, quantile_table as _quantile_table

    g = np.linspace(10.5, 15.0, 451)
    mu, sd = np.array([[11.8], [12.8], [14.6]]), np.array([[0.15], [0.3], [0.08]])
    cdf = norm.cdf((g - mu) / sd)
    cdf = (cdf - cdf[:, :1]) / (cdf[:, -1:] - cdf[:, :1])
    out = np.empty((3, 200000))
    _draw_from_quantiles(_quantile_table(cdf, g), np.random.default_rng(0), out)
    z = (out - mu) / sd
    for i in range(2):                                      # rows 0, 1: far from the grid's ends
        assert kstest(z[i], "norm").pvalue > 0.01
        np.testing.assert_allclose(np.quantile(z[i], [0.001, 0.999]), [-3.09, 3.09], atol=0.06)
    assert out[2].max() <= 15.0 and np.median(z[2]) == pytest.approx(norm.ppf(0.5 * norm.cdf(0.4 / 0.08)), abs=0.02)
