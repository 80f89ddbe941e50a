"""Corner plots of posterior samples (plotly): 1-D marginals on the diagonal, 2-D densities below it.

For one parameter the figure is a single 1-D posterior: a histogram of the samples, optionally the exact
(reference) density on a grid and the true value. For several parameters it is a lower-triangular grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["corner_figure", "posterior_1d_figure", "support_range"]

_BLUE = "#3b6fb6"
_ORANGE = "#e07b24"
_RED = "#c0392b"


def posterior_1d_figure(samples: np.ndarray, label: str = "theta", *, exact_grid: np.ndarray | None = None,
                        exact_pdf: np.ndarray | None = None, truth: float | None = None,
                        title: str | None = None, bins: int = 60, name: str = "model posterior",
                        quantiles: Sequence[float] = (0.16, 0.5, 0.84)) -> go.Figure:
    """1-D posterior of one galaxy.

    ``samples`` (s,) draws in the parameter's unit; ``exact_grid`` (g,) and ``exact_pdf`` (g,) a reference
    density (normalized per unit of the parameter); ``truth`` the true value. Dashed lines mark ``quantiles``.
    """
    s = np.asarray(samples, dtype=float).ravel()
    s = s[np.isfinite(s)]
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=s, nbinsx=bins, histnorm="probability density", name=name,
                               marker_color=_BLUE, opacity=0.6))
    if exact_grid is not None and exact_pdf is not None:
        fig.add_trace(go.Scatter(x=np.asarray(exact_grid), y=np.asarray(exact_pdf), mode="lines",
                                 name="exact posterior", line=dict(color=_ORANGE, width=2.5)))
    if s.size:
        for q, v in zip(quantiles, np.quantile(s, quantiles)):
            fig.add_vline(x=float(v), line=dict(color=_BLUE, dash="dash", width=1))
    if truth is not None and np.isfinite(truth):
        fig.add_vline(x=float(truth), line=dict(color=_RED, width=2), annotation_text="truth",
                      annotation_position="top")
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=_RED, width=2), name="truth"))
    fig.update_layout(title=title, xaxis_title=label, yaxis_title="probability density", bargap=0.02,
                      template="plotly_white", legend=dict(orientation="h", y=1.02, yanchor="bottom"),
                      margin=dict(l=50, r=20, t=60, b=50), height=380)
    lo_hi = support_range(s, exact_grid, exact_pdf, truth)
    if lo_hi is not None:  # zoomed on the posterior; the toolbar's "Autoscale" shows the whole prior grid
        fig.update_xaxes(range=list(lo_hi))
    return fig


def support_range(samples: np.ndarray, grid: np.ndarray | None = None, pdf: np.ndarray | None = None,
                  truth: float | None = None, pad: float = 0.25) -> tuple[float, float] | None:
    """The x range where the posterior lives: the samples' 0.1-99.9% range, the exact density above 0.1% of its
    peak and the truth, widened by ``pad`` of its width on each side (None without finite samples)."""
    s = np.asarray(samples, dtype=float).ravel()
    s = s[np.isfinite(s)]
    if not s.size:
        return None
    lo, hi = (float(v) for v in np.quantile(s, [0.001, 0.999]))
    if grid is not None and pdf is not None:
        g, d = np.asarray(grid, float).ravel(), np.asarray(pdf, float).ravel()
        ok = np.isfinite(d) & (d > 1e-3 * np.nanmax(d)) if d.size and np.isfinite(d).any() else np.zeros(0, bool)
        if ok.any():
            lo, hi = min(lo, float(g[ok].min())), max(hi, float(g[ok].max()))
    if truth is not None and np.isfinite(truth):
        lo, hi = min(lo, float(truth)), max(hi, float(truth))
    w = max(hi - lo, 1e-6 * max(1.0, abs(hi)))
    return lo - pad * w, hi + pad * w


def corner_figure(samples: np.ndarray, labels: Sequence[str], *, truths: Sequence[float] | None = None,
                  exact_grid: np.ndarray | None = None, exact_pdf: np.ndarray | None = None,
                  title: str | None = None, bins: int = 40) -> go.Figure:
    """Corner plot of ``samples`` (s, p) with ``labels`` (p,); ``truths`` (p,) drawn as lines.

    ``exact_grid``/``exact_pdf`` overlay a reference density on the first parameter's marginal (the exact
    posterior of the target). With p == 1 this is :func:`posterior_1d_figure`.
    """
    x = np.asarray(samples, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    p = x.shape[1]
    if len(labels) != p:
        raise ValueError(f"corner_figure: {p} parameters but {len(labels)} labels")
    if p == 1:
        return posterior_1d_figure(x[:, 0], labels[0], exact_grid=exact_grid, exact_pdf=exact_pdf,
                                   truth=None if truths is None else truths[0], title=title, bins=bins)
    fig = make_subplots(rows=p, cols=p, horizontal_spacing=0.03, vertical_spacing=0.03)
    for i in range(p):
        for j in range(i + 1):
            r, c = i + 1, j + 1
            if i == j:
                fig.add_trace(go.Histogram(x=x[:, i], nbinsx=bins, histnorm="probability density",
                                           marker_color=_BLUE, opacity=0.7, showlegend=False), r, c)
                if i == 0 and exact_grid is not None and exact_pdf is not None:
                    fig.add_trace(go.Scatter(x=exact_grid, y=exact_pdf, mode="lines", name="exact posterior",
                                             line=dict(color=_ORANGE, width=2)), r, c)
            else:
                fig.add_trace(go.Histogram2dContour(x=x[:, j], y=x[:, i], nbinsx=bins, nbinsy=bins,
                                                    colorscale="Blues", showscale=False, ncontours=8,
                                                    contours=dict(coloring="fill", showlines=False)), r, c)
            if truths is not None:
                if np.isfinite(truths[j]):
                    fig.add_vline(x=float(truths[j]), line=dict(color=_RED, width=1.5), row=r, col=c)
                if i != j and np.isfinite(truths[i]):
                    fig.add_hline(y=float(truths[i]), line=dict(color=_RED, width=1.5), row=r, col=c)
            if i == p - 1:
                fig.update_xaxes(title_text=labels[j], row=r, col=c)
            if j == 0 and i > 0:
                fig.update_yaxes(title_text=labels[i], row=r, col=c)
    fig.update_layout(title=title, template="plotly_white", height=220 * p + 80, width=None,
                      margin=dict(l=60, r=20, t=60, b=50))
    return fig
