"""The multi-target map view (data kind "multi_target_maps", e.g. central_mass): images and kinematic maps at their
own sizes in, several scalar targets out — per-target posteriors, "outside the training simulator" notes, scores per
target, summary-statistic importance and correlations."""

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
    from core.metrics.maps import target_object_summaries

    return target_object_summaries(post, prepared, spec.targets)


def _detail(spec, data, m, post, prepared, i: int, n_samples: int) -> None:
    from core.viz.maps_eval import central_targets_figure

    notes = post.info.get("domain_notes") or []
    if i < len(notes) and notes[i]:
        st.warning(f"Outside the training simulator: {notes[i]}")
    ui.show_figure(central_targets_figure(post, prepared, i), "posterior_targets")


def evaluation_page(spec, data, m, ev) -> None:
    common.evaluation_page(spec, data, m, ev, _show)


def _show(spec, m, res) -> None:
    from core.data.summary_stats import FEATURES
    from core.models.central_gbdt import statistics_table
    from core.viz.data import correlation_figure
    from core.viz.evaluation import importance_figure
    from core.viz.maps_eval import pred_vs_true_grid_figure

    post, data = res["post"], res["data"]
    rows = []
    for q in spec.targets:
        s = res["scores_by_target"].get(q.name)
        if s:
            rows.append(
                {
                    "target": q.label,
                    "unit": q.unit,
                    **{
                        k: v
                        for k, v in s.items()
                        if k in ("rmse", "bias", "mae", "r2", "coverage_68", "coverage_95", "pit_ks_p")
                    },
                }
            )
    st.dataframe(ui.rows_frame(rows), hide_index=True, key="central_scores")
    ui.show_figure(pred_vs_true_grid_figure(post, data), "pred_vs_true")
    st.subheader("Interpretability: summary statistics")
    imp, src = ui.on_engine(api.feature_importance, m), "the current model"
    if not imp:
        try:
            gb = ui.bundled_model(spec.name, _importance_model(spec))
            imp, src = ui.on_engine(api.feature_importance, gb), "the bundled LightGBM checkpoint"
        except Exception:  # noqa: BLE001 - no bundled model with importance: say so below
            imp = None
    if imp:
        t = st.selectbox("Target", list(imp), key="imp_target")
        ui.show_figure(
            importance_figure(imp[t], title=f"LightGBM gain importance for {t} ({src})"), "lightgbm_importance"
        )
    else:
        st.caption("LightGBM gain importance appears when a LightGBM model is current or bundled.")
    stats = ui.on_engine(statistics_table, data)
    cols = np.column_stack([stats, data.y])
    names = list(FEATURES) + list(data.targets)
    ui.show_figure(
        correlation_figure(cols, names, title="Pearson correlation of summary statistics and targets"), "correlation"
    )


def _importance_model(spec) -> str | None:
    return next((s.name for s in api.list_models(spec.name) if s.capabilities.feature_importance), None)


demo = common.demo


def demo_result(spec, g: dict) -> None:
    from core.viz.maps_eval import central_targets_figure

    common.demo_result(spec, g, central_targets_figure(g["post"], g["one"], 0))
