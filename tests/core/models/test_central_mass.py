"""central_mass: multi-branch ResNet shapes, input subsets, NLL training, state round trip; LightGBM; power law."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.data.central_data import CentralMassData, grouped_indices  # noqa: E402
from core.errors import GPSError  # noqa: E402
from core.models.base import build_model  # noqa: E402
from core.models.resnet_branches import MultiBranchResNet, ResNetBackbone, stem_stride  # noqa: E402

TARGETS = ("log_mstar_re", "log_mtot_re", "log_ml_r")


def _toy(n: int, seed: int = 0, hi: int = 32, hk: int = 24) -> CentralMassData:
    """Targets are known functions of the image brightness, the pixel scale and the dispersion amplitude."""
    rng = np.random.default_rng(seed)
    lum, sig = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    px = 10 ** rng.uniform(-0.3, 0.3, n)
    yy, xx = np.mgrid[:hi, :hi] - (hi - 1) / 2
    img = 21 - 2 * lum[:, None, None] + 0.15 * np.hypot(yy, xx)[None] + 0.1 * rng.standard_normal((n, hi, hi))
    yk, xk = np.mgrid[:hk, :hk] - (hk - 1) / 2
    vel = 100 * np.tanh(xk / 4)[None] * (1 + 0.3 * sig[:, None, None]) + 5 * rng.standard_normal((n, hk, hk))
    sg = 150 + 50 * sig[:, None, None] * np.exp(-np.hypot(yk, xk) / 8)[None] + 5 * rng.standard_normal((n, hk, hk))
    y = np.stack([lum + np.log10(px), sig + 0.5 * lum, -1.5 * lum - sig], 1)
    mask = np.zeros((n, hk, hk), bool)
    mask[:, :2] = True
    return CentralMassData(maps={"image": img, "g_r": 0.05 * img - 0.4, "vel": vel, "sigma": sg},
                           masks={"vel": mask, "sigma": mask},
                           pixel_kpc={"image": px, "g_r": px, "vel": px / 2, "sigma": px / 2}, y=y, targets=TARGETS,
                           galaxy_id=np.arange(n) // 3, extra={"redshift": rng.uniform(0.01, 0.1, n)})


def _small_cfg(epochs: int = 6, **kw) -> dict:
    return {"width": 4, "hidden": 32, **kw,
            "train": {"epochs": epochs, "batch_size": 32, "lr": 3e-3, "schedule": "cosine", "patience": 100}}


@pytest.mark.parametrize("size,channels", [(24, 2), (48, 4), (64, 2), (300, 2)])
def test_backbone_shapes_at_any_size(size, channels):
    net = ResNetBackbone(channels, size, width=4, blocks=(1, 1, 1, 1), stage1_max=32)
    out = net(torch.zeros(2, channels, size, size))
    assert out.shape == (2, 4 * 8)
    assert stem_stride(300, 64) == 8 and stem_stride(48, 64) == 1 and stem_stride(48, 16) == 4


def test_multibranch_output_shapes_and_subsets():
    for branches in ({"image": (2, 64)}, {"vel": (2, 48), "sigma": (2, 48)},
                     {"image": (2, 64), "g_r": (2, 64), "vel": (2, 48), "sigma": (2, 48)}):
        net = MultiBranchResNet(branches, 3, width=4, blocks=(2, 2, 2, 2), n_scalars=1, hidden=16)
        x = {k: torch.randn(3, c, s, s) for k, (c, s) in branches.items()}
        mu, lv = net(x, torch.zeros(3, 1))
        assert mu.shape == (3, 3) and lv.shape == (3, 3)
        assert torch.all(torch.isfinite(lv))


@pytest.mark.parametrize("features,grouping", [(("image", "g_r", "vel", "sigma"), "per_input"),
                                               (("vel", "sigma"), "per_size"), (("image",), "per_input")])
def test_any_subset_of_inputs_trains_and_predicts(features, grouping):
    tr, te = _toy(60, 0), _toy(12, 1)
    m = build_model("central_mass", "resnet", _small_cfg(2, grouping=grouping), features, TARGETS)
    m.fit(tr)
    post = m.posterior(te, n_samples=50)
    assert post.samples.shape == (12, 50, 3)
    assert np.all(np.isfinite(post.samples))
    with pytest.raises(GPSError, match="needs input"):
        m.posterior(te.select(("image",)) if "vel" in features else te.select(("vel",)))


def test_nll_training_reduces_loss_calibrates_and_refuses_wrong_weights():
    tr, va, te = _toy(150, 0, 24, 16), _toy(45, 1, 24, 16), _toy(45, 2, 24, 16)
    m = build_model("central_mass", "resnet", _small_cfg(8, grouping="per_size"), ("image", "g_r", "vel", "sigma"),
                    TARGETS)
    hist = m.fit(tr, va)
    losses = [e["val_loss"] for e in hist["epochs"]]
    assert min(losses) < losses[0] - 0.3
    mu, sd = m.predict(te)
    rmse = np.sqrt(np.mean((mu - te.y) ** 2, axis=0))
    assert np.all(rmse < 0.8 * te.y.std(axis=0))
    assert len(hist["var_scale"]) == 3 and all(v > 0 for v in hist["var_scale"])
    tensors, extra = m.get_state()          # the save/load round trip: tests/core/tasks/test_contract.py
    wrong = build_model("central_mass", "resnet", dict(_small_cfg(8, grouping="per_size"), width=8), m.features,
                        TARGETS)
    with pytest.raises(GPSError, match="do not match"):
        wrong.set_state(tensors, extra)
    post = m.posterior(te.subset(slice(0, 2)), n_samples=10)
    assert post.info["outside_domain"].shape == (2,)


def test_domain_flags_out_of_range_inputs():
    tr = _toy(60, 0)
    te = tr.subset(np.arange(6))                          # objects seen in training: inside the domain
    m = build_model("central_mass", "resnet", _small_cfg(1), ("image",), TARGETS)
    m.fit(tr)
    assert not m.posterior(te, n_samples=5).info["outside_domain"].any()
    te.maps["image"] = te.maps["image"] + 8.0             # far fainter than anything in training
    post = m.posterior(te, n_samples=5)
    assert post.info["outside_domain"].all() and "image" in post.info["domain_notes"][0]


def test_grouped_indices_keep_projections_together():
    gid = np.repeat(np.arange(20), 3)
    parts = grouped_indices(gid, (0.6, 0.2, 0.2), seed=1)
    sets = [set(gid[p]) for p in parts]
    assert sum(len(p) for p in parts) == 60
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


def _stat_data(n: int, seed: int) -> CentralMassData:
    """Data whose cached summary statistics carry the signal (the maps are placeholders)."""
    rng = np.random.default_rng(seed)
    d = _toy(n, seed, hi=16, hk=16)
    mag = rng.uniform(-23, -19, n)
    sig = rng.uniform(50, 250, n)
    d.y = np.stack([-0.4 * (mag - 4.65) - 0.1, np.log10(sig) + 8, rng.normal(0, 0.1, n)], 1)
    for k in ("g_r", "sersic_n", "axis_ratio", "lambda_re", "log_re_kpc"):
        d.extra[f"stat:{k}"] = rng.uniform(0, 1, n)
    d.extra["stat:abs_mag_r"], d.extra["stat:sigma_e"] = mag, sig
    return d


def test_lightgbm_importance_keys_and_pearson():
    from core.data.summary_stats import FEATURES

    tr, te = _stat_data(400, 0), _stat_data(100, 1)
    m = build_model("central_mass", "lightgbm", {"n_estimators": 60, "quantiles": [0.16, 0.5, 0.84]},
                    ("image", "g_r", "vel", "sigma"), TARGETS)
    hist = m.fit(tr)
    imp = m.importance("gain")
    assert set(imp) == set(TARGETS) and all(set(v) == set(FEATURES) for v in imp.values())
    assert max(imp["log_mstar_re"], key=imp["log_mstar_re"].get) == "abs_mag_r"
    assert max(imp["log_mtot_re"], key=imp["log_mtot_re"].get) == "sigma_e"
    names = hist["pearson"]["names"]
    mat = np.asarray(hist["pearson"]["matrix"])
    assert mat.shape == (len(FEATURES) + 3,) * 2 and names[-3:] == list(TARGETS)
    assert mat[names.index("abs_mag_r"), names.index("log_mstar_re")] < -0.99
    post = m.posterior(te, n_samples=20)
    assert post.samples.shape == (100, 20, 3)
    from core.inference.checkpoints import checkpoint_bytes, load_checkpoint

    m2 = load_checkpoint(checkpoint_bytes(m), expected_task="central_mass")
    assert np.allclose(m2.posterior(te, n_samples=20).info["point"], post.info["point"])
    assert m2.history["pearson"]["names"] == names
    te.extra["stat:sersic_n"][0] = np.nan                  # an unmeasurable object is invalid, not imputed
    post = m.posterior(te, n_samples=20)
    assert not post.valid[0] and post.valid[1:].all() and np.isnan(post.samples[0]).all()


def test_powerlaw_recovers_slope_and_scatter():
    tr = _stat_data(2000, 0)
    rng = np.random.default_rng(3)
    logl = -0.4 * (tr.extra["stat:abs_mag_r"] - 4.65)
    tr.y[:, 0] = 0.3 + 0.9 * logl + rng.normal(0, 0.1, len(tr))
    m = build_model("central_mass", "powerlaw", {}, ("image",), TARGETS)
    m.fit(tr)
    a, b, s = m.coef[0]
    assert abs(b - 0.9) < 0.02 and abs(s - 0.1) < 0.01
    post = m.posterior(tr.subset(slice(0, 5)), n_samples=4000, seed=1)
    assert np.allclose(post.samples[:, :, 0].std(axis=1), s, rtol=0.1)
    tensors, extra = m.get_state()
    m2 = build_model("central_mass", "powerlaw", {}, ("image",), TARGETS)
    m2.set_state(tensors, extra)
    assert np.allclose(m2.coef, m.coef)


def test_real_manga_dap_end_to_end():
    """The real DAP file (SPX_MFLUX as image, STELLAR_VEL, corrected STELLAR_SIGMA) runs through a trained model."""
    from pathlib import Path

    from core.data.central_data import from_manga_dap

    path = Path(__file__).resolve().parents[2] / "data" / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.cut.fits.gz"
    real = from_manga_dap(path)
    assert real.sizes() == {"image": (64, 64), "vel": (48, 48), "sigma": (48, 48)}
    assert 0.02 < real.extra["redshift"][0] < 0.04                      # SCINPVEL / c ~ 0.0294
    assert real.pixel_kpc["vel"][0] == pytest.approx(2 * 1.33 * 3.775 / 48 * 0.583, rel=0.05)
    assert np.all(np.isfinite(real.maps["sigma"][~real.masks["sigma"]]))
    assert any("outside the training simulator" in n for n in real.meta["notes"])
    tr = _toy(30, 0, hi=64, hk=48)
    m = build_model("central_mass", "resnet", _small_cfg(1), ("image", "vel", "sigma"), TARGETS)
    m.fit(tr)
    post = m.posterior(real, n_samples=20)
    assert post.samples.shape == (1, 20, 3) and np.all(np.isfinite(post.samples))
    assert post.info["outside_domain"][0]                               # toy training domain != real galaxy
    with pytest.raises(GPSError, match="g_r"):
        build_model("central_mass", "resnet", _small_cfg(1), ("image", "g_r"), TARGETS).fit(real)


def test_adapter_from_ifu_simulator():
    from core.data.central_data import from_central_set
    from core.data.simulators.ifu import IFUSimConfig, simulate_central

    cfg = IFUSimConfig(image_size=32, kin_size=16, chunk=4)
    d = from_central_set(simulate_central(3, seed=5, config=cfg))
    assert len(d) == 9 and d.sizes() == {"image": (32, 32), "g_r": (32, 32), "vel": (16, 16), "sigma": (16, 16)}
    assert d.targets == TARGETS and np.all(np.isfinite(d.y))
    assert np.all(d.pixel_kpc["image"] > d.pixel_kpc["vel"])          # the image covers 8 r_1/2, the maps 2
    assert set(np.unique(d.galaxy_id)) == {0, 1, 2} and "redshift" in d.extra
    # image pixels below S/N 3 are masked: their mu_r noise is larger than 0.36 mag
    assert d.masks["image"].any() and not d.masks["image"].all()


def test_api_train_and_posterior_accept_central_data():
    from core import api

    tr = _toy(30, 0)
    assert tr.has_truth and len(tr.fingerprint()) == 16 and tr.fingerprint() != _toy(30, 1).fingerprint()
    m = api.train("central_mass", "resnet", tr, _small_cfg(1), features=("vel", "sigma"))
    assert m.features == ("vel", "sigma") and m.card["provenance"]["n_objects"] == 30
    post = api.posterior(m, tr, n_samples=8)
    assert post.samples.shape == (30, 8, 3)


def test_gpu_default_is_resnet18_per_input():
    from core.models.central_mass import ResNetConfig

    cfg = ResNetConfig.gpu_default()
    assert cfg.width == 64 and cfg.blocks == (2, 2, 2, 2) and cfg.grouping == "per_input"
    net = MultiBranchResNet({"image": (2, 300), "vel": (2, 48)}, 3, width=cfg.width, blocks=cfg.blocks,
                            stage1_max=cfg.stage1_max, n_scalars=2)
    convs = sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in net.backbones["vel"].modules())
    assert convs == 17                                   # stem + 16 block convs (+ the head = ResNet-18)
    with torch.no_grad():
        mu, lv = net.eval()({"image": torch.zeros(1, 2, 300, 300), "vel": torch.zeros(1, 2, 48, 48)},
                            torch.zeros(1, 2))
    assert mu.shape == (1, 3)
