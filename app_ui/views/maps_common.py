"""What the two map views share (data kinds "maps" and "multi_target_maps"): map-file upload and simulation, the
object picker, input maps, the per-object posterior table and job, inference modes, the scoring job and the demo.

Thin like the pages: data and posteriors come from :mod:`core.api`, figures from :mod:`core.viz`, numerics from
:mod:`core.metrics`; model differences come from the registered capability flags (inference modes).
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import streamlit as st

import app_ui as ui
from core import api

MAP_TYPES = ["fits", "fit", "gz", "fz", "h5", "hdf5", "csv"]


# --------------------------------------------------------------------------------------------------- data
def data_page(spec) -> None:
    adapter = api.task_obj(spec.name).data
    up_tab, sim_tab = st.tabs(["Upload map files", "Simulate maps"])
    with up_tab:
        multi = bool(getattr(adapter, "multi_file", False))
        got = st.file_uploader(
            f"Map file{'s' if multi else ''}: {adapter.file_kinds}",
            type=MAP_TYPES,
            key="map_upload",
            accept_multiple_files=multi,
            help="several files of one galaxy (e.g. a SAMI velocity and dispersion file) are combined by their id "
            "(CATID); files of several galaxies give one object each"
            if multi
            else None,
        )
        opts = {}
        if "reff_arcsec" in getattr(adapter, "read_options", ()):
            reff = st.number_input(
                "R_e [arcsec] (0 = from the file)",
                min_value=0.0,
                max_value=600.0,
                value=0.0,
                step=0.1,
                key="map_reff",
                help="effective radius, for files that carry none (SAMI kinematics, Firefly); replaces a file's value",
            )
            opts = {"reff_arcsec": float(reff)} if reff > 0 else {}
        files = [f for f in (got if multi else [got]) if f is not None] if got is not None else []
        if files:
            raws, names = [f.getvalue() for f in files], [f.name for f in files]
            h = hashlib.sha256(repr(sorted(opts.items())).encode())
            for raw, name in zip(raws, names):
                h.update(name.encode() + hashlib.sha256(raw).digest())
            digest = h.hexdigest()[:16]
            if ui.ss().get("map_digest") != digest:
                ui.ss()["map_digest"] = digest
                source, label = (raws, names) if len(files) > 1 else (raws[0], names[0])
                data = ui.on_engine(api.read_data, source, spec.name, filename=label, **opts)
                ui.set_data(data, names[0] if len(files) == 1 else str(data.meta.get("file") or f"{len(files)} files"))
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

    ui.show_figure(input_maps_figure(data, i, title=f"Input maps of object {data.ids[i]} (masked pixels blank)"), name)


# --------------------------------------------------------------------------------------------------- posterior
def posterior_page(spec, data, m, *, table: Callable, detail: Callable) -> None:
    """Per-object posterior summaries (``table(spec, post, prepared) -> columns``), then the chosen object's inputs
    and ``detail(spec, data, m, post, prepared, i, n_samples)``. The data are prepared once (api.prepare)."""
    d = ui.defaults(spec.name)
    c1, c2 = st.columns(2)
    n_samples = c1.select_slider(
        "Posterior draws per object", list(d.draw_choices), d.interactive_draws, key="map_n_samples"
    )
    caps = api.capabilities(m)
    mode = None
    if caps.modes:
        modes = [x for x in caps.modes if x not in caps.truth_modes or data.has_truth]
        mode = c2.radio(
            "Inference mode",
            modes,
            horizontal=True,
            key="map_mode",
            help="flow: amortized posterior (default); prior: latent from N(0, I); reconstruction: "
            "encoder on the true map (a lower bound, needs the truth)",
        )
    key = ui.results_key() + (n_samples, mode)
    done = ui.take_result("post")
    if done is not None:
        if done.error:
            ui.ss()["post_key"], ui.ss()["post_error"] = key, (key, done.error)
        else:
            post, prepared, k = done.result
            ui.ss()["post"], ui.ss()["post_data"], ui.ss()["post_key"] = post, prepared, k
    if ui.ss().get("post_key") != key and not ui.running("post"):
        opts = {"mode": mode} if mode else {}

        def work(j):
            prepared = api.prepare(m, data)
            if len(prepared) > 1:  # the first object on screen in a second or two; the whole set follows
                first = prepared.subset([0])
                j.partial = (api.posterior(m, first, n_samples=n_samples, seed=0, **opts), first)
            return api.posterior(m, prepared, n_samples=n_samples, seed=0, progress=j.progress, **opts), prepared, key

        ui.start_job("post", f"Posteriors of {len(data):,} objects ({m.name}{', ' + mode if mode else ''})", work)
    running = ui.watch("post", stoppable=False)
    err = ui.ss().get("post_error")
    if err is not None and err[0] == key:  # stays on screen until the data, model or settings change
        st.error(f"Posterior failed: {err[1]}", icon=":material/error:")
        return
    post = ui.ss().get("post") if ui.ss().get("post_key") == key else None
    if post is not None:
        _show_posteriors(spec, data, m, post, ui.ss()["post_data"], n_samples, table, detail)
    elif running and ui.job("post").partial is not None:
        st.caption("The first object is shown while the others are computed.")
        first_post, first = ui.job("post").partial
        _show_posteriors(spec, data, m, first_post, first, n_samples, table, detail)


def _show_posteriors(spec, data, m, post, prepared, n_samples: int, table: Callable, detail: Callable) -> None:
    for note in prepared.meta.get("notes", [])[-1:]:
        st.caption(note)
    st.dataframe(
        ui.frame(
            {
                "row": np.arange(len(prepared)),
                "id": np.asarray([str(v) for v in prepared.ids]),
                **table(spec, post, prepared),
            }
        ),
        hide_index=True,
        key="map_post_table",
        height=min(240, 35 * len(prepared) + 40),
    )
    i = pick_object(prepared, "post_obj")
    show_inputs(prepared, i, "posterior_inputs")
    detail(spec, data, m, post, prepared, i, n_samples)


def modes_section(m, prepared, i: int, n_samples: int) -> None:
    """Posteriors of one object under every inference mode of the model (button), side by side."""
    from core.viz.maps import modes_figure

    if st.button("Compare the three inference modes for this object", key="modes_btn"):
        one = prepared.subset([i])
        posts = {
            mode: ui.on_engine(api.posterior, m, one, n_samples=n_samples, seed=0, mode=mode)
            for mode in api.capabilities(m).modes
        }
        ui.ss()["modes"] = (ui.results_key(), prepared.ids[i], posts)
    got = ui.ss().get("modes")
    if got is not None and got[0] == ui.results_key() and got[1] == prepared.ids[i]:
        ui.show_figure(modes_figure(got[2], 0), "inference_modes")


# --------------------------------------------------------------------------------------------------- evaluation
def evaluation_page(spec, data, m, ev, show: Callable) -> None:
    """Score the model on ``ev`` (prepared once; the task's default draws) and ``show(spec, m, res)``."""
    key = ui.results_key()

    def work(j):
        prepared = api.prepare(m, ev)
        post = api.posterior(m, prepared, n_samples=ui.defaults(spec.name).draws, seed=0, progress=j.progress)
        return {"key": key, "post": post, "data": prepared, **api.evaluate(post, prepared)}

    res = ui.keyed_job("eval", key, f"Scoring {m.name} on {len(ev):,} objects", work)
    if res is not None:
        show(spec, m, res)


# --------------------------------------------------------------------------------------------------- home demo
def demo(spec) -> dict:
    """Load the demo set and the bundled default checkpoint, and compute the first object's posterior."""
    data = ui.demo_data(spec.name)
    m = ui.bundled_model(spec.name)
    ui.set_data(data, "demo maps (simulated)")
    ui.set_model(m, f"bundled {m.name}")
    one = api.prepare(m, data.subset([0]))
    post = ui.on_engine(api.posterior, m, one, n_samples=ui.defaults(spec.name).demo_draws, seed=0)
    return {"index": 0, "post": post, "one": one}


def demo_result(spec, g: dict, figure) -> None:
    ui.show_figure(figure, "demo_posterior", key="demo-maps")
    st.success(
        f"First posterior on screen {ui.demo_seconds()} (object {g['one'].ids[0]}, {g['post'].method}).",
        icon=":material/check_circle:",
    )
    st.page_link("pages/3_posterior.py", label="See every object on the Posterior page", icon=":material/insights:")
