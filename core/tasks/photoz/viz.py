"""photoz figures as pure functions returning plotly figures (no streamlit; tests call them without a browser).

``pz_figure`` (p(z) of one galaxy, exact overlay, truth line), ``z_age_contours`` (joint posterior draws),
``colour_colour`` and ``colour_redshift`` (data views), ``zphot_zspec`` (with the |dz| = 0.15 (1+z) outlier lines),
``pit_histogram`` (with the uniform level and its 2-sigma band).
"""

from __future__ import annotations

import numpy as np

__all__ = ["pz_figure", "z_age_contours", "colour_colour", "colour_redshift", "zphot_zspec", "pit_histogram"]


def pz_figure(
    grid: np.ndarray,
    pdf: np.ndarray,
    *,
    exact_pdf: np.ndarray | None = None,
    exact_grid=None,
    z_true: float | None = None,
    n_peaks: int | None = None,
    title: str = "p(z)",
):
    """One galaxy's p(z) on ``grid``; the exact p(z) dashed when given; the true / spectroscopic z as a line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.asarray(grid), y=np.asarray(pdf), mode="lines", name="model", fill="tozeroy"))
    if exact_pdf is not None:
        fig.add_trace(
            go.Scatter(
                x=np.asarray(grid if exact_grid is None else exact_grid),
                y=np.asarray(exact_pdf),
                mode="lines",
                name="exact",
                line={"dash": "dash", "color": "black"},
            )
        )
    if z_true is not None and np.isfinite(z_true):
        fig.add_vline(x=float(z_true), line={"color": "red"}, annotation_text="z true")
    if n_peaks is not None and n_peaks > 1:
        title += f" — multi-modal ({n_peaks} peaks)"
    fig.update_layout(title=title, xaxis_title="z", yaxis_title="p(z)", template="plotly_white")
    return fig


def z_age_contours(
    z: np.ndarray,
    age: np.ndarray,
    *,
    truth: tuple[float, float] | None = None,
    title: str = "joint posterior: z and age",
):
    """Contours of posterior draws of (z, age [Gyr]) for one galaxy (age on a log axis)."""
    import plotly.graph_objects as go

    la = np.log10(np.asarray(age, float))
    fig = go.Figure(
        go.Histogram2dContour(
            x=np.asarray(z),
            y=la,
            colorscale="Blues",
            ncontours=8,
            contours={"coloring": "fill"},
            showscale=False,
            name="posterior",
        )
    )
    if truth is not None:
        fig.add_trace(
            go.Scatter(
                x=[truth[0]],
                y=[np.log10(truth[1])],
                mode="markers",
                name="truth",
                marker={"symbol": "x", "size": 12, "color": "red"},
            )
        )
    fig.update_layout(title=title, xaxis_title="z", yaxis_title="log10 age [Gyr]", template="plotly_white")
    return fig


def colour_colour(
    mags: dict[str, np.ndarray],
    x: tuple[str, str] = ("g", "r"),
    y: tuple[str, str] = ("r", "i"),
    color: np.ndarray | None = None,
    color_label: str = "z",
    max_points: int = 20000,
):
    """Colour-colour scatter from band magnitudes ``mags`` {band: (n,)}, coloured by e.g. redshift."""
    import plotly.graph_objects as go

    cx = np.asarray(mags[x[0]]) - np.asarray(mags[x[1]])
    cy = np.asarray(mags[y[0]]) - np.asarray(mags[y[1]])
    sel = _thin(len(cx), max_points)
    marker = {"size": 3}
    if color is not None:
        marker.update(color=np.asarray(color)[sel], colorscale="Viridis", colorbar={"title": color_label})
    fig = go.Figure(go.Scattergl(x=cx[sel], y=cy[sel], mode="markers", marker=marker, name="galaxies"))
    fig.update_layout(xaxis_title=f"{x[0]} - {x[1]}", yaxis_title=f"{y[0]} - {y[1]}", template="plotly_white")
    return fig


def colour_redshift(
    mags: dict[str, np.ndarray], z: np.ndarray, colour: tuple[str, str] = ("g", "r"), max_points: int = 20000
):
    """Colour against redshift (the 4000 A break moving through the bands)."""
    import plotly.graph_objects as go

    c = np.asarray(mags[colour[0]]) - np.asarray(mags[colour[1]])
    sel = _thin(len(c), max_points)
    fig = go.Figure(go.Scattergl(x=np.asarray(z)[sel], y=c[sel], mode="markers", marker={"size": 3}))
    fig.update_layout(xaxis_title="z", yaxis_title=f"{colour[0]} - {colour[1]}", template="plotly_white")
    return fig


def zphot_zspec(
    z_phot: np.ndarray,
    z_spec: np.ndarray,
    *,
    err_lo: np.ndarray | None = None,
    err_hi: np.ndarray | None = None,
    threshold: float = 0.15,
    max_points: int = 20000,
):
    """z_phot vs z_spec with the 1:1 line and the |dz| = threshold (1 + z) outlier lines."""
    import plotly.graph_objects as go

    zp, zs = np.asarray(z_phot, float), np.asarray(z_spec, float)
    sel = _thin(len(zp), max_points)
    err = None
    if err_lo is not None and err_hi is not None:
        err = {
            "type": "data",
            "symmetric": False,
            "array": (np.asarray(err_hi) - zp)[sel],
            "arrayminus": (zp - np.asarray(err_lo))[sel],
            "thickness": 0.5,
            "width": 0,
        }
    top = float(np.nanmax(np.concatenate([zp, zs]))) * 1.05 if len(zp) else 1.0
    line = np.linspace(0, top, 50)
    fig = go.Figure(
        go.Scattergl(x=zs[sel], y=zp[sel], mode="markers", marker={"size": 3}, error_y=err, name="galaxies")
    )
    fig.add_trace(go.Scatter(x=line, y=line, mode="lines", name="1:1", line={"color": "black"}))
    for sgn in (1, -1):
        fig.add_trace(
            go.Scatter(
                x=line,
                y=line + sgn * threshold * (1 + line),
                mode="lines",
                name=f"|dz| = {threshold} (1+z)",
                line={"dash": "dot", "color": "red"},
                showlegend=sgn == 1,
            )
        )
    fig.update_layout(
        xaxis_title="z_spec",
        yaxis_title="z_phot (median)",
        template="plotly_white",
        xaxis_range=[0, top],
        yaxis_range=[0, top],
    )
    return fig


def pit_histogram(pit_values: np.ndarray, bins: int = 20, title: str = "PIT"):
    """PIT histogram (density) with the uniform level 1 and the +-2 sigma Poisson band."""
    import plotly.graph_objects as go

    u = np.asarray(pit_values, float)
    u = u[np.isfinite(u)]
    counts, edges = np.histogram(u, bins=bins, range=(0, 1))
    n = max(len(u), 1)
    dens = counts * bins / n
    band = 2 * np.sqrt(n / bins) * bins / n
    fig = go.Figure(go.Bar(x=0.5 * (edges[1:] + edges[:-1]), y=dens, width=1 / bins, name="PIT"))
    fig.add_hline(y=1.0, line={"color": "black"})
    for y in (1 - band, 1 + band):
        fig.add_hline(y=y, line={"dash": "dot", "color": "grey"})
    fig.update_layout(title=title, xaxis_title="PIT", yaxis_title="density", template="plotly_white", bargap=0.02)
    return fig


def _thin(n: int, k: int) -> np.ndarray:
    return np.arange(n) if n <= k else np.linspace(0, n - 1, k).astype(int)
