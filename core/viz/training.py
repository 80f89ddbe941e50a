"""Training curves: train and validation loss per epoch with the best epoch marked."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

__all__ = ["loss_curves_figure"]


def loss_curves_figure(epochs: Sequence[dict], *, best_epoch: int | None = None, title: str = "Loss",
                       log_y: bool = False) -> go.Figure:
    """Loss curves from ``epochs``: dicts with ``epoch``, ``train_loss``, ``val_loss`` (as in History.epochs).

    Non-finite losses are dropped. ``best_epoch`` (0-based, as stored) is marked with a vertical line (the restored
    weights). The x axis counts epochs from 1, as the captions and the CLI's progress line do.
    """
    ep = np.array([e.get("epoch", i) for i, e in enumerate(epochs)], dtype=float) + 1
    tr = np.array([_f(e.get("train_loss")) for e in epochs], dtype=float)
    va = np.array([_f(e.get("val_loss")) for e in epochs], dtype=float)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ep, y=np.where(np.isfinite(tr), tr, None), mode="lines+markers", name="train",
                             line=dict(color="#3b6fb6"), marker=dict(size=4)))
    fig.add_trace(go.Scatter(x=ep, y=np.where(np.isfinite(va), va, None), mode="lines+markers",
                             name="validation", line=dict(color="#e07b24"), marker=dict(size=4)))
    if best_epoch is not None and best_epoch >= 0:
        fig.add_vline(x=best_epoch + 1, line=dict(color="#2e7d32", dash="dash"), annotation_text="best",
                      annotation_position="top")
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="loss", template="plotly_white",
                      height=340, margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
