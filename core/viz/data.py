"""Data figures: feature histograms, a pair plot and the Pearson correlation matrix."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["histograms_figure", "pair_plot_figure", "correlation_matrix", "correlation_figure"]


def histograms_figure(x: np.ndarray, labels: Sequence[str], *, cols: int = 4, bins: int = 40,
                      domains: Sequence[tuple[float, float] | None] | None = None,
                      title: str = "Feature distributions") -> go.Figure:
    """One histogram per column of ``x`` (n, d) (NaN ignored); ``domains`` shades the training range."""
    x = np.asarray(x, dtype=float)
    d = x.shape[1]
    rows = max(1, int(np.ceil(d / cols)))
    fig = make_subplots(rows=rows, cols=min(cols, d), subplot_titles=list(labels), vertical_spacing=0.14,
                        horizontal_spacing=0.05)
    for j in range(d):
        r, c = j // cols + 1, j % cols + 1
        v = x[:, j][np.isfinite(x[:, j])]
        fig.add_trace(go.Histogram(x=v, nbinsx=bins, marker_color="#3b6fb6", opacity=0.8, showlegend=False,
                                   name=labels[j]), r, c)
        if domains is not None and domains[j] is not None:
            lo, hi = domains[j]
            fig.add_vrect(x0=lo, x1=hi, fillcolor="#2e7d32", opacity=0.07, line_width=0, row=r, col=c)
    fig.update_layout(title=title, template="plotly_white", height=220 * rows + 80, bargap=0.02,
                      margin=dict(l=40, r=20, t=70, b=30))
    return fig


def pair_plot_figure(x: np.ndarray, labels: Sequence[str], *, color: np.ndarray | None = None,
                     color_label: str = "", max_points: int = 2000, seed: int = 0,
                     title: str = "Pair plot") -> go.Figure:
    """Scatter matrix of the columns of ``x`` (n, d), coloured by ``color`` (n,) (e.g. the target) if given."""
    x = np.asarray(x, dtype=float)
    idx = np.arange(len(x))
    if idx.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    marker = dict(size=3, opacity=0.5, color="#3b6fb6")
    if color is not None:
        marker.update(color=np.asarray(color, dtype=float)[idx], colorscale="Viridis", showscale=True,
                      colorbar=dict(title=color_label))
    dims = [dict(label=lab, values=x[idx, j]) for j, lab in enumerate(labels)]
    fig = go.Figure(go.Splom(dimensions=dims, marker=marker, diagonal_visible=False, showupperhalf=False))
    size = max(500, 110 * len(labels))
    fig.update_layout(title=title, template="plotly_white", height=size, margin=dict(l=60, r=20, t=50, b=50))
    return fig


def correlation_matrix(x: np.ndarray) -> np.ndarray:
    """Pearson correlation (d, d) of the columns of ``x`` (n, d) over rows where both values are finite."""
    x = np.asarray(x, dtype=float)
    d = x.shape[1]
    out = np.full((d, d), np.nan)
    for i in range(d):
        for j in range(i, d):
            ok = np.isfinite(x[:, i]) & np.isfinite(x[:, j])
            if ok.sum() > 2 and np.std(x[ok, i]) > 0 and np.std(x[ok, j]) > 0:
                out[i, j] = out[j, i] = float(np.corrcoef(x[ok, i], x[ok, j])[0, 1])
    return out


def correlation_figure(x: np.ndarray, labels: Sequence[str], *,
                       title: str = "Pearson correlation") -> go.Figure:
    """Heat map of :func:`correlation_matrix` with the coefficients written in the cells. A column without any
    finite correlation (constant or missing, e.g. a colour the maps do not carry) is left out and named in the
    title instead of leaving a blank row and column."""
    c = correlation_matrix(x)
    labels = list(labels)
    off = np.where(np.eye(len(c), dtype=bool), np.nan, c)
    keep = np.isfinite(off).any(axis=1) if len(c) > 1 else np.ones(len(c), bool)
    if not keep.all():
        title += f" ({', '.join(n for n, k in zip(labels, keep) if not k)} left out: constant or missing)"
        c, labels = c[np.ix_(keep, keep)], [n for n, k in zip(labels, keep) if k]
    text = np.where(np.isfinite(c), np.round(c, 2).astype(str), "")
    fig = go.Figure(go.Heatmap(z=c, x=list(labels), y=list(labels), zmin=-1, zmax=1, colorscale="RdBu_r",
                               text=text, texttemplate="%{text}", colorbar=dict(title="r")))
    fig.update_layout(title=title, template="plotly_white", height=120 + 45 * len(labels),
                      margin=dict(l=80, r=20, t=50, b=60), yaxis=dict(autorange="reversed"))
    return fig
