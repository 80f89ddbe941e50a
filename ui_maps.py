"""Streamlit views of the map tasks (``exsitu_map``, ``central_mass``) that the pages call for ``data_kind == "maps"``.

Thin like the pages: data and posteriors come from :mod:`core.api`, figures from :mod:`core.viz.maps`; what is kept
per browser tab lives in ``st.session_state`` through :mod:`ui`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

import ui
from core import api

MAP_TYPES = ["fits", "fit", "gz", "fz", "h5", "hdf5", "csv"]


def is_maps(spec) -> bool:
    return spec.data_kind == "maps"


def is_exsitu(spec) -> bool:
    return spec.target_names == ("f_ex",)


# --------------------------------------------------------------------------------------------------- data
def data_page(spec) -> None:
    from core.data.task_data import task_data

    td = task_data(spec.name)
    up_tab, sim_tab = st.tabs(["Upload map files", "Simulate maps"])
    with up_tab:
        f = st.file_uploader(f"Map file: {td.file_kinds}", type=MAP_TYPES, key="map_upload")
        if f is not None:
            raw = f.getvalue()
            digest = hashlib.sha256(raw).hexdigest()[:16]
            if ui.ss().get("map_digest") != digest:
                ui.ss()["map_digest"] = digest
                ui.set_data(ui.on_engine(api.read_data, raw, spec.name, filename=f.name), f.name)
                st.rerun()
    with sim_tab:
        ui.simulate_tab(spec, "mapsim", "Number of galaxies (3 projections each)", 100, 20_000, 50)

    data = ui.data()
    if data is None:
        st.info("No maps yet: upload a file, simulate a set, or use **Load demo** on the Home page.")
        return
    st.subheader(f"Current data: {ui.ss().get('data_label')}")
    c1, c2, c3 = st.columns(3)
    c1.metric("objects", f"{len(data):,}")
    c2.metric("inputs", ", ".join(data.features))
    c3.metric("truth", "yes" if data.has_truth else "no")
    for note in data.meta.get("notes", []):
        (st.warning if "WARNING" in note or "outside" in note else st.caption)(note)
    st.dataframe(ui.rows_frame(data.summary()), hide_index=True, key="map_summary")
    i = pick_object(data, "data_obj")
    show_inputs(data, i, "data_inputs")


def pick_object(data, key: str) -> int:
    """A searchable object picker (by id); returns the row index."""
    ids = [str(v) for v in data.ids]
    if len(ids) == 1:
        return 0
    return int(st.selectbox("Object", range(len(ids)), key=key, format_func=lambda r: f"id {ids[r]}"))


def show_inputs(data, i: int, name: str) -> None:
    from core.viz.maps import input_maps_figure

    ui.show_figure(input_maps_figure(data, i, title=f"Input maps of object {data.ids[i]} (masked pixels blank)"),
                   name)


# --------------------------------------------------------------------------------------------------- posterior
def _posterior_job(key: str, m, data, n_samples: int, mode: str | None) -> None:
    opts = {"mode": mode} if mode else {}

    def work(j):
        prepared = api.prepare(m, data)
        return api.posterior(m, prepared, n_samples=n_samples, seed=0, progress=j.progress, **opts), prepared, key

    ui.start_job("post", f"Posteriors of {len(data):,} objects ({m.name}{', ' + mode if mode else ''})", work)


def posterior_page(spec, data, m) -> None:
    """Per-object posterior summaries (table), then the chosen object's inputs and posterior (maps or targets)."""
    c1, c2 = st.columns(2)
    n_samples = c1.select_slider("Posterior draws per object", [20, 50, 100, 200], 50, key="map_n_samples")
    mode = None
    if is_exsitu(spec):
        modes = ["flow", "prior"] + (["reconstruction"] if data.has_truth else [])
        mode = c2.radio("Inference mode", modes, horizontal=True, key="map_mode",
                        help="flow: amortized posterior (default); prior: latent from N(0, I); reconstruction: "
                             "encoder on the true map (a lower bound, needs the truth)") if m.name != "mean_map" else None
    key = ui.results_key() + (n_samples, mode)
    done = ui.take_result("post")
    if done is not None:
        if done.error:
            ui.ss()["post_key"], ui.ss()["post_error"] = key, (key, done.error)
        else:
            post, prepared, k = done.result
            ui.ss()["post"], ui.ss()["post_data"], ui.ss()["post_key"] = post, prepared, k
    if ui.ss().get("post_key") != key and not ui.running("post"):
        _posterior_job(key, m, data, n_samples, mode)
    if ui.running("post"):
        ui.job_panel("post", stoppable=False)
    err = ui.ss().get("post_error")
    if err is not None and err[0] == key:      # stays on screen until the data, model or settings change
        st.error(f"Posterior failed: {err[1]}", icon=":material/error:")
        return
    post = ui.ss().get("post") if ui.ss().get("post_key") == key else None
    if post is None:
        return
    prepared = ui.ss()["post_data"]
    for note in prepared.meta.get("notes", [])[-1:]:
        st.caption(note)
    st.dataframe(ui.frame(object_table(spec, post, prepared)), hide_index=True, key="map_post_table",
                 height=min(240, 35 * (post.n if hasattr(post, "p_exceed") else len(prepared)) + 40))
    i = pick_object(prepared, "post_obj")
    if is_exsitu(spec):
        from core.viz.maps import posterior_maps_figure

        show_inputs(prepared, i, "posterior_inputs")
        ui.show_figure(posterior_maps_figure(post, i, pixel_scale=float(prepared.pixel_scale_arcsec[i])),
                       "posterior_maps")
        if data.has_truth and m.name != "mean_map":
            _modes_section(m, prepared, i, n_samples)
    else:
        from core.viz.maps_eval import central_targets_figure

        notes = post.info.get("domain_notes") or []
        if i < len(notes) and notes[i]:
            st.warning(f"Outside the training simulator: {notes[i]}")
        show_inputs(prepared, i, "posterior_inputs")
        ui.show_figure(central_targets_figure(post, prepared, i), "posterior_targets")


