"""Figures for dm_to_galaxies (pure plotly, no streamlit): field slices, P(k) with T(k) and r(k), PR curves, PDF.

Fields are (N, N) maps or (N, N, N) grids; 3-D grids are shown as the slice ``index`` along ``axis`` (default the
middle). Axes are comoving Mpc/h when ``box_size`` is given. Densities are drawn as log10(rho / rho_bar), counts
as counts, probabilities on [0, 1].
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.errors import GPSError

__all__ = [
    "field_slice",
    "dm_slice_figure",
    "comparison_figure",
    "power_spectrum_figure",
    "pr_curve_figure",
    "one_point_pdf_figure",
]


def field_slice(field: np.ndarray, index: int | None = None, axis: int = 0) -> np.ndarray:
    """A 2-D view of a field: the map itself, or slice ``index`` (default middle) of a 3-D grid along ``axis``."""
    f = np.asarray(field)
    if f.ndim == 2:
        return f
    if f.ndim != 3:
        raise GPSError("a field must be 2-D or 3-D", field="field", expected="2 or 3 axes", found=str(f.shape))
    i = f.shape[axis] // 2 if index is None else int(index)
    if not 0 <= i < f.shape[axis]:
        raise GPSError("slice index out of range", field="index", expected=f"0..{f.shape[axis] - 1}", found=str(i))
    return np.take(f, i, axis=axis)


def dm_slice_figure(
    dm: np.ndarray, *, box_size: float | None = None, index: int | None = None, axis: int = 0, title: str = "DM density"
) -> go.Figure:
    """Heatmap of log10(rho / rho_bar) of one field (a slice of a 3-D grid)."""
    fig = go.Figure(
        _heat(np.log10(np.clip(field_slice(dm, index, axis), 1e-6, None)), box_size, "Viridis", "log10 rho/rho_bar")
    )
    _square(fig, title, box_size)
    return fig


def comparison_figure(
    panels: Mapping[str, np.ndarray], *, box_size: float | None = None, index: int | None = None, axis: int = 0
) -> go.Figure:
    """Side by side panels, e.g. {"DM": dm, "true galaxies": counts, "P(N>=1) two_phase": p, "oracle P": po,
    "VDM sample": s}. Keys containing "dm" (case-insensitive) are drawn in log scale; "P" panels on [0, 1]."""
    if not panels:
        raise GPSError("nothing to show", field="panels", expected="at least one field")
    names = list(panels)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.03)
    for j, name in enumerate(names, 1):
        z = field_slice(panels[name], index, axis).astype(float)
        low = name.lower()
        if "dm" in low:
            tr = _heat(np.log10(np.clip(z, 1e-6, None)), box_size, "Viridis", "log rho", zmin=None)
        elif low.startswith("p") or "prob" in low:
            tr = _heat(z, box_size, "Cividis", "P", zmin=0.0, zmax=1.0)
        else:
            tr = _heat(z, box_size, "Greys", "N", zmin=0.0, zmax=max(float(z.max()), 1.0))
        tr.update(showscale=False)
        fig.add_trace(tr, 1, j)
        fig.update_xaxes(showticklabels=False, row=1, col=j)
        fig.update_yaxes(showticklabels=False, scaleanchor=f"x{j if j > 1 else ''}", row=1, col=j)
    fig.update_layout(height=300, width=260 * len(names), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def power_spectrum_figure(curves: Mapping[str, Mapping[str, np.ndarray]]) -> go.Figure:
    """Three rows over k [h/Mpc]: P(k) of each method (and the truth), T(k) = P_pred / P_true, r(k).

    ``curves[name]`` is the dict of :func:`core.tasks.dm_to_galaxies.metrics.transfer_and_correlation` (keys k,
    p_pred, p_true, T, r); p_pred/p_true may be missing (then only T and r are drawn).
    """
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        subplot_titles=("P(k) of delta = N/N_bar - 1", "T(k) = P_pred / P_true", "r(k) = P_x / sqrt(P_pred P_true)"),
    )
    truth_drawn = False
    for name, c in curves.items():
        k = np.asarray(c["k"])
        if "p_pred" in c:
            fig.add_trace(
                go.Scatter(x=k, y=np.asarray(c["p_pred"]), name=name, mode="lines+markers", legendgroup=name), 1, 1
            )
            if not truth_drawn and "p_true" in c:
                fig.add_trace(
                    go.Scatter(
                        x=k,
                        y=np.asarray(c["p_true"]),
                        name="truth",
                        mode="lines",
                        line=dict(color="black", dash="dash"),
                    ),
                    1,
                    1,
                )
                truth_drawn = True
        fig.add_trace(
            go.Scatter(
                x=k,
                y=np.asarray(c["T"]),
                name=name,
                mode="lines+markers",
                legendgroup=name,
                showlegend="p_pred" not in c,
            ),
            2,
            1,
        )
        fig.add_trace(
            go.Scatter(x=k, y=np.asarray(c["r"]), name=name, mode="lines+markers", legendgroup=name, showlegend=False),
            3,
            1,
        )
    fig.add_hline(y=1.0, line=dict(color="grey", dash="dot"), row=2, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="k [h/Mpc]", row=3, col=1)
    fig.update_layout(height=750)
    return fig


def pr_curve_figure(
    scores: Mapping[str, np.ndarray],
    truth: np.ndarray,
    operating_points: Mapping[str, tuple[float, float]] | None = None,
) -> go.Figure:
    """Precision-recall curves of several scores (e.g. the model's P and the oracle's) on the same voxels.

    ``operating_points``: name -> (recall, precision) markers. The legend gives each curve's PR-AUC.
    """
    from core.tasks.dm_to_galaxies.metrics import pr_auc, pr_curve

    occ = np.asarray(truth) > 0
    fig = go.Figure()
    for name, s in scores.items():
        prec, rec, _ = pr_curve(s, occ)
        fig.add_trace(
            go.Scatter(
                x=np.r_[0.0, rec],
                y=np.r_[prec[0] if len(prec) else 1.0, prec],
                mode="lines",
                name=f"{name} (PR-AUC {pr_auc(s, occ):.3f})",
            )
        )
    for name, (r, p) in (operating_points or {}).items():
        fig.add_trace(
            go.Scatter(x=[r], y=[p], mode="markers", marker=dict(size=10, symbol="x"), name=f"{name} operating point")
        )
    fig.add_hline(y=float(occ.mean()), line=dict(color="grey", dash="dot"), annotation_text="occupied fraction")
    fig.update_layout(xaxis_title="recall", yaxis_title="precision", yaxis_type="log", height=450)
    return fig


def one_point_pdf_figure(fields: Mapping[str, np.ndarray], max_count: int = 6) -> go.Figure:
    """Fraction of voxels with N = 0, 1, ..., >= max_count galaxies for each field set (log y)."""
    from core.tasks.dm_to_galaxies.metrics import one_point_pdf

    labels = [str(i) for i in range(max_count)] + [f">={max_count}"]
    fig = go.Figure()
    for name, f in fields.items():
        fig.add_trace(go.Bar(x=labels, y=one_point_pdf(f, max_count), name=name))
    fig.update_layout(
        barmode="group",
        xaxis_title="galaxies per voxel",
        yaxis_title="fraction of voxels",
        yaxis_type="log",
        height=400,
    )
    return fig


def _heat(z: np.ndarray, box_size: float | None, scale: str, label: str, zmin=None, zmax=None) -> go.Heatmap:
    n = z.shape[0]
    ax = (np.arange(n) + 0.5) * (box_size / n) if box_size else np.arange(n)
    return go.Heatmap(z=z, x=ax, y=ax, colorscale=scale, zmin=zmin, zmax=zmax, colorbar=dict(title=label))


def _square(fig: go.Figure, title: str, box_size: float | None) -> None:
    unit = "Mpc/h" if box_size else "voxel"
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title=unit, height=450, width=500)
    fig.update_yaxes(scaleanchor="x")
