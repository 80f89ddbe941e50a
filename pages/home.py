"""Home: what the app does, the task picker and the one-click demo (bundled data + checkpoint -> a posterior)."""

import time

import streamlit as st

import ui
import ui_maps
from core import api
from core.data.task_data import task_data
from core.viz.corner import corner_figure

st.title("Galaxy Posterior Studio")
st.markdown('<p class="gps-tagline">Calibrated posteriors for the unseen properties of galaxies.</p>',
            unsafe_allow_html=True)
st.markdown(
    "Galaxy Posterior Studio infers properties you cannot observe directly — the dark-matter halo mass of a "
    "central galaxy, the map of its accreted (ex-situ) stars, its central stellar and total mass — from the "
    "catalogue quantities and IFU maps you do measure, and returns a full posterior for every "
    "galaxy rather than a single number. Models are trained on physically motivated simulations; where a "
    "simulator allows it the exact Bayesian posterior is computed too, so learned posteriors are checked against "
    "the best possible answer. "
    "Upload your catalogue or maps or simulate them, train or load a model, inspect and refine posteriors, evaluate "
    "calibration and export the results with units and provenance.")

with ui.guard("Home"):
    tasks = ui.app_tasks()
    names = [t.name for t in tasks]
    current = ui.task_name()
    pick = st.selectbox("Task", names, index=names.index(current), key="task_picker",
                        format_func=lambda n: f"{n} — {tasks[names.index(n)].title}")
    if pick != current:
        ui.ss()["task"] = pick
        ui.set_data(None, "—")
        ui.set_model(None, "—")
    spec = tasks[names.index(pick)]
    st.caption(spec.summary + "  Inputs: " + ", ".join(q.label for q in spec.inputs) + " → "
               + ", ".join(q.label for q in spec.targets) + ".")
    ui.warm_up(pick)

    c1, c2 = st.columns([1, 3])
    clicked = c1.button("Load demo", type="primary", icon=":material/rocket_launch:", key="load_demo")
    c2.caption(f"Loads a fixed simulated {'set of maps' if ui_maps.is_maps(spec) else 'catalogue'} "
               f"({task_data(pick).demo_galaxies:,} galaxies, same for everyone) and the bundled default checkpoint, "
               "then shows the posterior of the first object.")
    if clicked and ui_maps.is_maps(spec):
        t0 = time.perf_counter()
        with st.spinner("Loading the demo…"):
            one, post = ui_maps.demo(spec)
            ui.ss()["galaxy"] = {"index": 0, "post": post, "one": one}
        ui.ss()["demo_seconds"] = time.perf_counter() - t0
        st.rerun()          # redraw with the new data and model (sidebar included)
    elif clicked:
        t0 = time.perf_counter()
        with st.spinner("Loading the demo…"):
            cat = ui.demo_data(pick)
            m = ui.bundled_model(pick)
            ui.set_data(cat, "demo catalogue (simulated)")
            ui.set_model(m, f"bundled {m.name}")
            one = cat.subset(slice(0, 1))
            post = ui.on_engine(api.posterior, m, one, n_samples=ui.DEMO_SAMPLES, seed=0)
            ui.ss()["galaxy"] = {"index": 0, "post": post, "exact": ui.on_engine(api.exact_posterior, one)}
        ui.ss()["demo_seconds"] = time.perf_counter() - t0
        st.rerun()          # redraw with the new data and model (sidebar included)

    g = ui.ss().get("galaxy")
    cat = ui.data()
    if g is not None and cat is not None and "one" in g and "demo_seconds" in ui.ss():
        ui.show_figure(ui_maps.demo_figure(spec, g["one"], g["post"]), "demo_posterior", key="demo-maps")
        st.success(f"First posterior on screen in {ui.ss()['demo_seconds']:.2f} s (object {g['one'].ids[0]}, "
                   f"{g['post'].method}).", icon=":material/check_circle:")
        st.page_link("pages/3_posterior.py", label="See every object on the Posterior page", icon=":material/insights:")
    elif g is not None and cat is not None and g.get("index") == 0 and "demo_seconds" in ui.ss():
        post, exact = g["post"], g["exact"]
        q = spec.targets[0]
        truth = cat.y[0, 0] if cat.has_truth else None
        fig = corner_figure(post.samples[0], [f"{q.label} [{q.unit}]"], truths=None if truth is None else [truth],
                            exact_grid=None if exact is None else exact.grid,
                            exact_pdf=None if exact is None else exact.pdf[0],
                            title=f"Galaxy {cat.ids[0]}: posterior of {q.label} ({post.method})")
        ui.show_figure(fig, "demo_posterior", key="demo-corner")
        s = post.summaries()
        name = spec.targets[0].name
        st.success(f"First posterior on screen in {ui.ss()['demo_seconds']:.2f} s: {q.label} = "
                   f"{s[name + '_median'][0]:.2f} (+{s[name + '_p84'][0] - s[name + '_median'][0]:.2f} / "
                   f"-{s[name + '_median'][0] - s[name + '_p16'][0]:.2f})"
                   + (f", truth {truth:.2f}" if truth is not None else ""), icon=":material/check_circle:")
        st.page_link("pages/3_posterior.py", label="See every galaxy on the Posterior page", icon=":material/insights:")

    st.divider()
    st.subheader("Workflow")
    cols = st.columns(5)
    for col, (page, text) in zip(cols, [("pages/1_data.py", "Upload or simulate a catalogue"),
                                        ("pages/2_model.py", "Train, load or upload a model"),
                                        ("pages/3_posterior.py", "Per-galaxy posteriors, HMC"),
                                        ("pages/4_evaluation.py", "Calibration and accuracy"),
                                        ("pages/5_export.py", "Tables and figures")]):
        col.page_link(page, label=page.split("_", 1)[1].removesuffix(".py").capitalize())
        col.caption(text)
