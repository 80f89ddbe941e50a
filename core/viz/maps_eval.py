"""Evaluation figures of the map tasks (plotly): pixel residuals vs true f_ex, residual histograms, per-pixel
coverage (exceedance/ex-situ maps) and per-target posteriors / predicted-vs-true grids (central_mass)."""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.errors import GPSError

__all__ = ["pixel_residual_figure", "residual_distribution_figure", "pixel_coverage_figure",
           "central_targets_figure", "pred_vs_true_grid_figure", "gaussian_pixel_coverage",
           "sample_pixel_coverage"]

_COLORS = ("#3b6fb6", "#e07b24", "#2e7d32", "#8e44ad", "#c0392b", "#16a085")
_RED = "#c0392b"
_SRC = "core.viz.maps"
_ROW_KEYS = ("centers", "mean_residual", "p16", "p84")
_LAYOUT = dict(template="plotly_white", margin=dict(l=55, r=20, t=60, b=45),
               legend=dict(orientation="h", y=1.02, yanchor="bottom"))
_SIDE_LEGEND = dict(orientation="v", x=1.01, xanchor="left", y=1.0, yanchor="top")


def pixel_residual_figure(rows: Mapping[str, Any], *, label: str = "f_ex",
                          title: str = "Pixel residual against the true pixel value") -> go.Figure:
    """Mean residual (pred - truth) with its 16-84% band and the mean |residual| in bins of the true pixel value.

    ``rows``: the output of :func:`core.metrics.maps.residual_vs_truth` (``centers``, ``mean_residual``,
    ``p16``, ``p84``, optional ``mean_abs_residual`` and ``count``), or method name -> such a dict to overlay
    several methods (the seed's Fig. 3b). Empty bins (NaN) leave gaps.
    """
    sets = {"": rows} if "centers" in rows else dict(rows)
    if not sets:
        raise GPSError("no residual rows", source=_SRC, field="rows", expected="residual_vs_truth output",
                       found="empty")
    fig = go.Figure()
    for k, (name, r) in enumerate(sets.items()):
        miss = [key for key in _ROW_KEYS if key not in r]
        if miss:
            raise GPSError("residual rows lack columns", source=_SRC, field=f"rows{'/' + name if name else ''}",
                           expected=", ".join(_ROW_KEYS), found="missing " + ", ".join(miss))
        col = _COLORS[k % len(_COLORS)]
        x = np.asarray(r["centers"], float)
        lo, hi, mu = (_gaps(r[key]) for key in ("p16", "p84", "mean_residual"))
        tag = f"{name}: " if name else ""
        fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor=_rgba(col, 0.2), name=f"{tag}16-84% of residuals"))
        fig.add_trace(go.Scatter(x=x, y=mu, mode="lines+markers", line=dict(color=col, width=2),
                                 name=f"{tag}mean residual",
                                 customdata=np.asarray(r.get("count", [0] * len(x))),
                                 hovertemplate="true %{x:.2f}: mean residual %{y:.3f} (%{customdata} pixels)"
                                               "<extra></extra>"))
        if "mean_abs_residual" in r:
            fig.add_trace(go.Scatter(x=x, y=_gaps(r["mean_abs_residual"]), mode="lines",
                                     line=dict(color=col, dash="dot"), name=f"{tag}mean |residual|"))
    fig.add_hline(y=0.0, line=dict(color="#888", dash="dash"))
    fig.update_layout(title=title, xaxis_title=f"true pixel {label}", yaxis_title=f"{label} residual (pred - true)",
                      xaxis=dict(range=[0, 1]), height=400, **{**_LAYOUT, "legend": _SIDE_LEGEND})
    return fig


def residual_distribution_figure(post: Any, truth: np.ndarray, pixels: np.ndarray, *, stat: str = "mean",
                                 bins: int = 60, title: str = "Pixel residuals (galaxy pixels)") -> go.Figure:
    """Histogram (probability density) of pixel residuals ``stat`` - truth over the selected ``pixels``.

    ``post``: a MapPosterior or method name -> MapPosterior (overlaid); ``truth`` (N, H, W); ``pixels`` (N, H, W)
    bool (e.g. :func:`core.metrics.maps.galaxy_pixels`); ``stat`` ``mean`` or ``median`` (q50). The legend gives
    each method's mean absolute residual.
    """
    posts = _as_mapping(post)
    if stat not in ("mean", "median"):
        raise GPSError("unknown statistic", source=_SRC, field="stat", expected="mean or median", found=stat)
    fig = go.Figure()
    lim = 0.0
    for k, (name, p) in enumerate(posts.items()):
        t, pix = _truth_pixels(p, truth, pixels)
        r = (np.asarray(p.mean if stat == "mean" else p.q50, float) - t)[pix]
        r = r[np.isfinite(r)]
        if r.size:
            lim = max(lim, float(np.percentile(np.abs(r), 99.5)))
        mae = float(np.mean(np.abs(r))) if r.size else float("nan")
        fig.add_trace(go.Histogram(x=r, histnorm="probability density", opacity=0.55,
                                   marker_color=_COLORS[k % len(_COLORS)],
                                   name=f"{name or p.method or 'posterior'} (MAE {mae:.3f}, {r.size:,} px)"))
    lim = max(lim, 1e-3)
    for tr in fig.data:
        tr.xbins = dict(start=-lim, end=lim, size=2 * lim / bins)
    fig.add_vline(x=0.0, line=dict(color="#888", dash="dash"))
    fig.update_layout(title=title, barmode="overlay", xaxis_title=f"posterior {stat} - truth",
                      yaxis_title="density", height=380, **_LAYOUT)
    return fig


