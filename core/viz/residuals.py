"""Point-estimate figures: predicted vs true with credible bars, residual histogram, residuals vs inputs."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["pred_vs_true_figure", "residual_histogram_figure", "residuals_vs_inputs_figure"]


def pred_vs_true_figure(truth: np.ndarray, median: np.ndarray, lo: np.ndarray, hi: np.ndarray, *,
                        label: str = "log Mh", title: str = "Predicted vs true", max_points: int = 3000,
                        seed: int = 0) -> go.Figure:
    """Posterior median against the truth with 16-84% bars (``lo``, ``hi``), all (n,) in the target's unit.

    At most ``max_points`` randomly chosen objects are drawn (seeded) so the browser stays responsive.
    """
    t, m, a, b = (np.asarray(v, dtype=float) for v in (truth, median, lo, hi))
    ok = np.flatnonzero(np.isfinite(t) & np.isfinite(m))
    if ok.size > max_points:
        ok = np.sort(np.random.default_rng(seed).choice(ok, max_points, replace=False))
    t, m, a, b = t[ok], m[ok], a[ok], b[ok]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=m, mode="markers", name="median, 16-84%",
                             marker=dict(size=4, color="#3b6fb6", opacity=0.6),
                             error_y=dict(type="data", symmetric=False, array=b - m, arrayminus=m - a,
                                          thickness=0.6, width=0, color="rgba(59,111,182,0.35)")))
    if t.size:
        lo_, hi_ = float(np.nanmin([t.min(), a.min()])), float(np.nanmax([t.max(), b.max()]))
        fig.add_trace(go.Scatter(x=[lo_, hi_], y=[lo_, hi_], mode="lines", name="1:1",
                                 line=dict(color="#c0392b", dash="dash")))
    fig.update_layout(title=title, xaxis_title=f"true {label}", yaxis_title=f"predicted {label}",
                      template="plotly_white", height=440, margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig


def residual_histogram_figure(residual: np.ndarray, *, label: str = "median - truth",
                              title: str = "Residuals") -> go.Figure:
    """Histogram of residuals (n,) with their median marked."""
    r = np.asarray(residual, dtype=float)
    r = r[np.isfinite(r)]
    fig = go.Figure(go.Histogram(x=r, nbinsx=60, marker_color="#3b6fb6", opacity=0.75, name="residual"))
    if r.size:
        fig.add_vline(x=float(np.median(r)), line=dict(color="#c0392b", dash="dash"), annotation_text="median")
    fig.update_layout(title=title, xaxis_title=label, yaxis_title="count", template="plotly_white", height=340,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def residuals_vs_inputs_figure(x: np.ndarray, labels: Sequence[str], residual: np.ndarray, *,
                               title: str = "Residuals against every input", cols: int = 4,
                               max_points: int = 3000, seed: int = 0) -> go.Figure:
    """One panel per input: residual (n,) against input column ``x[:, j]`` (n, d), with a binned median."""
    x = np.asarray(x, dtype=float)
    r = np.asarray(residual, dtype=float)
    d = x.shape[1]
    rows = max(1, int(np.ceil(d / cols)))
    idx = np.arange(len(r))
    if idx.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    fig = make_subplots(rows=rows, cols=min(cols, d), subplot_titles=list(labels), vertical_spacing=0.12,
                        horizontal_spacing=0.05)
    for j in range(d):
        rr, cc = j // cols + 1, j % cols + 1
        xi, ri = x[idx, j], r[idx]
        ok = np.isfinite(xi) & np.isfinite(ri)
        fig.add_trace(go.Scattergl(x=xi[ok], y=ri[ok], mode="markers", showlegend=False,
                                   marker=dict(size=3, color="#3b6fb6", opacity=0.35)), rr, cc)
        centers, med = _binned_median(x[:, j], r)
        fig.add_trace(go.Scatter(x=centers, y=med, mode="lines", showlegend=False,
                                 line=dict(color="#e07b24", width=2)), rr, cc)
        fig.add_hline(y=0, line=dict(color="#888", dash="dot"), row=rr, col=cc)
    fig.update_layout(title=title, template="plotly_white", height=260 * rows + 80,
                      margin=dict(l=50, r=20, t=70, b=40))
    return fig


def _binned_median(x: np.ndarray, r: np.ndarray, bins: int = 12) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(x) & np.isfinite(r)
    if ok.sum() < 2 * bins:
        return np.array([]), np.array([])
    edges = np.quantile(x[ok], np.linspace(0, 1, bins + 1))
    k = np.clip(np.searchsorted(edges, x[ok], side="right") - 1, 0, bins - 1)
    centers = np.array([np.median(x[ok][k == i]) if np.any(k == i) else np.nan for i in range(bins)])
    med = np.array([np.median(r[ok][k == i]) if np.any(k == i) else np.nan for i in range(bins)])
    return centers, med
