"""The map view (data kind "maps", e.g. exsitu_map): one posterior target map per object — posterior maps beside
the input maps, inference modes, per-pixel residuals and coverage on galaxy pixels."""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_ui as ui
from app_ui.views import maps_common as common
from core import api

NOUN = "set of maps"
data_page = common.data_page


def posterior_page(spec, data, m) -> None:
    common.posterior_page(spec, data, m, table=_table, detail=_detail)


def _table(spec, post, prepared) -> dict:
    from core.metrics.maps import map_object_summaries

    return map_object_summaries(post)


def _detail(spec, data, m, post, prepared, i: int, n_samples: int) -> None:
    from core.viz.maps import posterior_maps_figure

    ui.show_figure(posterior_maps_figure(post, i, pixel_scale=float(prepared.pixel_scale_arcsec[i])), "posterior_maps")
    if data.has_truth and api.capabilities(m).modes:
        common.modes_section(m, prepared, i, n_samples)


def evaluation_page(spec, data, m, ev) -> None:
    common.evaluation_page(spec, data, m, ev, _show)


def _show(spec, m, res) -> None:
    from core.viz.maps_eval import pixel_coverage_figure, pixel_residual_figure, residual_distribution_figure

    sc = res["scores"]
    cols = st.columns(5)
    for c, (k, label) in zip(
        cols,
        [
            ("mae_pixel", "MAE per pixel"),
            ("bias_pixel", "bias"),
            ("coverage_68_pixel", "68% coverage"),
            ("coverage_95_pixel", "95% coverage"),
            ("n_pixels", "galaxy pixels"),
        ],
    ):
        c.metric(label, f"{sc[k]:.3f}" if isinstance(sc[k], float) else f"{sc[k]:,}")
    st.caption(
        "Scores over galaxy pixels only (unmasked input, intrinsic galaxy pixel); the seed reports a mean "
        "absolute residual of about 0.10."
    )
    post, data = res["post"], res["data"]
    truth = np.asarray(data.targets[post.target], np.float32)
    c1, c2 = st.columns(2)
    with c1:
        ui.show_figure(pixel_residual_figure(res["per_bin"]), "residual_vs_fex")
    with c2:
        ui.show_figure(residual_distribution_figure(post, truth, res["pixels"]), "residual_distribution")
    ui.show_figure(pixel_coverage_figure(post, truth, res["pixels"]), "pixel_coverage")


demo = common.demo


def demo_result(spec, g: dict) -> None:
    from core.viz.maps import posterior_maps_figure

    fig = posterior_maps_figure(g["post"], 0, pixel_scale=float(g["one"].pixel_scale_arcsec[0]))
    common.demo_result(spec, g, fig)
