"""MCMC diagnostics figures: per-chain trace plots and rank histograms."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["split_chains", "trace_figure"]

_COLORS = ("#3b6fb6", "#e07b24", "#2e7d32", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d35400")


def split_chains(samples: np.ndarray, n_chains: int) -> np.ndarray:
    """Samples (s,) or (s, p) of one object with chains stored as contiguous blocks -> (chains, draws, p)."""
    x = np.asarray(samples, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n_chains = max(1, int(n_chains))
    draws = x.shape[0] // n_chains
    if draws < 1:
        raise ValueError(f"split_chains: {x.shape[0]} samples cannot form {n_chains} chains")
    return x[: draws * n_chains].reshape(n_chains, draws, x.shape[1])


def trace_figure(chains: np.ndarray, labels: Sequence[str], *, title: str = "Trace") -> go.Figure:
    """Trace plot (left) and per-chain marginal histogram (right) for ``chains`` (c, draws, p)."""
    ch = np.asarray(chains, dtype=float)
    if ch.ndim == 2:
        ch = ch[..., None]
    c, d, p = ch.shape
    fig = make_subplots(rows=p, cols=2, column_widths=[0.72, 0.28], shared_yaxes=True,
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    for j in range(p):
        for k in range(c):
            col = _COLORS[k % len(_COLORS)]
            fig.add_trace(go.Scatter(x=np.arange(d), y=ch[k, :, j], mode="lines", name=f"chain {k}",
                                     line=dict(color=col, width=1), opacity=0.8, legendgroup=f"c{k}",
                                     showlegend=(j == 0)), j + 1, 1)
            fig.add_trace(go.Histogram(y=ch[k, :, j], nbinsy=40, marker_color=col, opacity=0.45,
                                       legendgroup=f"c{k}", showlegend=False), j + 1, 2)
        fig.update_yaxes(title_text=labels[j], row=j + 1, col=1)
        fig.update_xaxes(title_text="draw", row=j + 1, col=1)
    fig.update_layout(title=title, barmode="overlay", template="plotly_white", height=260 * p + 80,
                      margin=dict(l=60, r=20, t=60, b=40))
    return fig