def pixel_coverage_figure(post: Any, truth: np.ndarray, pixels: np.ndarray,
                          levels: np.ndarray = np.linspace(0.05, 0.95, 19), *, samples: np.ndarray | None = None,
                          title: str = "Per-pixel coverage of central intervals") -> go.Figure:
    """Nominal vs empirical coverage of per-pixel central credible intervals over the selected ``pixels``.

    A MapPosterior stores only the 2.5/16/50/84/97.5 percentiles, so the 68% (q16-q84) and 95% (q2.5-q97.5)
    points are exact (large markers). The full curve over ``levels`` comes from raw draws when they exist for every
    object (``samples`` (N, S, H, W) or ``post.samples``); otherwise it is a **Gaussian approximation** per pixel
    (mean +- z std, labelled so), plus — when the posterior kept draws of its first K objects — the exact curve of
    those K objects. ``post`` may be a MapPosterior or name -> MapPosterior.
    """
    posts = _as_mapping(post)
    lv = np.asarray(levels, float).ravel()
    if not lv.size or np.any((lv <= 0) | (lv >= 1)):
        raise GPSError("credible levels must lie in (0, 1)", source=_SRC, field="levels", found=str(lv))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="ideal", line=dict(color="#888", dash="dash")))
    notes = []
    for k, (name, p) in enumerate(posts.items()):
        col = _COLORS[k % len(_COLORS)]
        tag = f"{name or p.method or 'posterior'}: "
        t, pix = _truth_pixels(p, truth, pixels)
        raw = samples if (samples is not None and len(posts) == 1) else p.samples
        raw = None if raw is None or len(raw) == 0 else np.asarray(raw)
        if raw is not None and raw.shape[0] == p.n:
            fig.add_trace(go.Scatter(x=lv, y=sample_pixel_coverage(raw, t, pix, lv), mode="lines+markers",
                                     line=dict(color=col), name=tag + "from posterior draws"))
        else:
            fig.add_trace(go.Scatter(x=lv, y=gaussian_pixel_coverage(p.mean, p.std, t, pix, lv), mode="lines",
                                     line=dict(color=col, dash="dot"),
                                     name=tag + "Gaussian approximation (mean ± z·std)"))
            notes.append("dotted: Gaussian approximation per pixel (only percentiles are stored)")
            if raw is not None:
                kk = raw.shape[0]
                fig.add_trace(go.Scatter(x=lv, y=sample_pixel_coverage(raw, t[:kk], pix[:kk], lv),
                                         mode="lines", line=dict(color=col, width=1),
                                         name=tag + f"from draws of the first {kk} object(s)"))
        exact = [_coverage(p.q16, p.q84, t, pix), _coverage(p.q025, p.q975, t, pix)]
        fig.add_trace(go.Scatter(x=[0.68, 0.95], y=exact, mode="markers+text", marker=dict(size=11, color=col,
                                 symbol="diamond", line=dict(color="black", width=1)),
                                 text=[f"{v:.2f}" for v in exact], textposition="top left",
                                 name=tag + "68% / 95% from stored percentiles (exact)"))
    if notes:
        fig.add_annotation(text=notes[0], x=0.99, y=0.02, xref="paper", yref="paper", xanchor="right",
                           showarrow=False, font=dict(size=11, color="#555"))
    fig.update_layout(title=title, xaxis_title="nominal credible level", yaxis_title="fraction of pixels inside",
                      xaxis=dict(range=[0, 1]), yaxis=dict(range=[0, 1]), height=420, **_LAYOUT)
    return fig


