"""Figure builders of core.viz on synthetic inputs: traces present, shapes and values as given."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from core.viz import calibration, corner, data, evaluation, hmc, residuals, training


@pytest.fixture
def rng():
    return np.random.default_rng(1)


def test_posterior_1d_with_exact_and_truth(rng):
    s = rng.normal(12.0, 0.3, 2000)
    g = np.linspace(10, 14, 201)
    pdf = np.exp(-0.5 * ((g - 12) / 0.3) ** 2) / (0.3 * np.sqrt(2 * np.pi))
    fig = corner.corner_figure(s[:, None], ["log Mh"], truths=[12.1], exact_grid=g, exact_pdf=pdf)
    names = [t.name for t in fig.data]
    assert "exact posterior" in names and "truth" in names
    hist = [t for t in fig.data if isinstance(t, go.Histogram)][0]
    assert len(hist.x) == 2000
    exact = [t for t in fig.data if t.name == "exact posterior"][0]
    assert np.isclose(np.trapezoid(np.asarray(exact.y), np.asarray(exact.x)), 1.0, atol=1e-3)


def test_corner_two_params_lower_triangle(rng):
    s = rng.normal(size=(500, 2))
    fig = corner.corner_figure(s, ["a", "b"], truths=[0.0, 0.0])
    kinds = [type(t).__name__ for t in fig.data]
    assert kinds.count("Histogram") == 2 and kinds.count("Histogram2dContour") == 1
    with pytest.raises(ValueError):
        corner.corner_figure(s, ["a"])


def test_loss_curves_drop_nonfinite():
    ep = [{"epoch": i, "train_loss": 1.0 / (i + 1), "val_loss": (np.inf if i == 0 else 1.2 / (i + 1))}
          for i in range(10)]
    fig = training.loss_curves_figure(ep, best_epoch=9)
    assert [t.name for t in fig.data] == ["train", "validation"]
    assert fig.data[1].y[0] is None and np.isclose(fig.data[1].y[-1], 0.12)


def test_loss_curves_best_epoch_marker_matches_the_one_based_caption():
    ep = [{"epoch": i, "train_loss": float(i), "val_loss": float(abs(i - 3))} for i in range(6)]
    fig = training.loss_curves_figure(ep, best_epoch=3)  # stored 0-based: the caption says "best epoch 4"
    assert list(fig.data[0].x) == [1, 2, 3, 4, 5, 6]
    assert fig.layout.shapes[0].x0 == 4 and fig.data[1].y[3] == 0.0


def test_split_chains_and_trace(rng):
    s = np.concatenate([np.full(100, k, float) for k in range(4)])
    ch = hmc.split_chains(s, 4)
    assert ch.shape == (4, 100, 1) and np.all(ch[2] == 2)
    fig = hmc.trace_figure(ch, ["log Mh"])
    assert sum(isinstance(t, go.Scatter) for t in fig.data) == 4
    with pytest.raises(ValueError):
        hmc.split_chains(np.ones(3), 4)


def test_calibration_figures(rng):
    lv = np.linspace(0.05, 0.95, 10)
    fig = calibration.coverage_figure({"flow": (lv, lv), "exact": (lv, lv * 0.9)})
    assert [t.name for t in fig.data] == ["ideal", "flow", "exact"]
    fig = calibration.pit_figure({"flow": rng.random(300)}, bins=10)
    assert len(fig.data[0].x) == 300


def test_residual_figures(rng):
    t = rng.uniform(11, 14, 400)
    m = t + rng.normal(0, 0.2, 400)
    fig = residuals.pred_vs_true_figure(t, m, m - 0.2, m + 0.2, max_points=100)
    assert len(fig.data[0].x) == 100 and fig.data[1].name == "1:1"
    x = rng.normal(size=(400, 5))
    x[0, 1] = np.nan
    fig = residuals.residuals_vs_inputs_figure(x, list("abcde"), m - t, cols=3)
    assert sum(isinstance(tr, go.Scattergl) for tr in fig.data) == 5
    fig = residuals.residual_histogram_figure(m - t)
    assert len(fig.data[0].x) == 400


def test_data_figures_and_correlation(rng):
    a = rng.normal(size=1000)
    x = np.column_stack([a, 2 * a + 0.01 * rng.normal(size=1000), rng.normal(size=1000)])
    x[3, 2] = np.nan
    c = data.correlation_matrix(x)
    assert c.shape == (3, 3) and c[0, 1] > 0.99 and abs(c[0, 2]) < 0.1 and np.allclose(np.diag(c), 1)
    fig = data.correlation_figure(x, ["a", "b", "c"])
    assert np.asarray(fig.data[0].z).shape == (3, 3)
    fig = data.histograms_figure(x, ["a", "b", "c"], domains=[(-1, 1), None, None])
    assert len(fig.data) == 3 and len(fig.data[2].x) == 999
    fig = data.pair_plot_figure(x, ["a", "b", "c"], color=a, max_points=200)
    assert len(fig.data[0].dimensions) == 3 and len(fig.data[0].dimensions[0].values) == 200


def test_evaluation_figures(rng):
    fig = evaluation.methods_figure({"flow": {"rmse": 0.2, "coverage_68": 0.7, "crps": 0.1},
                                     "shmr": {"rmse": 0.3}})
    assert len(fig.data) == 3 and list(fig.data[0].x) == ["flow", "shmr"]
    fig = evaluation.importance_figure({"log_mstar": 8.0, "g_r": 2.0})
    assert list(fig.data[0].y) == ["g_r", "log_mstar"] and np.isclose(fig.data[0].x[-1], 0.8)
    fig = evaluation.ppc_figure(np.array([0.0, np.nan]), rng.normal(size=(200, 2)), ["a", "b"])
    assert fig.data[-1].name == "observed" and fig.data[-1].y[1] is None


def test_posterior_plot_zooms_on_the_posterior_not_the_prior():
    from core.viz.corner import corner_figure

    rng = np.random.default_rng(0)
    s = rng.normal(12.0, 0.1, 2000)
    grid = np.linspace(10.5, 15.0, 901)
    pdf = np.exp(-0.5 * ((grid - 12.0) / 0.1) ** 2) / (0.1 * np.sqrt(2 * np.pi))
    fig = corner_figure(s[:, None], ["log Mh"], truths=[12.05], exact_grid=grid, exact_pdf=pdf)
    lo, hi = fig.layout.xaxis.range
    assert 11.0 < lo < 11.7 and 12.3 < hi < 13.0  # about the posterior's +-4 sigma, not the 10.5-15 prior


def test_correlation_figure_leaves_out_a_constant_column_and_says_so(rng):
    x = np.column_stack([rng.normal(size=200), np.full(200, 0.7), rng.normal(size=200)])
    fig = data.correlation_figure(x, ["a", "g_r", "c"])
    assert list(fig.data[0].x) == ["a", "c"] and np.isfinite(np.asarray(fig.data[0].z)).all()
    assert "g_r left out" in fig.layout.title.text
