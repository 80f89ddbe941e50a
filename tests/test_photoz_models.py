"""photoz models (tiny budgets), writer round trips and figures."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import GPSError
from core.models.base import build_model
from core.tasks.photoz.exact import exact_posterior
from core.tasks.photoz.metrics import score
from core.tasks.photoz.models.common import INPUTS
from core.tasks.photoz.simulator import PhotozSimConfig, simulate

CFG = PhotozSimConfig(dz=0.005, av_grid=(0.0, 0.3, 0.8), n_age=12)
TINY = {"epochs": 5, "batch_size": 256, "lr": 3e-3, "patience": 6}


@pytest.fixture(scope="module")
def sets():
    return simulate(4000, seed=21, config=CFG), simulate(600, seed=22, config=CFG), simulate(300, seed=23, config=CFG)


def test_registry_has_photoz():
    import core.tasks as tasks
    from core.tasks.photoz import TASK

    assert "photoz" in tasks.TASKS.names() and TASK.spec.data_kind == "photometry"
    assert TASK.spec.input_names == INPUTS and TASK.spec.target_names == ("z", "age", "log_mstar", "met", "av")
    for m in TASK.spec.methods:
        build_model("photoz", m, None, INPUTS, ("z",))


@pytest.mark.parametrize("name,cfg", [("knn", {}), ("lightgbm", {"n_estimators": 150}),
                                      pytest.param("flow", {"train": TINY}, marks=pytest.mark.slow)])
def test_empirical_models_learn_and_round_trip(sets, name, cfg):
    train, val, test = sets
    m = build_model("photoz", name, cfg, INPUTS, ("z",))
    m.fit(train, val)
    post = m.posterior(test, n_samples=200, seed=1)
    assert post.samples.shape == (300, 200, 1) and post.valid.all()
    s = score(post, test.y[:, 0])
    assert s["sigma_nmad"] < 0.06 and s["outlier_frac"] < 0.05, s
    tensors, extra = m.get_state()
    m2 = build_model("photoz", name, cfg, INPUTS, ("z",))
    m2.set_state(tensors, extra)
    p2 = m2.posterior(test, n_samples=200, seed=1)
    np.testing.assert_allclose(np.median(p2.samples, 1), np.median(post.samples, 1), atol=1e-5)


def test_models_flag_bad_photometry(sets):
    train, _, test = sets
    bad = test.subset(slice(0, 10))
    bad.x = bad.x.copy()  # a slice subset is a view: never write into the module-scoped test set
    bad.x[3, 0] = np.nan
    m = build_model("photoz", "knn", {}, INPUTS, ("z",))
    m.fit(train)
    post = m.posterior(bad, n_samples=50)
    assert post.valid.tolist() == [i != 3 for i in range(10)] and np.isnan(post.samples[3]).all()


def test_mmvae_stages_resume_and_posterior(sets):
    train, val, test = sets
    cfg = {"hidden": 64, "spectral": TINY, "photometry": TINY, "parameters": TINY}
    m = build_model("photoz", "mmvae", cfg, INPUTS, ("z",))
    m.fit(train, val, stages=("spectral",))
    assert m.done == ["spectral"] and set(m.history["stages"]) == {"spectral"}
    with pytest.raises(GPSError, match="finished training"):
        m.posterior(test, n_samples=10)
    w = m.nets.spec_enc[0].weight.detach().clone()
    m.fit(train, val)                                              # resumes: stage 1 is not retrained
    assert m.done == ["spectral", "photometry", "parameters"]
    assert np.array_equal(w.numpy(), m.nets.spec_enc[0].weight.detach().numpy())
    assert all(len(m.history["stages"][s]["epochs"]) >= 1 for s in m.done)
    post = m.posterior(test, n_samples=100, seed=0)
    assert post.samples.shape == (300, 100, 5) and post.params[0] == "z"
    s = score(post, test.y[:, 0])
    assert s["sigma_nmad"] < 0.08 and 0.5 < s["coverage_68"] < 0.85, s
    grid = np.linspace(0.005, 1.0, 200)
    pz = m.pz_grid(test, grid)
    np.testing.assert_allclose(np.trapezoid(pz, grid, axis=1), 1.0, atol=0.02)
    tensors, extra = m.get_state()
    m2 = build_model("photoz", "mmvae", cfg, INPUTS, ("z",))
    m2.set_state(tensors, extra)
    np.testing.assert_allclose(m2.pz_grid(test, grid), pz, rtol=1e-5, atol=1e-8)


def test_mmvae_parameter_stage_loss_is_the_mixture_likelihood(sets):
    """With K latent draws the stage-3 loss is -log mean_k p(theta | l_k); K = 1 is the plain Gaussian NLL."""
    import torch

    from core.tasks.photoz.models.mmvae import _stage

    train = sets[0]
    losses = {}
    for k in (1, 4):
        m = build_model("photoz", "mmvae", {"hidden": 32, "param_draws": k}, INPUTS, ("z",))
        arr = m._arrays(train, fit_norm=True)
        from core.tasks.photoz.models.mmvae import _build

        m.nets = _build(m.config, arr["x"].shape[1], arr["s"].shape[1])
        _, loss, keys, _ = _stage(m.nets, "parameters", m.config)
        x, t = (torch.as_tensor(arr[key][:256]) for key in keys)
        torch.manual_seed(0)
        losses[k] = float(loss(m.nets, x, t))
        # the same quantity by hand from the same draws
        torch.manual_seed(0)
        mu, logv = m.nets.phot(x).chunk(2, dim=-1)
        if k == 1:
            lat = mu + torch.exp(0.5 * logv) * torch.randn_like(mu)
            pm, plog = m.nets.par(lat).chunk(2, dim=-1)
            ref = (0.5 * ((t - pm) / torch.exp(plog)) ** 2 + plog).sum(-1).mean()
        else:
            lat = mu[:, None] + torch.exp(0.5 * logv)[:, None] * torch.randn((len(mu), k, mu.shape[1]))
            pm, plog = m.nets.par(lat).chunk(2, dim=-1)
            lp = -(0.5 * ((t[:, None] - pm) / torch.exp(plog)) ** 2 + plog).sum(-1)
            ref = -(torch.logsumexp(lp, 1) - np.log(k)).mean()
        assert losses[k] == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize("fmt", ["csv", "fits", "hdf5"])
def test_writer_round_trip(tmp_path, fmt):
    from astropy.table import Table

    from core.tasks.photoz.writer import write

    data = simulate(30, seed=5, config=CFG)
    post = exact_posterior(data, CFG)
    grid = np.linspace(0, 1, 101)
    path = tmp_path / f"out.{ 'h5' if fmt == 'hdf5' else fmt}"
    write(post, data, path, provenance={"model": "exact"}, grid=grid)
    if fmt == "csv":
        t = Table.read(path, format="ascii.csv", comment="#")
        pz = np.stack([np.asarray(t[f"pz_{g:.4f}"]) for g in grid], axis=1)
    elif fmt == "fits":
        t = Table.read(path, hdu="PHOTOZ")
        pz = np.asarray(t["pz"])
    else:
        import h5py

        with h5py.File(path) as f:
            t = {k: f["photoz"][k][()] for k in f["photoz"]}
            pz = t["pz"]
            np.testing.assert_allclose(f["pz_grid"][()], grid)
    np.testing.assert_allclose(np.trapezoid(pz, grid, axis=1), 1.0, atol=0.01)
    med = post.quantiles([0.5])[:, 0, 0]
    np.testing.assert_allclose(np.asarray(t["z_median"]), med, rtol=1e-6)
    assert set(["z_p16", "z_p84", "z_mode", "n_peaks"]) <= set(t.keys() if isinstance(t, dict) else t.colnames)


def test_writer_qp_round_trip(tmp_path):
    qp = pytest.importorskip("qp")
    from core.tasks.photoz.writer import write

    data = simulate(30, seed=5, config=CFG)
    post = exact_posterior(data, CFG)
    post.valid[4] = False  # a flagged galaxy: flat row, valid 0
    grid = np.linspace(0, 1, 101)
    path = tmp_path / "out.qp.hdf5"
    write(post, data, path, "qp", provenance={"model": "exact"}, grid=grid)
    ens = qp.read(str(path))
    assert ens.npdf == 30
    np.testing.assert_allclose(ens.metadata["xvals"].ravel(), grid)
    from core.tasks.photoz.metrics import pz_on_grid

    want = pz_on_grid(post, grid)
    ok = np.arange(30) != 4
    np.testing.assert_allclose(ens.objdata["yvals"][ok], want[ok], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ens.pdf(grid)[ok], want[ok], rtol=1e-4, atol=1e-6)  # qp evaluates the same p(z)
    assert ens.ancil["valid"].tolist() == ok.astype(int).tolist()
    np.testing.assert_allclose(ens.ancil["z_median"][ok], post.quantiles([0.5])[ok, 0, 0], rtol=1e-6)


def test_writer_qp_absent_says_what_to_install(tmp_path, monkeypatch):
    import core.tasks.photoz.writer as w

    data = simulate(10, seed=5, config=CFG)
    post = exact_posterior(data, CFG)
    monkeypatch.setattr(w, "qp_available", lambda: False)
    with pytest.raises(GPSError, match="qp-prob") as e:
        w.write(post, data, tmp_path / "out.qp.hdf5", "qp")
    assert "pip install" in str(e.value) and not (tmp_path / "out.qp.hdf5").exists()


def test_figures_build_without_browser(sets):
    from core.tasks.photoz import viz

    _, _, test = sets
    z = test.y[:, 0]
    g = np.linspace(0, 1, 50)
    f = viz.pz_figure(g, np.exp(-((g - 0.2) / 0.05) ** 2), exact_pdf=np.exp(-((g - 0.21) / 0.05) ** 2),
                      z_true=0.2, n_peaks=2)
    assert len(f.data) == 2 and "multi-modal" in f.layout.title.text
    mags = {b: test.column(f"mag_{b}") for b in "ugriz"}
    assert len(viz.colour_colour(mags, color=z).data[0].x) == 300
    assert len(viz.colour_redshift(mags, z).data) == 1
    assert len(viz.zphot_zspec(z + 0.01, z).data) == 4
    assert len(viz.z_age_contours(np.random.rand(100), np.random.rand(100) + 1, truth=(0.5, 1.5)).data) == 2
    h = viz.pit_histogram(np.random.default_rng(0).uniform(size=1000), bins=10)
    assert abs(np.mean(h.data[0].y) - 1.0) < 1e-9


def test_mmvae_draws_are_the_mixture_truncated_to_the_prior_support():
    """Draws equal rejection sampling of the equal-weight mixture inside the box; nothing leaves the box, even for
    a galaxy whose components all lie far outside it (out-of-distribution photometry)."""
    from scipy.stats import ks_2samp

    from core.tasks.photoz.models.mmvae import _truncated_mixture_draws

    lo, hi = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    mu = np.array([[[0.05, 0.0], [0.9, 0.5]], [[40.0, 3.0], [55.0, 2.0]]])   # galaxy 1: every component far outside
    sd = np.array([[[0.1, 0.3], [0.3, 2.0]], [[0.5, 0.1], [0.5, 0.1]]])
    x = _truncated_mixture_draws(mu, sd, lo, hi, 20000, np.random.default_rng(0))
    assert x.shape == (2, 20000, 2) and np.all(x >= lo) and np.all(x <= hi)
    np.testing.assert_allclose(x[1], np.broadcast_to([1.0, 1.0], (20000, 2)))
    rng = np.random.default_rng(1)
    k = rng.integers(0, 2, 400000)
    ref = mu[0, k] + sd[0, k] * rng.standard_normal((400000, 2))
    ref = ref[np.all((ref >= lo) & (ref <= hi), axis=1)]
    for j in range(2):
        assert ks_2samp(x[0, :, j], ref[:20000, j]).pvalue > 0.01
    # the heavier in-box component is picked in proportion to its in-box mass
    assert np.mean(x[0, :, 0] < 0.4) == pytest.approx(np.mean(ref[:, 0] < 0.4), abs=0.015)
