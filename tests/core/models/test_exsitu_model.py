"""exsitu_map model: network shapes, masked loss, training, three inference modes, state round trip, refusals."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core.errors import GPSError

CHANNELS = ("log_sigma_star", "vel", "sigma", "log_age", "metallicity")
UNITS = ("dex(solMass / kpc2)", "km / s", "km / s", "dex(yr)", "dex")
SIZE = 16


def toy_maps(n: int = 48, seed: int = 0, size: int = SIZE, truth: bool = True):
    """Toy IFU set with a known structure: f_ex(r) = sigmoid((r - r0) / 0.15) with r0 ~ U(0.3, 1.2) per galaxy;
    the age map carries r0 (older outskirts beyond r0), the other channels are plausible noise."""
    rng = np.random.default_rng(seed)
    c = (np.arange(size) - (size - 1) / 2) / (size / 2)
    r = np.hypot(c[None, :], c[:, None])
    r0 = rng.uniform(0.3, 1.2, n)
    f = 1 / (1 + np.exp(-(r[None] - r0[:, None, None]) / 0.15))
    maps = np.empty((n, 5, size, size), np.float32)
    maps[:, 0] = 9.0 - 2 * r[None] + 0.05 * rng.standard_normal((n, size, size))
    maps[:, 1] = 150 * c[None, None, :] * rng.uniform(0.2, 1, (n, 1, 1))
    maps[:, 2] = 100 + 30 * rng.standard_normal((n, 1, 1)) + 5 * rng.standard_normal((n, size, size))
    maps[:, 3] = 9.5 + 0.5 * f + 0.03 * rng.standard_normal((n, size, size))
    maps[:, 4] = -0.1 - 0.3 * f + 0.03 * rng.standard_normal((n, size, size))
    mask = np.broadcast_to(r[None] > 1.25, (n, size, size)).copy()
    mask[:, 0, 0] = True
    maps[np.broadcast_to(mask[:, None], maps.shape)] = 0.0
    return SimpleNamespace(maps=maps, channels=CHANNELS, units=UNITS, mask=mask,
                           f_ex=f.astype(np.float32) if truth else None, galaxy_id=np.arange(n) // 2,
                           meta={"file": "toy.h5"})


def small_config(**kw):
    from core.models.exsitu import ExsituMapConfig

    base = dict(map_size=SIZE, widths=(8, 16), stem_stride=1, latent=4, embed=16, flow_hidden=(32,),
                flow_transforms=2, batch_objects=5,
                train=dict(epochs=kw.pop("epochs", 8), batch_size=16, lr=3e-3, patience=50, seed=0),
                flow_train=dict(epochs=kw.pop("flow_epochs", 10), batch_size=64, lr=2e-3, patience=50, seed=0))
    base.update(kw)
    return ExsituMapConfig.from_dict(base)


@pytest.fixture(scope="module")
def trained():
    from core.models import build_model

    torch.manual_seed(0)
    data = toy_maps(64, seed=1)
    model = build_model("exsitu_map", "cvae_flow", small_config(epochs=25, flow_epochs=20), CHANNELS, ("f_ex",))
    model.fit(data)
    return model, data


def test_network_shapes_and_stem():
    from core.models.cvae_maps import CVAEMaps

    for stem in (1, 2):
        net = CVAEMaps(3, 32, widths=(8, 16, 16), latent=5, embed=12, stem_stride=stem)
        x, m = torch.randn(4, 3, 32, 32), torch.rand(4, 32, 32) > 0.8
        feats, h = net.condition(x, m)
        assert h.shape == (4, 12) and feats[0].shape[-1] == 32 // stem
        mu, logvar = net.encode(torch.rand(4, 32, 32), m, feats, h)
        assert mu.shape == logvar.shape == (4, 5)
        mean, log_s = net.decode(mu, feats, h)
        assert mean.shape == log_s.shape == (4, 32, 32)
    with pytest.raises(ValueError):
        CVAEMaps(3, 24, widths=(8, 16, 16, 16), stem_stride=2)


def test_loss_ignores_masked_pixels():
    from core.models.cvae_maps import CVAEMaps

    torch.manual_seed(0)
    net = CVAEMaps(2, 16, widths=(8, 8), latent=3, embed=8)
    x, f = torch.randn(3, 2, 16, 16), torch.rand(3, 16, 16)
    mask = torch.zeros(3, 16, 16, dtype=torch.bool)
    mask[:, :, :5] = True
    w = (~mask).float()
    loss = lambda xx, ff: net.elbo_loss(xx, mask, ff, w, 0.5, torch.Generator().manual_seed(3))  # noqa: E731
    base = loss(x, f)
    x2, f2 = x.clone(), f.clone()
    x2[:, :, :, :5] = 100.0               # garbage under the mask: inputs are zeroed there
    f2[:, :, :5] = 0.999                  # the target under the mask: not in the likelihood, not seen by encoder
    assert torch.allclose(loss(x2, f2), base)
    f3 = f.clone()
    f3[:, :, 10] = 0.999                  # an unmasked pixel: the loss must change
    assert not torch.allclose(loss(x, f3), base)


def test_training_reduces_loss_and_history(trained):
    model, _ = trained
    ep = model.history["cvae"]["epochs"]
    assert ep[-1]["train_loss"] < ep[0]["train_loss"] - 0.1
    assert model.history["cvae"]["best_val_loss"] < ep[0]["val_loss"]
    assert model.history["flow"]["best_val_loss"] < model.history["flow"]["epochs"][0]["val_loss"]


def test_three_modes_run_and_reconstruction_is_best(trained):
    from core.metrics.maps import score_map_posterior

    model, _ = trained
    test = toy_maps(20, seed=7)
    scores = {}
    for mode in ("reconstruction", "flow", "prior"):
        post = model.posterior(test, n_samples=24, seed=3, mode=mode, thresholds=(0.5, 0.8), keep_samples=2)
        assert post.mean.shape == (20, SIZE, SIZE) and post.p_exceed.shape == (20, 2, SIZE, SIZE)
        assert post.samples.shape == (2, 24, SIZE, SIZE)
        assert np.all((post.q025 >= 0) & (post.q975 <= 1)) and np.all(post.q16 <= post.q84)
        assert post.method == f"cvae_flow:{mode}"
        scores[mode] = score_map_posterior(post)
    zero = np.abs(test.f_ex)[~test.mask].mean()              # predicting f_ex = 0 everywhere
    assert scores["reconstruction"]["mae_pixel"] < zero
    assert scores["reconstruction"]["mae_pixel"] <= scores["prior"]["mae_pixel"] + 0.02
    assert 0.2 < scores["flow"]["coverage_95_pixel"] <= 1.0
    with pytest.raises(GPSError, match="no f_ex target"):
        model.posterior(toy_maps(3, truth=False), n_samples=4, mode="reconstruction")
    with pytest.raises(GPSError, match="inference mode"):
        model.posterior(test, n_samples=4, mode="magic")


def test_subset_of_channels_and_refusals():
    from core.models import build_model

    data = toy_maps(12, seed=2)
    model = build_model("exsitu_map", "cvae_flow", small_config(epochs=1, flow_epochs=1), ("log_age", "vel"),
                        ("f_ex",))
    dead_train = toy_maps(12, seed=2)
    dead_train.mask[0] = True                 # an all-masked training map is dropped (and counted), not fatal
    model.fit(dead_train)
    assert model.history["dropped_all_masked"] == 1
    assert model.posterior(data, n_samples=3).mean.shape == (12, SIZE, SIZE)
    dap = SimpleNamespace(maps=data.maps[:, 1:3], channels=("vel", "sigma"), units=("km / s", "km / s"),
                          mask=data.mask, f_ex=None, meta={"file": "manga-MAPS.fits"})
    with pytest.raises(GPSError) as err:
        model.posterior(dap, n_samples=3)
    msg = str(err.value)
    assert "log_age" in msg and "present: vel, sigma" in msg and "manga-MAPS.fits" in msg
    big = toy_maps(2, size=32)
    with pytest.raises(GPSError, match="regrid"):
        model.posterior(big, n_samples=3)
    nan = toy_maps(2, seed=3)
    nan.maps[1, 3, 8, 8] = np.nan
    with pytest.raises(GPSError, match="NaN") as err:
        model.posterior(nan, n_samples=3)
    assert "log_age" in str(err.value)
    dead = toy_maps(2, seed=3)
    dead.mask[0] = True
    with pytest.raises(GPSError, match="masked everywhere"):
        model.posterior(dead, n_samples=3)
    ms = toy_maps(2, seed=3)
    ms.units = ("dex(solMass / kpc2)", "m / s", "km / s", "dex(yr)", "dex")
    with pytest.raises(GPSError, match="unit"):
        model.posterior(ms, n_samples=3)
    with pytest.raises(GPSError):
        small_config(map_size=18, widths=(8, 16, 16))


def test_mean_map_baseline_and_round_trip():
    from core.inference.checkpoints import checkpoint_bytes, load_checkpoint
    from core.metrics.maps import score_map_posterior
    from core.models import build_model

    train, test = toy_maps(200, seed=4), toy_maps(30, seed=5)
    model = build_model("exsitu_map", "mean_map", {"map_size": SIZE, "radial_bins": 8}, CHANNELS, ("f_ex",))
    model.fit(train)
    post = model.posterior(test, n_samples=200, seed=1)
    s = score_map_posterior(post)
    assert 0.5 < s["coverage_68_pixel"] < 0.85          # the marginal at each radius is calibrated on average
    loaded = load_checkpoint(checkpoint_bytes(model))
    np.testing.assert_array_equal(loaded.posterior(test, n_samples=20, seed=2).q50,
                                  model.posterior(test, n_samples=20, seed=2).q50)


def test_task_registry_entry():
    from core.models import models_for_task
    from core.tasks import get_task

    task = get_task("exsitu_map")
    assert task.data_kind == "maps" and task.input_names == CHANNELS and task.target_names == ("f_ex",)
    assert all(q.kind == "map" for q in task.inputs + task.targets)
    assert task.models[0] == "cvae_flow" and "mean_map" in task.baselines
    assert {s.name for s in models_for_task("exsitu_map")} >= {"cvae_flow", "mean_map"}


def test_latent_carries_what_the_observables_do_not():
    """With uninformative observables only z can tell the map: reconstruction must beat prior sampling clearly
    (fails if the decoder ignores the latent, i.e. posterior collapse behind the U-Net skips)."""
    from core.metrics.maps import score_map_posterior
    from core.models import build_model

    data, test = toy_maps(64, seed=1), toy_maps(20, seed=7)
    for d in (data, test):
        d.maps[:, 3], d.maps[:, 4] = 9.5, -0.1
    cfg = small_config(epochs=30, flow_epochs=10).replace(
        train=dict(epochs=30, batch_size=8, lr=3e-3, patience=50, seed=0))
    model = build_model("exsitu_map", "cvae_flow", cfg, CHANNELS, ("f_ex",))
    model.fit(data)
    rec = score_map_posterior(model.posterior(test, n_samples=16, mode="reconstruction"))["mae_pixel"]
    prior = score_map_posterior(model.posterior(test, n_samples=16, mode="prior"))["mae_pixel"]
    assert rec < 0.6 * prior


def test_noise_calibration_matches_validation_coverage_and_round_trips(trained):
    """fit() sets a pixel-scatter temperature so that flow-mode 68% intervals cover ~68% of validation pixels;
    the temperature changes the draws (wider for t > 1) and is stored in the checkpoint."""
    from core.inference.checkpoints import checkpoint_bytes, load_checkpoint

    model, _ = trained
    cal = model.history["calibration"]
    assert cal is not None and cal["noise_scale"] == model.noise_scale > 0
    assert abs(cal["coverage_68_after"] - 0.68) < 0.04          # bisection target on the validation maps
    test = toy_maps(6, seed=21)
    widths = {}
    for t in (0.5, 2.0):
        model.noise_scale = t
        p = model.posterior(test, n_samples=32, seed=2, mode="flow")
        widths[t] = float(np.mean((p.q84 - p.q16)[~p.mask]))
    model.noise_scale = cal["noise_scale"]
    assert widths[2.0] > widths[0.5]
    loaded = load_checkpoint(checkpoint_bytes(model), expected_task="exsitu_map")
    assert loaded.noise_scale == pytest.approx(model.noise_scale, rel=1e-6)


def test_inference_steps_stay_short_at_many_draws(trained):
    """Progress (where an app job can be cancelled or yield to another session) comes every <= 400 decoded maps,
    whatever the number of draws: more draws mean fewer objects per step, not longer steps."""
    from core.models.exsitu import DECODES_PER_STEP

    model, _ = trained
    test = toy_maps(10, seed=5)
    for n_samples, objects_per_step in ((40, 5), (200, 2), (1000, 1)):
        calls = []
        model.posterior(test, n_samples=n_samples, seed=0, progress=lambda d, n: calls.append(d))
        assert calls == list(range(objects_per_step, 10, objects_per_step)) + [10]
        assert objects_per_step * n_samples <= max(DECODES_PER_STEP, n_samples)
