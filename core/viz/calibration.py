"""Calibration figures: coverage curve (nominal vs empirical) and PIT histogram."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

__all__ = ["coverage_figure", "pit_figure"]

_COLORS = ("#3b6fb6", "#e07b24", "#2e7d32", "#8e44ad", "#c0392b", "#16a085")


def coverage_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str = "Coverage") -> go.Figure:
    """Empirical vs nominal coverage of central credible intervals.

    ``curves``: method name -> (levels (k,), empirical coverage (k,)), both in [0, 1]. The diagonal is perfect
    calibration; above it the intervals are too wide (under-confident), below too narrow.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="ideal",
                             line=dict(color="#888", dash="dash")))
    for k, (name, (lv, cov)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=np.asarray(lv), y=np.asarray(cov), mode="lines+markers", name=name,
                                 line=dict(color=_COLORS[k % len(_COLORS)]), marker=dict(size=5)))
    fig.update_layout(title=title, xaxis_title="nominal credible level", yaxis_title="fraction of truths inside",
                      template="plotly_white", height=380, margin=dict(l=50, r=20, t=50, b=40),
                      xaxis=dict(range=[0, 1]), yaxis=dict(range=[0, 1]),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig


def pit_figure(pits: Mapping[str, np.ndarray], *, bins: int = 20, title: str = "PIT histogram") -> go.Figure:
    """Histograms of PIT values (CDF of the posterior at the truth), one per method; flat = calibrated.

    ``pits``: method name -> PIT values (n,) in [0, 1]. The dashed line is the uniform density 1; a U shape means
    over-confident posteriors, a hump under-confident ones, a slope a bias.
    """
    fig = go.Figure()
    for k, (name, u) in enumerate(pits.items()):
        u = np.asarray(u, dtype=float)
        fig.add_trace(go.Histogram(x=u[np.isfinite(u)], xbins=dict(start=0, end=1, size=1 / bins),
                                   histnorm="probability density", name=name, opacity=0.55,
                                   marker_color=_COLORS[k % len(_COLORS)]))
    fig.add_hline(y=1.0, line=dict(color="#888", dash="dash"))
    fig.update_layout(title=title, barmode="overlay", xaxis_title="PIT", yaxis_title="density",
                      template="plotly_white", height=380, margin=dict(l=50, r=20, t=50, b=40),
                      xaxis=dict(range=[0, 1]), legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig
