"""Map figure builders (core.viz.maps) on tiny synthetic maps: panels, NaN-masked pixels, ranges, errors."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from core.data.central_data import CentralMassData
from core.data.maps import MapStack
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.inference.posterior_maps import MapPosteriorBuilder
from core.metrics.maps import galaxy_pixels, residual_vs_truth
from core.viz import maps as vm

N, H, W, S = 2, 16, 16, 200


def _heatmaps(fig: go.Figure) -> list[go.Heatmap]:
    return [t for t in fig.data if isinstance(t, go.Heatmap)]


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.fixture
def mask():
    yy, xx = np.mgrid[:H, :W]
    m = np.hypot(xx - 7.5, yy - 7.5) > 6.0                  # a disc of data, corners masked
    return np.repeat(m[None], N, axis=0)


@pytest.fixture
def stack(rng, mask):
    yy, xx = np.mgrid[:H, :W]
    vel = np.repeat(((xx - 7.5) * 20.0)[None], N, 0) + 5.0   # mostly-antisymmetric velocity field
    sig = 100.0 + rng.normal(0, 5, (N, H, W))
    data = np.stack([vel, sig], axis=1).astype(np.float32)
    data[:, :, mask[0]] = 0.0                                # masked pixels hold 0: must not be drawn as 0
    return MapStack(data=data, channels=("vel", "sigma"), units=("km / s", "km / s"), mask=mask,
                    pixel_scale_arcsec=0.5, ids=np.array([10, 11]))


@pytest.fixture
def post(rng, mask):
    truth = rng.uniform(0, 1, (N, H, W)).astype(np.float32)
    sd = 0.1
    centre = truth + rng.normal(0, sd, (N, H, W))            # calibrated: truth ~ N(centre, sd)
    draws = np.clip(centre[:, None] + rng.normal(0, sd, (N, S, H, W)), -1.0, 2.0).astype(np.float32)
    b = MapPosteriorBuilder(N, (H, W), thresholds=(0.5,), keep_samples=1)
    b.add(0, draws)
    return b.finish(target="f_ex", unit="", mask=mask, method="flow", truth=truth)


@pytest.fixture
def central(rng):
    im_mask = np.zeros((N, 20, 20), bool)
    im_mask[:, :3] = True
    y = rng.normal(10.0, 0.5, (N, 2))
    return CentralMassData(maps={"image": rng.normal(21, 1, (N, 20, 20)), "vel": rng.normal(0, 50, (N, 12, 12))},
                           masks={"image": im_mask}, pixel_kpc={"image": np.full(N, 0.4), "vel": np.full(N, 0.2)},
                           y=y, targets=("log_mstar_re", "log_mtot_re"))


def test_input_maps_mapstack(stack, mask):
    fig = vm.input_maps_figure(stack, 1, title="inputs")
    hm = _heatmaps(fig)
    assert len(hm) == 2 and [t.name for t in hm] == ["vel", "sigma"]
    for t in hm:
        z = np.asarray(t.z, float)
        assert np.isnan(z[mask[1]]).all() and np.isfinite(z[~mask[1]]).all()
        assert np.isclose(np.asarray(t.x)[1] - np.asarray(t.x)[0], 0.5)      # arcsec axes
    vel = hm[0]
    assert vel.zmid == 0 and np.isclose(vel.zmin, -vel.zmax)                   # diverging, centred on 0
    assert hm[1].zmid is None and hm[1].zmin > 0
    assert sum(isinstance(t, go.Contour) for t in fig.data) == 2               # mask outline per panel
    assert "km / s" in fig.layout.annotations[0].text
    assert len({t.colorbar.x for t in hm}) == 2                                # one colour bar per panel


def test_input_maps_central_data_and_arrays(central):
    fig = vm.input_maps_figure(central, 0)
    hm = _heatmaps(fig)
    assert [np.asarray(t.z).shape for t in hm] == [(20, 20), (12, 12)]         # each panel its own grid
    assert np.isnan(np.asarray(hm[0].z, float)[:3]).all()
    assert "kpc" in fig.layout.xaxis.title.text
    arr = np.ones((H, W))
    arr[0, 0] = np.nan
    fig2 = vm.input_maps_figure({"mu_r": arr}, 0, units={"mu_r": "mag / arcsec2"})
    assert _heatmaps(fig2)[0].reversescale and "pixel" in fig2.layout.xaxis.title.text


def test_input_maps_bad_input(stack, central):
    with pytest.raises(GPSError):
        vm.input_maps_figure(stack, 2)
    with pytest.raises(GPSError):
        vm.input_maps_figure(stack, 0, channels=["log_age"])
    with pytest.raises(GPSError):
        vm.input_maps_figure(central, -1)
    with pytest.raises(GPSError):
        vm.input_maps_figure(42, 0)


def test_posterior_maps_panels_ranges_and_mask(post, mask):
    fig = vm.posterior_maps_figure(post, 0)
    hm = {t.name: t for t in _heatmaps(fig)}
    assert list(hm) == ["mean", "std", "p_gt_0.5", "truth", "residual"]
    for name in ("mean", "truth", "p_gt_0.5"):
        assert (hm[name].zmin, hm[name].zmax) == (0.0, 1.0)
    assert hm["std"].zmin == 0.0
    r = hm["residual"]
    assert r.zmid == 0 and np.isclose(r.zmin, -r.zmax)
    for t in hm.values():
        z = np.asarray(t.z, float)
        assert np.isnan(z[mask[0]]).all() and np.isfinite(z[~mask[0]]).all()
    res = np.asarray(r.z, float)[~mask[0]]
    assert np.allclose(res, (post.mean[0] - post.truth[0])[~mask[0]], atol=1e-6)


def test_posterior_maps_without_truth_and_errors(post):
    post.truth = None
    fig = vm.posterior_maps_figure(post, 1)
    assert [t.name for t in _heatmaps(fig)] == ["mean", "std", "p_gt_0.5"] and "no truth" in fig.layout.title.text
    with pytest.raises(GPSError):
        vm.posterior_maps_figure(post, 5)
    with pytest.raises(GPSError):
        vm.posterior_maps_figure(post, 0, panels=("mean", "bogus"))
    with pytest.raises(GPSError):
        vm.posterior_maps_figure(post, 0, panels=("p_gt_0.9",))


def test_modes_figure(post):
    posts = {"flow": post, "prior": post.subset([1, 0]), "reconstruction": post}
    fig = vm.modes_figure(posts, 0)
    hm = _heatmaps(fig)
    assert len(hm) == 7                                                         # 3 means + 3 stds + truth
    means = [t for t in hm if t.name.endswith("mean") or t.name == "truth"]
    assert all((t.zmin, t.zmax) == (0.0, 1.0) for t in means)
    assert sum(bool(t.showscale) for t in hm) == 2                              # one shared bar per row
    with pytest.raises(GPSError):
        vm.modes_figure({}, 0)
    with pytest.raises(GPSError):
        vm.modes_figure(posts, 0, truth=np.zeros((3, 3)))


def test_pixel_residual_and_distribution(post, mask):
    pix = galaxy_pixels(mask, post.truth)
    rows = residual_vs_truth(post.q50, post.truth, pix, bins=5)
    fig = vm.pixel_residual_figure(rows)
    assert len(fig.data) == 4 and fig.layout.xaxis.range == (0, 1)
    fig2 = vm.pixel_residual_figure({"flow": rows, "prior": rows})
    assert len(fig2.data) == 8
    with pytest.raises(GPSError):
        vm.pixel_residual_figure({"centers": [0.5]})
    d = vm.residual_distribution_figure({"flow": post, "prior": post}, post.truth, pix)
    assert len(d.data) == 2 and d.data[0].x.size == pix.sum()
    assert "MAE" in d.data[0].name
    with pytest.raises(GPSError):
        vm.residual_distribution_figure(post, post.truth[:1], pix)


def test_pixel_coverage_exact_points_and_gaussian_label(post, mask):
    pix = galaxy_pixels(mask, post.truth)
    fig = vm.pixel_coverage_figure(post, post.truth, pix)
    names = [t.name for t in fig.data]
    assert any("Gaussian approximation" in n for n in names)                   # honest about the curve
    assert any("first 1 object" in n for n in names)                            # kept draws of object 0
    exact = [t for t in fig.data if "exact" in (t.name or "")][0]
    assert list(exact.x) == [0.68, 0.95]
    # truth ~ N(draw centre, 0.1) (clipping far away): calibrated, so coverage ~ nominal
    assert abs(exact.y[0] - 0.68) < 0.08 and abs(exact.y[1] - 0.95) < 0.05
    gauss = [t for t in fig.data if "Gaussian" in (t.name or "")][0]
    assert np.allclose(gauss.y, np.linspace(0.05, 0.95, 19), atol=0.1)
    assert fig.layout.xaxis.range == (0, 1) and fig.layout.yaxis.range == (0, 1)


def test_pixel_coverage_from_samples_detects_overconfidence(rng, mask):
    truth = rng.uniform(0, 1, (N, H, W))
    draws = truth[:, None] + rng.normal(0, 0.2, (N, 1, H, W)) + rng.normal(0, 0.1, (N, S, H, W))  # too narrow
    b = MapPosteriorBuilder(N, (H, W))
    b.add(0, draws)
    p = b.finish(target="f_ex", unit="", mask=mask, method="x", truth=truth)
    pix = galaxy_pixels(mask, truth)
    fig = vm.pixel_coverage_figure(p, truth, pix, samples=draws.astype(np.float32))
    curve = [t for t in fig.data if "draws" in (t.name or "")][0]
    assert np.all(np.asarray(curve.y)[5:] < np.linspace(0.05, 0.95, 19)[5:] - 0.1)
    with pytest.raises(GPSError):
        vm.pixel_coverage_figure(p, truth, pix, levels=[0.5, 1.2])


def test_central_targets_and_pred_vs_true(rng, central):
    s = central.y[:, None, :] + rng.normal(0, 0.1, (N, 500, 2))
    post = Posterior(params=("log_mstar_re", "log_mtot_re"), units=("dex(solMass)", "dex(solMass)"), samples=s)
    fig = vm.central_targets_figure(post, central, 1)
    assert sum(isinstance(t, go.Histogram) for t in fig.data) == 2
    reds = [sh for sh in fig.layout.shapes if sh.line.color == "#c0392b"]
    assert len(reds) == 2 and np.isclose(reds[0].x0, central.y[1, 0])
    with pytest.raises(GPSError):
        vm.central_targets_figure(post, central, 2)
    g = vm.pred_vs_true_grid_figure(post, central)
    pts = [t for t in g.data if t.mode == "markers"]
    assert len(pts) == 2 and np.allclose(pts[0].x, central.y[:, 0])
    assert sum(t.name == "1:1" for t in g.data) == 2
    nolabels = CentralMassData(maps={"vel": np.zeros((N, 4, 4))})
    with pytest.raises(GPSError):
        vm.pred_vs_true_grid_figure(post, nolabels)