def gaussian_pixel_coverage(mean: np.ndarray, std: np.ndarray, truth: np.ndarray, pixels: np.ndarray,
                            levels: np.ndarray) -> np.ndarray:
    """(L,) fraction of selected pixels with |truth - mean| <= z_{(1+l)/2} std (Gaussian central intervals)."""
    d = np.abs(np.asarray(truth, float) - np.asarray(mean, float))[pixels]
    s = np.asarray(std, float)[pixels]
    z = np.array([NormalDist().inv_cdf(0.5 + 0.5 * lv) for lv in np.asarray(levels, float)])
    return np.array([float(np.mean(d <= zz * s)) if d.size else np.nan for zz in z])


def sample_pixel_coverage(samples: np.ndarray, truth: np.ndarray, pixels: np.ndarray,
                          levels: np.ndarray) -> np.ndarray:
    """(L,) fraction of selected pixels whose truth lies in the central interval of the draws (K, S, H, W)."""
    lv = np.asarray(levels, float)
    s = np.asarray(samples, np.float32)
    if s.ndim != 4 or s.shape[0] != truth.shape[0] or s.shape[2:] != truth.shape[1:]:
        raise GPSError("posterior draws do not match the truth maps", source=_SRC, field="samples",
                       expected=f"({truth.shape[0]}, S, {truth.shape[1]}, {truth.shape[2]})", found=str(s.shape))
    q = np.quantile(s, np.concatenate([0.5 - 0.5 * lv, 0.5 + 0.5 * lv]), axis=1)     # (2L, K, H, W)
    t = np.asarray(truth, float)
    out = []
    for j in range(lv.size):
        inside = (t >= q[j]) & (t <= q[lv.size + j])
        out.append(float(inside[pixels].mean()) if pixels.any() else np.nan)
    return np.array(out)


def central_targets_figure(post: Any, data: Any, i: int, *, bins: int = 50,
                           title: str | None = None) -> go.Figure:
    """One panel per target of object ``i``: the 1-D posterior (histogram of draws, or the grid density), its
    16-84% interval shaded, the mean dashed and the truth (red) when ``data`` knows it.

    ``post``: :class:`core.inference.posterior.Posterior` with ``params`` = target names, samples (N, S, p);
    ``data``: the :class:`core.data.central_data.CentralMassData` it was computed from (or None).
    """
    n = post.n
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) < n:
        raise GPSError("object index out of range", source=_SRC, field="i", expected=f"an integer in [0, {n - 1}]",
                       found=repr(i))
    params = list(post.params)
    fig = make_subplots(rows=1, cols=len(params), subplot_titles=params, horizontal_spacing=0.07)
    mean, std = post.mean()[i], post.std()[i]
    q = post.quantiles([0.16, 0.84])[i]
    truth = _truths(data, params)
    for j, name in enumerate(params):
        c = j + 1
        if post.samples is not None:
            s = post.samples[i, :, j]
            fig.add_trace(go.Histogram(x=s[np.isfinite(s)], nbinsx=bins, histnorm="probability density",
                                       marker_color=_COLORS[0], opacity=0.65, name=f"{name} draws",
                                       showlegend=False), 1, c)
        else:
            fig.add_trace(go.Scatter(x=post.grid, y=post.pdf[i], mode="lines", line=dict(color=_COLORS[0]),
                                     name=f"{name} density", showlegend=False), 1, c)
        fig.add_vrect(x0=float(q[0, j]), x1=float(q[1, j]), fillcolor=_COLORS[0], opacity=0.12, line_width=0,
                      row=1, col=c)
        fig.add_vline(x=float(mean[j]), line=dict(color=_COLORS[0], dash="dash"), row=1, col=c)
        t = None if truth is None else truth[i, j]
        if t is not None and np.isfinite(t):
            fig.add_vline(x=float(t), line=dict(color=_RED, width=2), row=1, col=c)
        unit = post.units[j] if j < len(post.units) and post.units[j] else ""
        fig.layout.annotations[j].text = (f"{name}: {mean[j]:.3f} ± {std[j]:.3f}"
                                          + (f" (true {t:.3f})" if t is not None and np.isfinite(t) else ""))
        fig.update_xaxes(title_text=f"{name} [{unit}]" if unit else name, row=1, col=c)
    ids = getattr(data, "ids", None)
    oid = ids[i] if ids is not None and len(ids) == n else i
    fig.update_yaxes(title_text="probability density", row=1, col=1)
    fig.update_layout(title=title or f"Posterior of object {oid}: mean ± std, 16-84% shaded"
                      + (", truth in red" if truth is not None else ""), height=360, showlegend=False,
                      template="plotly_white", margin=dict(l=55, r=20, t=80, b=45))
    return fig


