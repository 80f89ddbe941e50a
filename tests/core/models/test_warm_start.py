"""Warm start (fine-tuning): fit(..., warm_start=True) continues from the weights a model holds."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.models import build_model

A = np.array([1.0, 0.5, -0.8])


def toy(n: int, seed: int, shift: float = 0.0) -> CatalogData:
    rng = np.random.default_rng(seed)
    y = 12.0 + 0.8 * rng.normal(size=n)
    x = ((y - 12.0) / 0.8)[:, None] * A + rng.normal(size=(n, 3)) * 0.6 + shift
    return CatalogData(x=x, features=("a", "b", "c"), y=y, targets=("log_mh",), units={"log_mh": "dex(solMass)"},
                       meta={"source": "toy"})


def _reload(model, config):
    """A fresh model of the same kind with the state of ``model`` (as loaded from a checkpoint)."""
    tensors, extra = model.get_state()
    clone = build_model("halo_mass", model.name, config, model.features, model.targets)
    clone.set_state(tensors, extra)
    return clone


def _flat(module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in module.parameters()])


def test_flow_warm_start_keeps_weights_and_standardization_and_does_not_worsen_val():
    cfg = {"transforms": 1, "hidden": [16], "train": {"epochs": 4, "lr": 3e-3, "seed": 0}}
    base = build_model("halo_mass", "flow", cfg, ("a", "b", "c"), ("log_mh",))
    base.fit(toy(3000, 0), toy(500, 1))
    model = _reload(base, cfg)
    w0, mean0 = _flat(model.flow), model.x_mean.copy()
    fresh = _flat(build_model("halo_mass", "flow", cfg, ("a", "b", "c"), ("log_mh",))._build())
    hist = model.fit(toy(1500, 2, shift=0.3), toy(500, 3, shift=0.3), warm_start=True)
    w1 = _flat(model.flow)
    assert hist["warm_start"] and np.isfinite(hist["val_loss_before"])
    assert hist["best_val_loss"] <= hist["val_loss_before"] + 1e-9      # fine-tuning never worsens val
    assert hist["epochs"][0]["lr"] <= model.config.warm_lr + 1e-12
    np.testing.assert_array_equal(model.x_mean, mean0)                  # the checkpoint's standardization
    assert np.linalg.norm(w1 - w0) < 0.5 * np.linalg.norm(fresh - w0)    # continued, not re-initialised
    assert np.isfinite(model.posterior(toy(20, 4), n_samples=20).samples).all()


def test_lightgbm_warm_start_continues_boosting():
    cfg = {"n_estimators": 40, "learning_rate": 0.2, "num_leaves": 7, "quantiles": [0.16, 0.5, 0.84],
           "early_stopping_rounds": 10}
    base = build_model("halo_mass", "lightgbm", cfg, ("a", "b", "c"), ("log_mh",))
    base.fit(toy(2000, 0), toy(400, 1))
    model = _reload(base, cfg)
    start = {k: b.current_iteration() for k, b in model.boosters.items()}
    val = toy(400, 3, shift=0.3)
    before = np.mean((model.predict_point(val.x)[:, 0] - val.y[:, 0]) ** 2)
    hist = model.fit(toy(2000, 2, shift=0.3), val, warm_start=True)
    after = np.mean((model.predict_point(val.x)[:, 0] - val.y[:, 0]) ** 2)
    assert hist["warm_start"] and after <= before
    for key, b in model.boosters.items():
        assert b.current_iteration() >= start[key] == hist["models"][key]["start_iteration"]
    assert model.boosters["t0_point"].current_iteration() > start["t0_point"]   # the shift is learnable


def test_vae_warm_start_keeps_the_vae_weights():
    cfg = {"latent_dim": 2, "hidden": 16, "train": {"epochs": 2, "seed": 0}}
    base = build_model("halo_mass", "vae_hmc", cfg, ("a", "b", "c"), ("log_mh",))
    base.fit(toy(1500, 0))
    model = _reload(base, cfg)
    w0 = _flat(model.net)
    hist = model.fit(toy(800, 2), warm_start=True)
    fresh = _flat(build_model("halo_mass", "vae_hmc", cfg, ("a", "b", "c"), ("log_mh",))._build())
    assert hist["warm_start"]
    assert np.linalg.norm(_flat(model.net) - w0) < 0.5 * np.linalg.norm(fresh - w0)


def test_models_without_warm_start_and_untrained_models_are_refused():
    shmr = build_model("halo_mass", "shmr", {}, ("log_mstar",), ("log_mh",))
    assert not shmr.supports_warm_start
    with pytest.raises(GPSError, match="cannot warm-start") as err:
        shmr.fit(toy(10, 0), warm_start=True)
    assert err.value.field == "warm_start"
    flow = build_model("halo_mass", "flow", {}, ("a", "b", "c"), ("log_mh",))
    assert flow.supports_warm_start
    with pytest.raises(GPSError, match="needs a trained model"):
        flow.fit(toy(10, 0), warm_start=True)
    with pytest.raises(GPSError, match="needs a trained model"):
        build_model("halo_mass", "lightgbm", {}, ("a", "b", "c"), ("log_mh",)).fit(toy(10, 0), warm_start=True)
