"""The field view (data kind "field", task dm_to_galaxies): DM density slices, predicted galaxy fields next to the
truth and the exact oracle, P(k) / T(k) / r(k), the PR curve against the oracle's, the metric table and the one-point
count PDF. Numbers come from :mod:`core.tasks.dm_to_galaxies.metrics`, figures from
:mod:`core.tasks.dm_to_galaxies.viz`; the Export page writes the predicted fields through the task's writer."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

import app_ui as ui
from core import api

NOUN = "set of fields"
TYPES = ["npy", "h5", "hdf5", "fits", "fit"]


def _slice_controls(data, key: str) -> int | None:
    """A slice slider for 3-D boxes (None = the map itself for 2-D slabs)."""
    if data.dim == 2:
        return None
    n = data.grid[0]
    return int(st.slider("Slice (axis 0)", 0, n - 1, n // 2, key=key))


def _field_index(data, key: str) -> int:
    if len(data) == 1:
        return 0
    return int(st.number_input(f"Field (0..{len(data) - 1})", 0, len(data) - 1, 0, key=key))


# --------------------------------------------------------------------------------------------------- data
def data_page(spec) -> None:
    from core.tasks.dm_to_galaxies.viz import dm_slice_figure

    up_tab, sim_tab = st.tabs(["Upload DM density fields", "Simulate fields"])
    with up_tab:
        f = st.file_uploader(
            "DM density: CAMELS Maps_*.npy stacks (n, N, N), 3-D grids, HDF5 or FITS images / cubes",
            type=TYPES,
            key="upload",
        )
        if f is not None:
            raw = f.getvalue()
            digest = hashlib.sha256(raw).hexdigest()[:16]
            if ui.ss().get("field_digest") != digest:
                ui.set_data(api.read_data(raw, spec.name, filename=f.name), f.name)  # a GPSError shows as a message
                ui.ss()["field_digest"] = digest
                st.rerun()
    with sim_tab:
        ui.simulate_tab(spec, "sim", "Number of fields", 16, 2000, 8)

    data = ui.data()
    if data is None:
        st.info("No fields yet: upload some, simulate some, or use **Load demo** on the Home page.")
        return
    st.subheader(f"Current fields: {ui.ss().get('data_label')}")
    c1, c2, c3 = st.columns(3)
    c1.metric("fields", f"{len(data):,}")
    c2.metric("grid", " x ".join(map(str, data.grid)), help=f"box side {data.box_size:g} Mpc/h")
    c3.metric("true galaxies", "yes" if data.has_truth else "no")
    i = _field_index(data, "data_field_row")
    s = _slice_controls(data, "data_slice")
    ui.show_figure(dm_slice_figure(data.dm[i], box_size=data.box_size, index=s, title=f"DM field {i}"), "dm_slice")


# --------------------------------------------------------------------------------------------------- posterior
def posterior_page(spec, data, m) -> None:
    from core.tasks.dm_to_galaxies.metrics import transfer_and_correlation
    from core.tasks.dm_to_galaxies.viz import comparison_figure, power_spectrum_figure

    d = ui.defaults(spec.name)
    n_samples = st.select_slider(
        "Sampled galaxy fields per DM field", list(d.draw_choices), d.interactive_draws, key="n_samples"
    )
    key = ui.results_key() + (n_samples,)

    def work(j):
        post = api.posterior(m, data, n_samples=n_samples, seed=0, progress=j.progress)
        return {"key": key, "post": post, "exact": api.task_obj(spec.name).exact(data)}

    res = ui.keyed_job("post_field", key, f"Galaxy fields for {len(data):,} DM fields ({m.name})", work)
    if res is None:
        return
    post, exact = res["post"], res["exact"]
    ui.ss()["post"], ui.ss()["post_key"] = post, key  # the Export page writes this posterior
    n_gal = post.expected.reshape(len(data), -1).sum(1)
    c1, c2 = st.columns(2)
    c1.metric("expected galaxies per field", f"{n_gal.mean():.1f}")
    c2.metric("occupied voxels", f"{post.occupied.mean():.2%}", help=f"P(N>=1) >= {post.threshold:.3f}")
    i = _field_index(data, "post_field_row")
    s = _slice_controls(data, "post_slice")
    panels = {"DM": data.dm[i]}
    if data.has_truth:
        panels["true galaxies"] = data.galaxies[i]
    panels[f"P(N>=1) {m.name}"] = post.prob[i]
    if exact is not None:
        panels["P(N>=1) oracle"] = exact.prob[i]
    if post.samples is not None:
        panels[f"sample ({m.name})"] = post.samples[i, 0]
    ui.show_figure(comparison_figure(panels, box_size=data.box_size, index=s), "field_panels")
    if exact is None:
        st.caption("No oracle: these fields were not simulated, so the exact P(N>=1 | DM) is unknown.")
    if not data.has_truth:
        st.caption("No true galaxy field: P(k) ratios need the truth.")
        return
    one = slice(i, i + 1)
    curves = {f"{m.name} E[N]": transfer_and_correlation(post.expected[one], data.galaxies[one], data.box_size)}
    if post.samples is not None:
        curves[f"{m.name} samples"] = transfer_and_correlation(post.samples[one], data.galaxies[one], data.box_size)
    if exact is not None and exact.samples is not None:
        curves["oracle sample"] = transfer_and_correlation(exact.samples[one], data.galaxies[one], data.box_size)
    ui.show_figure(power_spectrum_figure(curves), "power_spectra")
    st.caption("Compare like with like: samples against the oracle's samples, E[N] fields are smoother than truth.")


# --------------------------------------------------------------------------------------------------- evaluation
def evaluation_page(spec, data, m, ev) -> None:
    from core.tasks.dm_to_galaxies.metrics import field_metrics
    from core.tasks.dm_to_galaxies.viz import one_point_pdf_figure, pr_curve_figure

    if not ev.has_truth:
        st.info("Evaluation needs the true galaxy fields (simulated data, or a file with a galaxy count field).")
        return
    key = ui.results_key()

    def work(j):
        post = api.posterior(m, ev, n_samples=1, seed=0, progress=j.progress)
        exact = api.task_obj(spec.name).exact(ev)
        rows = {
            m.name: (
                post,
                field_metrics(
                    truth=ev.galaxies,
                    box_size=ev.box_size,
                    prob=post.prob,
                    occupied=post.occupied,
                    expected=post.expected,
                    pk_field=post.samples if post.samples is not None else post.expected,
                ),
            )
        }
        if exact is not None and m.name != "oracle":
            rows["oracle"] = (
                exact,
                field_metrics(
                    truth=ev.galaxies,
                    box_size=ev.box_size,
                    prob=exact.prob,
                    occupied=exact.occupied,
                    expected=exact.expected,
                    pk_field=exact.samples,
                ),
            )
        return {"key": key, "rows": rows}

    res = ui.keyed_job("eval_field", key, f"Scoring {m.name} on {len(ev):,} fields", work)
    if res is None:
        return
    rows = res["rows"]
    table = [{"method": name, **{k: float(v) for k, v in met.items()}} for name, (_, met) in rows.items()]
    st.dataframe(ui.rows_frame(table), hide_index=True, key="field_metrics")
    ops = {name: (met["recall"], met["precision"]) for name, (_, met) in rows.items() if "recall" in met}
    ui.show_figure(pr_curve_figure({n: p.prob for n, (p, _) in rows.items()}, ev.galaxies, ops), "pr_curve")
    pdfs = {"truth": ev.galaxies}
    for name, (p, _) in rows.items():
        pdfs[name] = p.samples[:, 0] if p.samples is not None else np.rint(p.expected)
    ui.show_figure(one_point_pdf_figure(pdfs), "one_point_pdf")
    st.caption(
        "Accuracy is reported, never ranked on (most voxels are empty); PR-AUC, F1 and MCC rank. "
        "One-point PDF: a sampled field per method (rounded E[N] for point predictors)."
    )


# --------------------------------------------------------------------------------------------------- home demo
def demo(spec) -> dict:
    """The demo simulated fields and the bundled default model; the first field's prediction (+ oracle)."""
    data = ui.demo_data(spec.name)
    m = ui.bundled_model(spec.name)
    ui.set_data(data, "demo DM fields (simulated)")
    ui.set_model(m, f"bundled {m.name}")
    one = data.subset([0])
    post = ui.on_engine(api.posterior, m, one, n_samples=1, seed=0)
    return {"index": 0, "post": post, "exact": ui.on_engine(api.task_obj(spec.name).exact, one)}


def demo_result(spec, g: dict) -> None:
    """The demo field: DM, true galaxies, the model's and the oracle's P(N>=1)."""
    from core.tasks.dm_to_galaxies.viz import comparison_figure

    data, post, exact = ui.data(), g["post"], g["exact"]
    panels = {"DM": data.dm[0]}
    if data.has_truth:
        panels["true galaxies"] = data.galaxies[0]
    panels[f"P(N>=1) {post.method or 'model'}"] = post.prob[0]
    if exact is not None:
        panels["P(N>=1) oracle"] = exact.prob[0]
    ui.show_figure(comparison_figure(panels, box_size=data.box_size), "demo_posterior", key="demo-field")
    st.success(
        f"First galaxy field on screen {ui.demo_seconds()}: {post.expected[0].sum():.1f} expected "
        "galaxies" + (f", truth {int(data.galaxies[0].sum())}" if data.has_truth else ""),
        icon=":material/check_circle:",
    )
    st.page_link("pages/3_posterior.py", label="See every field on the Posterior page", icon=":material/insights:")