def object_table(spec, post, data) -> dict[str, np.ndarray]:
    """Columns of the per-object summary table (display only: means over unmasked pixels / per-target quantiles)."""
    cols: dict[str, np.ndarray] = {"row": np.arange(len(data)), "id": np.asarray([str(v) for v in data.ids])}
    if is_exsitu(spec):
        valid = ~post.mask
        area = np.maximum(valid.sum(axis=(1, 2)), 1)
        cols["mean f_ex (posterior mean, unmasked)"] = np.where(valid, post.mean, 0).sum(axis=(1, 2)) / area
        cols["mean posterior std"] = np.where(valid, post.std, 0).sum(axis=(1, 2)) / area
        cols["unmasked pixels"] = valid.sum(axis=(1, 2))
        res = post.residual
        if res is not None:
            cols["mean |residual|"] = np.nanmean(np.abs(np.where(valid, res, np.nan)).reshape(len(res), -1), axis=1)
        return cols
    s = post.summaries()
    for j, q in enumerate(spec.targets):
        for stat in ("median", "p16", "p84"):
            cols[f"{q.name}_{stat}"] = s[f"{q.name}_{stat}"]
        if data.has_truth and q.name in data.targets:
            cols[f"{q.name} (truth)"] = data.y[:, data.targets.index(q.name)]
    return cols


def _modes_section(m, prepared, i: int, n_samples: int) -> None:
    from core.viz.maps import modes_figure

    if st.button("Compare the three inference modes for this object", key="modes_btn"):
        one = prepared.subset([i])
        posts = {mode: ui.on_engine(api.posterior, m, one, n_samples=n_samples, seed=0, mode=mode)
                 for mode in ("flow", "prior", "reconstruction")}
        ui.ss()["modes"] = (ui.results_key(), prepared.ids[i], posts)
    got = ui.ss().get("modes")
    if got is not None and got[0] == ui.results_key() and got[1] == prepared.ids[i]:
        ui.show_figure(modes_figure(got[2], 0), "inference_modes")


# --------------------------------------------------------------------------------------------------- evaluation
def evaluation_page(spec, data, m, ev) -> None:
    key = ui.results_key()

    def work(j):
        prepared = api.prepare(m, ev)
        post = api.posterior(m, prepared, n_samples=100 if is_exsitu(spec) else 1000, seed=0, progress=j.progress)
        return {"key": key, "post": post, "data": prepared, **api.evaluate(post, prepared)}

    res = ui.keyed_job("eval", key, f"Scoring {m.name} on {len(ev):,} objects", work)
    if res is not None:
        (_exsitu_evaluation if is_exsitu(spec) else _central_evaluation)(spec, m, res)


