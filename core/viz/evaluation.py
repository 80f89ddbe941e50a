"""Comparison figures: scores of several methods side by side, feature importance, posterior predictive checks."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["methods_figure", "importance_figure", "ppc_figure"]


def methods_figure(scores: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = ("rmse", "coverage_68",
                   "crps"), *, title: str = "Methods side by side") -> go.Figure:
    """Grouped bars: one panel per metric, one bar per method (``scores[method][metric]``; missing -> no bar)."""
    names = list(scores)
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics), horizontal_spacing=0.08)
    for k, m in enumerate(metrics):
        vals = [_f(scores[n].get(m)) for n in names]
        fig.add_trace(go.Bar(x=names, y=vals, marker_color="#3b6fb6", showlegend=False,
                             text=[f"{v:.3g}" if np.isfinite(v) else "" for v in vals], textposition="outside"),
                      1, k + 1)
        if m.startswith("coverage_"):
            fig.add_hline(y=float(m.split("_")[1]) / 100, line=dict(color="#888", dash="dash"), row=1, col=k + 1)
    fig.update_layout(title=title, template="plotly_white", height=360, margin=dict(l=40, r=20, t=70, b=60))
    return fig


def importance_figure(importance: Mapping[str, float], *, title: str = "LightGBM gain importance",
                      normalize: bool = True) -> go.Figure:
    """Horizontal bars of feature importances (``feature -> gain``), largest on top; optionally as fractions."""
    items = sorted(importance.items(), key=lambda kv: kv[1])
    v = np.array([float(b) for _, b in items])
    if normalize and v.sum() > 0:
        v = v / v.sum()
    fig = go.Figure(go.Bar(x=v, y=[a for a, _ in items], orientation="h", marker_color="#3b6fb6"))
    fig.update_layout(title=title, xaxis_title="fraction of total gain" if normalize else "gain",
                      template="plotly_white", height=120 + 30 * len(items), margin=dict(l=90, r=20, t=50, b=40))
    return fig


def ppc_figure(x_obs: np.ndarray, x_rep: np.ndarray, labels: Sequence[str], *,
               title: str = "Posterior predictive check") -> go.Figure:
    """Replicated features ``x_rep`` (n_rep, d) as box plots (standardized per feature by the replicas) with the
    observed ``x_obs`` (d,) as red markers; NaN observations (missing) are left out."""
    xo = np.asarray(x_obs, dtype=float).ravel()
    xr = np.asarray(x_rep, dtype=float)
    mu, sd = np.nanmean(xr, axis=0), np.nanstd(xr, axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    fig = go.Figure()
    for j, lab in enumerate(labels):
        fig.add_trace(go.Box(y=(xr[:, j] - mu[j]) / sd[j], name=lab, marker_color="#3b6fb6", boxpoints=False,
                             showlegend=False))
    z = (xo - mu) / sd
    fig.add_trace(go.Scatter(x=list(labels), y=np.where(np.isfinite(z), z, None), mode="markers",
                             name="observed", marker=dict(color="#c0392b", size=11, symbol="diamond")))
    fig.update_layout(title=title, yaxis_title="(x - mean of replicas) / sd of replicas", template="plotly_white",
                      height=380, margin=dict(l=60, r=20, t=50, b=40))
    return fig


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
