"""Map figures (plotly, no streamlit): input maps with masks, posterior f_ex maps, the three inference modes.

Every map panel is a ``go.Heatmap`` whose ``z`` is NaN on masked pixels (shown blank on a light-grey background,
so "no data" never reads as 0) with the mask boundary drawn as a black contour. Arrays follow the ``MapStack``
convention: ``z[y, x]`` with row 0 at the bottom. Axes are offsets from the galaxy centre in arcsec (or kpc for
``CentralMassData``) when the pixel size is known, else in pixels; panels have equal aspect. The evaluation
figures (pixel residuals, coverage, central_mass targets) live in :mod:`core.viz.maps_eval` and are re-exported.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.errors import GPSError
from core.viz.maps_eval import (central_targets_figure, pixel_coverage_figure, pixel_residual_figure,
                                pred_vs_true_grid_figure, residual_distribution_figure)

__all__ = ["input_maps_figure", "posterior_maps_figure", "modes_figure", "pixel_residual_figure",
           "residual_distribution_figure", "pixel_coverage_figure", "central_targets_figure",
           "pred_vs_true_grid_figure", "POSTERIOR_PANELS"]

#: default panels of :func:`posterior_maps_figure`
POSTERIOR_PANELS = ("mean", "std", "p_gt_0.5", "truth", "residual")
_SEQ = "Viridis"
_DIV = "RdBu_r"
_PROB = "Cividis"
_BG = "#e6e6e6"          # plot background = colour of masked (NaN) pixels
_SRC = "core.viz.maps"


def input_maps_figure(stack_or_arrays: Any, i: int, channels: Sequence[str] | None = None, *,
                      title: str | None = None, units: Mapping[str, str] | None = None,
                      masks: Mapping[str, np.ndarray] | None = None, pixel_scale: float | None = None,
                      max_cols: int = 4) -> go.Figure:
    """One panel per input channel of object ``i``, each with its own colour scale and colour bar.

    ``stack_or_arrays``: a :class:`core.data.maps.MapStack` (data (N, C, H, W), common grid, axes in arcsec
    from ``center_xy`` when ``pixel_scale_arcsec`` is finite), a :class:`core.data.central_data.CentralMassData`
    (maps of different sizes: every panel its own grid, axes in kpc from the map centre when ``pixel_kpc`` is
    finite), or a mapping name -> (N, H, W) or (H, W) array (non-finite pixels masked; optional ``masks``,
    ``units`` and ``pixel_scale`` [arcsec/pixel]). ``channels`` picks and orders the panels (default: all).
    Velocity channels use a diverging scale centred on 0; magnitudes (mu_r, image) are drawn with bright = light.
    """
    panels = _input_panels(stack_or_arrays, i, channels, units or {}, masks or {}, pixel_scale)
    fig, cells = _grid(len(panels), [f"{p['name']} [{p['unit']}]" if p["unit"] else p["name"] for p in panels],
                       max_cols)
    for p, (r, c) in zip(panels, cells):
        z = p["z"]
        kind = _channel_kind(p["name"], p["unit"])
        if kind == "velocity":
            lim = _sym_limit(z)
            style = dict(colorscale=_DIV, zmid=0.0, zmin=-lim, zmax=lim)
        else:
            lo, hi = _robust_range(z)
            style = dict(colorscale=_SEQ, zmin=lo, zmax=hi, reversescale=(kind == "magnitude"))
        _add_map(fig, r, c, z, p["mask"], p["scale"], p["center"], p["axis_unit"], style,
                 cbar_title=p["unit"], name=p["name"])
    fig.update_layout(title=title or f"Input maps of object {_obj_id(stack_or_arrays, i)}")
    return _finish(fig, len(cells), max_cols)


def posterior_maps_figure(post, i: int, *, panels: Sequence[str] = POSTERIOR_PANELS,
                          pixel_scale: float | None = None, title: str | None = None,
                          max_cols: int = 5) -> go.Figure:
    """Posterior summary maps of object ``i`` of a :class:`core.inference.posterior_maps.MapPosterior`.

    ``panels`` from: ``mean``, ``median``, ``std``, ``q2.5``, ``q16``, ``q84``, ``q97.5``, ``width_68``
    (q84 - q16), ``p_gt_<t>`` (P(target > t) for a stored threshold t), ``truth``, ``residual`` (mean - truth,
    diverging, symmetric range). f_ex-valued panels and probabilities have the fixed range [0, 1]; ``std`` and
    ``width_68`` start at 0. Input-masked pixels are blank (NaN). ``truth``/``residual`` are left out (and the
    title says so) when the posterior has no truth; an unknown panel name is a GPSError. ``pixel_scale``
    [arcsec/pixel] gives axes in arcsec from the centre, else pixels.
    """
    _check_index(post.n, i, "post")
    avail = post.summary_maps(i)
    avail["width_68"] = post.q84[i] - post.q16[i]
    if post.truth is not None:
        avail["truth"] = post.truth[i]
    known = set(avail) | {"truth", "residual"}
    bad = [p for p in panels if p not in known]
    if bad:
        stored = ", ".join(f"p_gt_{t:g}" for t in post.thresholds)
        raise GPSError("unknown posterior map panel", source=_SRC, field="panels",
                       expected=f"mean, median, std, q2.5, q16, q84, q97.5, width_68, truth, residual, {stored}",
                       found=", ".join(bad))
    use = [p for p in panels if p in avail]
    if not use:
        raise GPSError("no panel to draw", source=_SRC, field="panels", expected="at least one available panel",
                       found=", ".join(panels) or "none")
    mask = np.asarray(post.mask[i], dtype=bool)
    is_frac = _is_fraction(post)
    unit = f" [{post.unit}]" if post.unit else ""
    fig, cells = _grid(len(use), [_panel_title(p, post.target, unit) for p in use], max_cols)
    center = ((mask.shape[1] - 1) / 2.0, (mask.shape[0] - 1) / 2.0)
    scale, axis_unit = _scale(pixel_scale, "arcsec")
    for p, (r, c) in zip(use, cells):
        z = np.where(mask, np.nan, np.asarray(avail[p], dtype=float))
        style = _panel_style(p, z, is_frac)
        _add_map(fig, r, c, z, mask, scale, center, axis_unit, style, cbar_title=_cbar_title(p, post.unit), name=p)
    missing = [p for p in panels if p not in avail]
    head = title or f"Posterior {post.target} maps of object {post.ids[i]}" + (f" ({post.method})" if post.method
                                                                               else "")
    if missing:
        head += f" — no truth, so no {' / '.join(missing)} panel"
    fig.update_layout(title=head)
    return _finish(fig, len(cells), max_cols)


def modes_figure(posts: Mapping[str, Any], i: int, truth: np.ndarray | None = None, *,
                 pixel_scale: float | None = None, title: str | None = None) -> go.Figure:
    """Inference modes side by side: one column per entry of ``posts`` (name -> MapPosterior, e.g. flow /
    prior / reconstruction), posterior mean (top row) and std (bottom row) of object ``i``; a last column shows
    the truth when ``truth`` ((H, W) or (N, H, W)) is given or the posteriors carry it. Each row shares one
    colour scale: the mean (and truth) [0, 1] for fractions, the std from 0 to the largest std of the modes."""
    if not posts:
        raise GPSError("no posterior to compare", source=_SRC, field="posts", expected="name -> MapPosterior",
                       found="empty")
    names = list(posts)
    first = posts[names[0]]
    for name in names:
        _check_index(posts[name].n, i, f"posts[{name}]")
        if posts[name].shape != first.shape:
            raise GPSError("the modes' maps have different shapes", source=_SRC, field=f"posts[{name}]",
                           expected=str(first.shape), found=str(posts[name].shape))
    t = _truth_map(truth, first, i)
    ncol = len(names) + (t is not None)
    titles = [f"{n}: mean" for n in names] + (["truth"] if t is not None else []) + \
             [f"{n}: std" for n in names] + ([""] if t is not None else [])
    fig = make_subplots(rows=2, cols=ncol, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.1)
    mask = np.asarray(first.mask[i], dtype=bool)
    center = ((mask.shape[1] - 1) / 2.0, (mask.shape[0] - 1) / 2.0)
    scale, axis_unit = _scale(pixel_scale, "arcsec")
    means = {n: np.where(posts[n].mask[i], np.nan, posts[n].mean[i]).astype(float) for n in names}
    stds = {n: np.where(posts[n].mask[i], np.nan, posts[n].std[i]).astype(float) for n in names}
    frac = _is_fraction(first)
    lo, hi = (0.0, 1.0) if frac else _robust_range(np.stack(list(means.values()) + ([t] if t is not None else [])))
    smax = max(_robust_range(np.stack(list(stds.values())))[1], 1e-6)
    last = len(names) - 1
    for k, n in enumerate(names):
        m = np.asarray(posts[n].mask[i], bool)
        _add_map(fig, 1, k + 1, means[n], m, scale, center, axis_unit, dict(colorscale=_SEQ, zmin=lo, zmax=hi),
                 cbar_title=first.unit or "mean", name=f"{n} mean", colorbar=(k == last and t is None),
                 xtitle=False)
        _add_map(fig, 2, k + 1, stds[n], m, scale, center, axis_unit,
                 dict(colorscale="Magma", zmin=0.0, zmax=smax), cbar_title="std", name=f"{n} std",
                 colorbar=(k == last))
    if t is not None:
        _add_map(fig, 1, ncol, np.where(mask, np.nan, t), mask, scale, center, axis_unit,
                 dict(colorscale=_SEQ, zmin=lo, zmax=hi), cbar_title=first.unit or "mean", name="truth",
                 xtitle=False)
    fig.update_layout(title=title or f"Inference modes for object {first.ids[i]} ({first.target})")
    fig = _finish(fig, 2 * ncol, ncol)
    fig.update_layout(height=620, width=None)
    return fig


# ------------------------------------------------------------------------------------------------- helpers
def _input_panels(src: Any, i: int, channels: Sequence[str] | None, units: Mapping[str, str],
                  masks: Mapping[str, np.ndarray], pixel_scale: float | None) -> list[dict[str, Any]]:
    """Normalize a MapStack / CentralMassData / mapping into panels {name, z (H, W) NaN-masked, mask, unit,
    scale, center (x, y), axis_unit}."""
    out = []
    if hasattr(src, "maps") and hasattr(src, "masks"):                         # CentralMassData
        names = _pick(list(src.maps), channels, getattr(src, "source", "central_mass data"))
        _check_index(len(src), i, "data")
        for k in names:
            z = np.asarray(src.maps[k][i], dtype=float)
            m = np.asarray(src.masks[k][i], dtype=bool) | ~np.isfinite(z)
            scale, ax = _scale(np.asarray(src.pixel_kpc[k])[i], "kpc")
            out.append(dict(name=k, z=np.where(m, np.nan, z), mask=m, unit=src.units.get(k, ""), scale=scale,
                            center=((z.shape[1] - 1) / 2.0, (z.shape[0] - 1) / 2.0), axis_unit=ax))
    elif hasattr(src, "data") and hasattr(src, "channels"):                     # MapStack
        names = _pick(list(src.channels), channels, getattr(src, "source", "map stack"))
        _check_index(len(src), i, "stack")
        scale, ax = _scale(np.asarray(src.pixel_scale_arcsec).ravel()[i], "arcsec")
        for k in names:
            z = np.asarray(src.channel(k)[i], dtype=float)
            m = np.asarray(src.mask[i], dtype=bool) | ~np.isfinite(z)
            out.append(dict(name=k, z=np.where(m, np.nan, z), mask=m, unit=src.unit(k), scale=scale,
                            center=tuple(np.asarray(src.center_xy)[i]), axis_unit=ax))
    elif isinstance(src, Mapping):
        if not src:
            raise GPSError("no input maps", source=_SRC, field="stack_or_arrays", expected="name -> (N, H, W)",
                           found="empty mapping")
        names = _pick(list(src), channels, "input arrays")
        scale, ax = _scale(pixel_scale, "arcsec")
        for k in names:
            a = np.asarray(src[k], dtype=float)
            if a.ndim == 2:
                a = a[None]
            if a.ndim != 3:
                raise GPSError("an input map must be (N, H, W) or (H, W)", source=_SRC, field=k,
                               expected="(N, H, W)", found=str(a.shape))
            _check_index(a.shape[0], i, k)
            z = a[i]
            m = ~np.isfinite(z)
            if k in masks:
                mk = np.asarray(masks[k], dtype=bool)
                mk = mk[i] if mk.ndim == 3 else mk
                if mk.shape != z.shape:
                    raise GPSError("mask shape does not match the map", source=_SRC, field=f"masks/{k}",
                                   expected=str(z.shape), found=str(mk.shape))
                m |= mk
            out.append(dict(name=k, z=np.where(m, np.nan, z), mask=m, unit=units.get(k, ""), scale=scale,
                            center=((z.shape[1] - 1) / 2.0, (z.shape[0] - 1) / 2.0), axis_unit=ax))
    else:
        raise GPSError("cannot draw input maps from this object", source=_SRC, field="stack_or_arrays",
                       expected="MapStack, CentralMassData or name -> array mapping", found=type(src).__name__)
    return out


def _pick(present: list[str], channels: Sequence[str] | None, source: str) -> list[str]:
    if channels is None:
        return present
    missing = [c for c in channels if c not in present]
    if missing or not channels:
        raise GPSError("channel(s) not in the data", source=source, field=", ".join(missing) or "channels",
                       expected="some of " + ", ".join(present), found=", ".join(channels) or "none")
    return list(channels)


def _check_index(n: int, i: Any, what: str) -> None:
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) < n:
        raise GPSError("object index out of range", source=_SRC, field=f"{what} index",
                       expected=f"an integer in [0, {n - 1}]", found=repr(i))


def _obj_id(src: Any, i: int) -> str:
    ids = getattr(src, "ids", None)
    return str(ids[i]) if ids is not None and 0 <= i < len(ids) else str(i)


def _scale(pix: Any, unit: str) -> tuple[float, str]:
    """(size of one pixel, axis unit): the given unit when the pixel size is finite and positive, else pixels."""
    try:
        v = float(pix)
    except (TypeError, ValueError):
        v = float("nan")
    return (v, unit) if np.isfinite(v) and v > 0 else (1.0, "pixel")


def _channel_kind(name: str, unit: str) -> str:
    n = name.lower()
    if ("vel" in n or n in ("v", "v_los", "vlos")) and "disp" not in n:
        return "velocity"
    if "mag" in unit.lower() and "/" in unit or n in ("image", "mu_r"):
        return "magnitude"
    return "sequential"


def _robust_range(z: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> tuple[float, float]:
    v = np.asarray(z, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(v, [lo_pct, hi_pct]))
    if hi <= lo:
        lo, hi = lo - 0.5 * max(abs(lo), 1e-3), hi + 0.5 * max(abs(hi), 1e-3)
    return lo, hi


def _sym_limit(z: np.ndarray, pct: float = 99.0, floor: float = 1e-6) -> float:
    v = np.abs(np.asarray(z, dtype=float))
    v = v[np.isfinite(v)]
    return max(float(np.percentile(v, pct)) if v.size else 1.0, floor)


def _is_fraction(post) -> bool:
    return str(post.target).startswith("f_") or "fraction" in str(post.target).lower()


def _panel_title(p: str, target: str, unit: str) -> str:
    if p.startswith("p_gt_"):
        return f"P({target} > {p[5:]})"
    return {"mean": f"posterior mean{unit}", "median": f"posterior median{unit}", "std": f"posterior std{unit}",
            "width_68": f"68% interval width{unit}", "truth": f"true {target}{unit}",
            "residual": f"residual (mean - truth){unit}"}.get(p, f"{p} percentile{unit}")


def _cbar_title(p: str, unit: str) -> str:
    return "P" if p.startswith("p_gt_") else (unit or "")


def _panel_style(p: str, z: np.ndarray, is_frac: bool) -> dict[str, Any]:
    if p.startswith("p_gt_"):
        return dict(colorscale=_PROB, zmin=0.0, zmax=1.0)
    if p == "residual":
        lim = _sym_limit(z, floor=0.05 if is_frac else 1e-6)
        return dict(colorscale=_DIV, zmid=0.0, zmin=-lim, zmax=lim)
    if p in ("std", "width_68"):
        return dict(colorscale="Magma", zmin=0.0, zmax=max(_robust_range(z)[1], 1e-6))
    if is_frac:
        return dict(colorscale=_SEQ, zmin=0.0, zmax=1.0)
    lo, hi = _robust_range(z)
    return dict(colorscale=_SEQ, zmin=lo, zmax=hi)


def _truth_map(truth: np.ndarray | None, post, i: int) -> np.ndarray | None:
    if truth is None:
        return None if post.truth is None else np.asarray(post.truth[i], dtype=float)
    t = np.asarray(truth, dtype=float)
    t = t[i] if t.ndim == 3 else t
    if t.shape != post.shape:
        raise GPSError("truth map shape does not match the posterior maps", source=_SRC, field="truth",
                       expected=str(post.shape), found=str(t.shape))
    return t


def _grid(n: int, titles: list[str], max_cols: int) -> tuple[go.Figure, list[tuple[int, int]]]:
    cols = max(1, min(n, max_cols))
    rows = int(np.ceil(n / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.09,
                        vertical_spacing=0.16 if rows > 1 else 0.1)
    return fig, [(k // cols + 1, k % cols + 1) for k in range(n)]


def _add_map(fig: go.Figure, r: int, c: int, z: np.ndarray, mask: np.ndarray, scale: float,
             center: tuple[float, float], axis_unit: str, style: dict[str, Any], *, cbar_title: str, name: str,
             colorbar: bool = True, xtitle: bool = True) -> None:
    """Heatmap of ``z`` (H, W) (NaN = blank) in subplot (r, c), a mask contour and a colour bar beside it."""
    h, w = z.shape
    x = (np.arange(w) - center[0]) * scale
    y = (np.arange(h) - center[1]) * scale
    sp = fig.get_subplot(r, c)
    xd, yd = sp.xaxis.domain, sp.yaxis.domain
    cb = dict(title=dict(text=cbar_title, side="right"), thickness=10, len=0.9 * (yd[1] - yd[0]),
              y=(yd[0] + yd[1]) / 2, yanchor="middle", x=xd[1] + 0.005, xanchor="left", outlinewidth=0)
    fig.add_trace(go.Heatmap(z=z, x=x, y=y, name=name, colorbar=cb, showscale=colorbar, hoverongaps=False,
                             hovertemplate=f"x=%{{x:.3g}}, y=%{{y:.3g}}<br>{name}=%{{z:.4g}}<extra></extra>",
                             **style), r, c)
    if mask.any() and not mask.all():
        fig.add_trace(go.Contour(z=mask.astype(float), x=x, y=y, showscale=False, hoverinfo="skip",
                                 contours=dict(start=0.5, end=0.5, size=1.0, coloring="none"),
                                 line=dict(color="black", width=1), name=f"{name} mask", showlegend=False), r, c)
    elif mask.all():
        fig.add_annotation(text="no data", x=0.5, y=0.5, showarrow=False, xref=f"{sp.yaxis.anchor} domain",
                           yref=f"{sp.xaxis.anchor} domain")
    lab = "pixel" if axis_unit == "pixel" else axis_unit
    fig.update_xaxes(title_text=f"Δx [{lab}]" if xtitle else None, constrain="domain", showgrid=False,
                     zeroline=False, row=r, col=c)
    fig.update_yaxes(title_text=f"Δy [{lab}]" if c == 1 else None, scaleanchor=sp.yaxis.anchor, scaleratio=1,
                     constrain="domain", showgrid=False, zeroline=False, row=r, col=c)


def _finish(fig: go.Figure, n: int, max_cols: int) -> go.Figure:
    rows = int(np.ceil(n / max(1, min(n, max_cols))))
    fig.update_layout(template="plotly_white", plot_bgcolor=_BG, height=300 * rows + 90,
                      margin=dict(l=50, r=60, t=80, b=40), showlegend=False)
    return fig