def pred_vs_true_grid_figure(post: Any, data: Any, *, max_points: int = 3000, seed: int = 0,
                             title: str = "Predicted vs true (median, 16-84%)") -> go.Figure:
    """One panel per target: posterior median against the truth with 16-84% error bars and the 1:1 line (the
    conventions of :func:`core.viz.residuals.pred_vs_true_figure`); panel titles give scatter and bias of the
    median residual. ``data`` must carry the truth of every posterior parameter (GPSError otherwise)."""
    params = list(post.params)
    truth = _truths(data, params)
    if truth is None or np.isnan(truth).all(axis=0).any():
        raise GPSError("no truth for the posterior's targets", source=getattr(data, "source", _SRC), field="y",
                       expected="targets " + ", ".join(params), found=", ".join(getattr(data, "targets", ())) or
                       "none")
    if truth.shape[0] != post.n:
        raise GPSError("posterior and data have different numbers of objects", source=_SRC, field="data",
                       expected=str(post.n), found=str(truth.shape[0]))
    q = post.quantiles([0.16, 0.5, 0.84])                                       # (N, 3, p)
    idx = np.arange(post.n)
    if idx.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    titles = []
    for j in range(len(params)):
        res = q[:, 1, j] - truth[:, j]
        res = res[np.isfinite(res)]
        titles.append(f"{params[j]}<br>scatter {np.std(res):.3f}, bias {np.mean(res):+.3f}" if res.size else params[j])
    fig = make_subplots(rows=1, cols=len(params), subplot_titles=titles, horizontal_spacing=0.07)
    for j, name in enumerate(params):
        t, lo, m, hi = truth[idx, j], q[idx, 0, j], q[idx, 1, j], q[idx, 2, j]
        ok = np.isfinite(t) & np.isfinite(m)
        t, lo, m, hi = t[ok], lo[ok], m[ok], hi[ok]
        fig.add_trace(go.Scatter(x=t, y=m, mode="markers", name="median, 16-84%", showlegend=j == 0,
                                 marker=dict(size=4, color=_COLORS[0], opacity=0.6),
                                 error_y=dict(type="data", symmetric=False, array=hi - m, arrayminus=m - lo,
                                              thickness=0.6, width=0, color="rgba(59,111,182,0.35)")), 1, j + 1)
        if t.size:
            a, b = float(min(t.min(), lo.min())), float(max(t.max(), hi.max()))
            fig.add_trace(go.Scatter(x=[a, b], y=[a, b], mode="lines", name="1:1", showlegend=j == 0,
                                     line=dict(color=_RED, dash="dash")), 1, j + 1)
        unit = post.units[j] if j < len(post.units) and post.units[j] else ""
        u = f" [{unit}]" if unit else ""
        fig.update_xaxes(title_text=f"true {name}{u}", row=1, col=j + 1)
        fig.update_yaxes(title_text=f"predicted {name}{u}", row=1, col=j + 1)
    fig.update_layout(title=title, height=420, **{**_LAYOUT, "legend": _SIDE_LEGEND})
    return fig


# ------------------------------------------------------------------------------------------------- helpers
def _as_mapping(post: Any) -> dict[str, Any]:
    if isinstance(post, Mapping):
        if not post:
            raise GPSError("no posterior given", source=_SRC, field="post", expected="MapPosterior", found="empty")
        return dict(post)
    if not hasattr(post, "mean") or not hasattr(post, "q16"):
        raise GPSError("not a map posterior", source=_SRC, field="post", expected="MapPosterior",
                       found=type(post).__name__)
    return {"": post}


def _truth_pixels(p: Any, truth: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(truth, float)
    pix = np.asarray(pixels, bool)
    shape = tuple(p.mean.shape)
    for nm, a in (("truth", t), ("pixels", pix)):
        if a.shape != shape:
            raise GPSError(f"{nm} shape does not match the posterior maps", source=_SRC, field=nm,
                           expected=str(shape), found=str(a.shape))
    return t, pix & np.isfinite(t)


def _coverage(lo: np.ndarray, hi: np.ndarray, t: np.ndarray, pix: np.ndarray) -> float:
    tt = t[pix]
    return float(np.mean((tt >= np.asarray(lo)[pix]) & (tt <= np.asarray(hi)[pix]))) if tt.size else float("nan")


def _truths(data: Any, params: list[str]) -> np.ndarray | None:
    """(N, p) truths of ``params`` from ``data`` (NaN for targets it lacks); None without any truth."""
    if data is None or getattr(data, "y", None) is None:
        return None
    names = list(getattr(data, "targets", ()))
    if not any(p in names for p in params):
        return None
    y = np.asarray(data.y, float)
    return np.column_stack([y[:, names.index(p)] if p in names else np.full(len(y), np.nan) for p in params])


def _gaps(v: Any) -> list[float | None]:
    return [float(x) if x is not None and np.isfinite(x) else None for x in np.asarray(v, float)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"
