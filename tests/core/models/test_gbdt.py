"""LightGBM baseline: calibration on a toy problem with a known posterior, state round trip, any subset, stop."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.training import EpochReport, StopRequested
from core.metrics import score_posterior
from core.models import build_model
from core.models.gbdt import LightGBMConfig, LightGBMModel, quantile_function_samples

SIGMA = 0.3
FAST = dict(n_estimators=300, learning_rate=0.1, num_leaves=15, early_stopping_rounds=20,
            quantiles=(0.025, 0.16, 0.5, 0.84, 0.975))


def toy(n: int, seed: int) -> CatalogData:
    """y ~ U(0, 3); a = y + N(0, SIGMA) carries all the information, b is pure noise.

    Away from the prior edges the exact posterior is N(a, SIGMA): RMSE ~ SIGMA and calibrated intervals.
    """
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.0, 3.0, n)
    x = np.stack([y + SIGMA * rng.standard_normal(n), rng.standard_normal(n)], axis=1)
    return CatalogData(x=x, features=("a", "b"), y=y, targets=("t",), units={"a": "dex", "b": "", "t": "dex"},
                       meta={"source": "toy"})


@pytest.fixture(scope="module")
def trained():
    model = build_model("halo_mass", "lightgbm", FAST, features=("a", "b"), targets=("t",), units={"t": "dex"})
    reports: list[EpochReport] = []
    hist = model.fit(toy(4000, 0), toy(1000, 1), callbacks=[reports.append])
    return model, hist, reports


def test_registered_and_config_validation():
    assert isinstance(build_model("halo_mass", "lightgbm", {}, ("a",), ("t",)), LightGBMModel)
    with pytest.raises(GPSError, match="quantiles"):
        LightGBMConfig(quantiles=(0.5,))
    with pytest.raises(GPSError, match="quantiles"):
        LightGBMConfig(quantiles=(0.0, 0.5))


def test_point_and_intervals_are_sensible(trained):
    model, hist, reports = trained
    test = toy(3000, 2)
    inner = (test.y[:, 0] > 0.7) & (test.y[:, 0] < 2.3)   # away from the prior edges the posterior is N(a, SIGMA)
    post = model.posterior(test.subset(inner), n_samples=500, seed=0)
    assert post.samples.shape == (int(inner.sum()), 500, 1)
    s = score_posterior(post, test.y[inner])
    assert s["rmse"] < 1.1 * SIGMA
    assert 0.62 <= s["coverage_68"] <= 0.74 and 0.91 <= s["coverage_95"] <= 0.98
    point = post.info["point"]
    assert point.shape == (int(inner.sum()), 1)
    assert np.sqrt(np.mean((point[:, 0] - test.y[inner, 0]) ** 2)) < 1.1 * SIGMA
    q = post.info["quantiles"]
    assert np.all(np.diff(q, axis=1) >= 0)                # sorted: no quantile crossing
    imp = model.feature_importance("gain")
    assert set(imp) == {"a", "b"} and imp["a"] > 20 * imp["b"]


def test_progress_reports_and_history(trained):
    model, hist, reports = trained
    assert reports and all(isinstance(r, EpochReport) for r in reports)
    assert {r.extra["model"] for r in reports} == set(model.boosters)
    assert all(np.isnan(r.train_loss) and np.isfinite(r.val_loss) for r in reports)
    epochs = [r.epoch for r in reports]
    assert epochs == sorted(epochs) and epochs[-1] <= reports[-1].epochs
    assert set(hist["models"]) == set(model.boosters) and hist["stopped_reason"].startswith("early")
    assert all(1 <= m["best_iteration"] <= 300 for m in hist["models"].values())
    json.dumps(hist)                                      # JSON-able


def test_state_round_trip_is_exact_and_json(trained):
    model, _, _ = trained
    tensors, extra = model.get_state()
    assert tensors == {}
    extra = json.loads(json.dumps(extra))                 # survives JSON (text format, no pickle)
    assert extra["lgb_t0_point"].startswith("tree")
    clone = LightGBMModel(model.config, model.features, model.targets, model.units)
    clone.set_state(tensors, extra)
    test = toy(200, 3)
    a, b = model.posterior(test, n_samples=50, seed=4), clone.posterior(test, n_samples=50, seed=4)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.info["point"], b.info["point"])
    bad = dict(extra)
    bad["lgb_t0_q0.5"] = "not a model"
    with pytest.raises(GPSError, match="lgb_t0_q0.5"):
        clone.set_state({}, bad)
    with pytest.raises(GPSError, match="levels"):
        LightGBMModel(LightGBMConfig(**{**FAST, "quantiles": (0.1, 0.9)}), ("a", "b"), ("t",)).set_state({}, extra)


def test_any_subset_nan_and_absent_columns(trained):
    """Masked training: a NaN or an absent column is a missing input; without the informative input the posterior
    widens to the prior U(0, 3) (sd 0.87), with it alone it stays N(a, SIGMA)."""
    model, _, _ = trained
    test = toy(2000, 5)
    inner = (test.y[:, 0] > 0.7) & (test.y[:, 0] < 2.3)
    only_a = model.posterior(test.select_features(("a",)).subset(inner), n_samples=300)
    assert score_posterior(only_a, test.y[inner])["rmse"] < 1.15 * SIGMA
    test.x[:, 0] = np.nan
    only_b = model.posterior(test, n_samples=300)
    assert 0.7 < float(np.median(only_b.std()[:, 0])) < 1.0
    test.x[3, 1] = np.inf
    with pytest.raises(GPSError, match="infinite"):
        model.posterior(test)


def test_unmasked_model_refuses_nan_rows():
    test = toy(10, 5)
    test.x[3, 1] = np.nan
    fresh = LightGBMModel(LightGBMConfig(**FAST, input_masks=False), ("a", "b"), ("t",))
    with pytest.raises(GPSError, match="NaN"):
        fresh.fit(test)
    with pytest.raises(GPSError, match="not been trained"):
        fresh.posterior(toy(5, 0))
    fresh.fit(toy(300, 0))
    with pytest.raises(GPSError, match=r"row 3.*\[b\]|\[b\].*row 3|NaN"):
        fresh.posterior(test)
    with pytest.raises(GPSError, match="b"):
        fresh.posterior(toy(10, 5).select_features(("a",)))


def test_stop_event_and_stop_requested_give_a_usable_model():
    data = toy(600, 7)
    ev = threading.Event()
    ev.set()
    m = LightGBMModel(LightGBMConfig(**FAST), ("a", "b"), ("t",))
    hist = m.fit(data, stop=ev)
    assert hist["stopped_reason"] == "stopped by user"
    assert all(v["best_iteration"] == 1 for v in hist["models"].values())
    assert m.posterior(toy(5, 8), n_samples=10).samples.shape == (5, 10, 1)

    def cb(rep):
        if rep.epoch >= 50:
            raise StopRequested
    m2 = LightGBMModel(LightGBMConfig(**FAST), ("a", "b"), ("t",))
    h2 = m2.fit(data, callbacks=[cb])
    assert h2["stopped_reason"] == "stopped by user" and h2["models"]["t0_point"]["best_iteration"] <= 50


def test_quantile_function_samples_reproduce_the_quantiles():
    levels = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
    q = np.array([[-1.28, -0.67, 0.0, 0.67, 1.28]])
    x = quantile_function_samples(levels, q, 200000, np.random.default_rng(0))[0]
    np.testing.assert_allclose(np.quantile(x, levels), q[0], atol=0.02)
    # linear tails: the bottom 10% is uniform on [q1 - 0.1 * slope, q1] with slope (q2 - q1) / 0.15
    slope = (q[0, 1] - q[0, 0]) / 0.15
    assert x.min() >= q[0, 0] - 0.1 * slope - 1e-9 and x.min() < q[0, 0] - 0.09 * slope
    # crossing quantiles are sorted first
    y = quantile_function_samples(levels, q[:, ::-1], 1000, np.random.default_rng(0))
    assert np.isfinite(y).all() and np.quantile(y, 0.5) == pytest.approx(0.0, abs=0.1)




def test_prior_reweighting_of_the_quantile_distribution(trained):
    """Toy posterior ~ N(a, SIGMA) (its learned quantiles) times a Gaussian ratio N(c, tau) on a grid: draws follow
    the analytic product N(., 1 / (1/SIGMA^2 + 1/tau^2)); the ratio survives the state round trip; a galaxy whose
    quantiles all lie beyond the grid lands on the grid's end."""
    model, _, _ = trained
    tensors, extra = model.get_state()
    g = np.linspace(-1.5, 4.5, 601)
    c, tau = 1.8, 0.4
    tensors = {"prior_grid": g, "prior_log_ratio": -0.5 * ((g - c) / tau) ** 2}
    rw = LightGBMModel(model.config, model.features, model.targets, model.units)
    rw.set_state(tensors, json.loads(json.dumps(extra)))
    assert rw.physical_prior and set(rw.get_state()[0]) == {"prior_grid", "prior_log_ratio"}
    test = toy(300, 9)
    inner = (test.x[:, 0] > 0.9) & (test.x[:, 0] < 2.1)          # away from the toy prior's edges
    test = test.subset(np.flatnonzero(inner))
    post = rw.posterior(test, n_samples=4000, seed=2)
    prec = 1 / SIGMA ** 2 + 1 / tau ** 2
    mu_w, sd_w = (test.x[:, 0] / SIGMA ** 2 + c / tau ** 2) / prec, 1 / np.sqrt(prec)
    assert np.median(np.abs(post.mean()[:, 0] - mu_w)) < 0.3 * sd_w
    assert abs(np.median(post.std()[:, 0]) / sd_w - 1) < 0.15
    np.testing.assert_allclose(post.info["point"], post.mean())
    far = rw._reweighted_samples(np.linspace(9.0, 10.0, 5)[None, :], 100, np.random.default_rng(0))
    assert np.all((far >= g[-2]) & (far <= g[-1]))


def test_flat_proposal_lightgbm_is_reweighted_to_the_hmf():
    from core.data.simulators.catalog import CatalogSimConfig, simulate_catalog

    flat = simulate_catalog(3000, seed=1, config=CatalogSimConfig(prior="flat"))
    m = build_model("halo_mass", "lightgbm", FAST, flat.features, ("log_mh",))
    m.fit(flat)
    assert m.physical_prior and "proposal" in m.history["prior"] and m.prior_grid[-1] == 15.0
    keep = build_model("halo_mass", "lightgbm", {**FAST, "prior": "training"}, flat.features, ("log_mh",))
    keep._set_prior_correction(flat)
    assert not keep.physical_prior
    with pytest.raises(GPSError, match="prior"):
        LightGBMConfig(prior="hmf")