def _exsitu_evaluation(spec, m, res) -> None:
    from core.viz.maps_eval import pixel_coverage_figure, pixel_residual_figure, residual_distribution_figure

    sc = res["scores"]
    cols = st.columns(5)
    for c, (k, label) in zip(cols, [("mae_pixel", "MAE per pixel"), ("bias_pixel", "bias"),
                                    ("coverage_68_pixel", "68% coverage"), ("coverage_95_pixel", "95% coverage"),
                                    ("n_pixels", "galaxy pixels")]):
        c.metric(label, f"{sc[k]:.3f}" if isinstance(sc[k], float) else f"{sc[k]:,}")
    st.caption("Scores over galaxy pixels only (unmasked input, intrinsic galaxy pixel); the seed reports a mean "
               "absolute residual of about 0.10.")
    post, data = res["post"], res["data"]
    truth = np.asarray(data.targets["f_ex"], np.float32)
    c1, c2 = st.columns(2)
    with c1:
        ui.show_figure(pixel_residual_figure(res["per_bin"]), "residual_vs_fex")
    with c2:
        ui.show_figure(residual_distribution_figure(post, truth, res["pixels"]), "residual_distribution")
    ui.show_figure(pixel_coverage_figure(post, truth, res["pixels"]), "pixel_coverage")


def _central_evaluation(spec, m, res) -> None:
    from core.models.central_gbdt import statistics_table
    from core.data.summary_stats import FEATURES
    from core.viz.data import correlation_figure
    from core.viz.evaluation import importance_figure
    from core.viz.maps_eval import pred_vs_true_grid_figure

    post, data = res["post"], res["data"]
    rows = []
    for q in spec.targets:
        s = res["scores_by_target"].get(q.name)
        if s:
            rows.append({"target": q.label, "unit": q.unit, **{k: v for k, v in s.items()
                                                                if k in ("rmse", "bias", "mae", "r2", "coverage_68",
                                                                         "coverage_95", "pit_ks_p")}})
    st.dataframe(ui.rows_frame(rows), hide_index=True, key="central_scores")
    ui.show_figure(pred_vs_true_grid_figure(post, data), "pred_vs_true")
    st.subheader("Interpretability: summary statistics")
    imp = None
    if hasattr(m, "importance"):
        imp, src = ui.on_engine(m.importance, "gain"), "the current model"
    else:
        try:
            gb = ui.bundled_model(spec.name, "lightgbm")
            imp, src = ui.on_engine(gb.importance, "gain"), "the bundled LightGBM checkpoint"
        except Exception:  # noqa: BLE001 - no bundled LightGBM: say so below
            imp = None
    if imp:
        t = st.selectbox("Target", list(imp), key="imp_target")
        ui.show_figure(importance_figure(imp[t], title=f"LightGBM gain importance for {t} ({src})"),
                       "lightgbm_importance")
    else:
        st.caption("LightGBM gain importance appears when a LightGBM model is current or bundled.")
    stats = ui.on_engine(statistics_table, data)
    cols = np.column_stack([stats, data.y])
    names = list(FEATURES) + list(data.targets)
    ui.show_figure(correlation_figure(cols, names, title="Pearson correlation of summary statistics and targets"),
                   "correlation")


# --------------------------------------------------------------------------------------------------- home demo
def demo(spec) -> tuple:
    """Load the demo set and the bundled default checkpoint, and compute the first object's posterior."""
    data = ui.demo_data(spec.name)
    m = ui.bundled_model(spec.name)
    ui.set_data(data, "demo maps (simulated)")
    ui.set_model(m, f"bundled {m.name}")
    one = data.subset([0])
    post = ui.on_engine(api.posterior, m, one, n_samples=ui.demo_samples(spec.name), seed=0)
    return one, post


def demo_figure(spec, one, post):
    from core.viz.maps import posterior_maps_figure
    from core.viz.maps_eval import central_targets_figure

    if is_exsitu(spec):
        one = api.prepare(ui.model(), one)
        return posterior_maps_figure(post, 0, pixel_scale=float(one.pixel_scale_arcsec[0]))
    return central_targets_figure(post, one, 0)
