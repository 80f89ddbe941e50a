"""Home: what the app does, the task picker and the one-click demo (bundled data + checkpoint -> a posterior)."""

import time

import streamlit as st

import app_ui as ui
from app_ui.views import view_for

RUN_STARTED = time.perf_counter()  # the click that starts this run reached the server just before

st.title("Galaxy Posterior Studio")
st.markdown(
    '<p class="gps-tagline">Calibrated posteriors for the unseen properties of galaxies.</p>', unsafe_allow_html=True
)
st.markdown(
    "Galaxy Posterior Studio infers properties you cannot observe directly — the dark-matter halo mass of a "
    "central galaxy, the map of its accreted (ex-situ) stars, its central stellar and total mass — from the "
    "catalogue quantities and IFU maps you do measure, and returns a full posterior for every "
    "galaxy rather than a single number. Models are trained on physically motivated simulations; where a "
    "simulator allows it the exact Bayesian posterior is computed too, so learned posteriors are checked against "
    "the best possible answer. "
    "Upload your catalogue or maps or simulate them, train or load a model, inspect and refine posteriors, evaluate "
    "calibration and export the results with units and provenance."
)

with ui.guard("Home"):
    tasks = ui.app_tasks()
    names = [t.name for t in tasks]
    current = ui.task_name()
    pick = st.selectbox(
        "Task",
        names,
        index=names.index(current),
        key="task_picker",
        format_func=lambda n: f"{n} — {tasks[names.index(n)].title}",
    )
    if pick != current:
        ui.ss()["task"] = pick
        ui.set_data(None, "—")
        ui.set_model(None, "—")
    spec = tasks[names.index(pick)]
    view = view_for(spec)
    st.caption(
        spec.summary
        + "  Inputs: "
        + ", ".join(q.label for q in spec.inputs)
        + " → "
        + ", ".join(q.label for q in spec.targets)
        + "."
    )
    ui.warm_up(pick)

    c1, c2 = st.columns([1, 3])
    clicked = c1.button("Load demo", type="primary", icon=":material/rocket_launch:", key="load_demo")
    c2.caption(
        f"Loads a fixed simulated {view.NOUN} ({ui.demo_count(spec)}, same for everyone) "
        "and the bundled default checkpoint, then shows the posterior of the first object."
    )
    if clicked:
        t0 = time.perf_counter()
        with st.spinner("Loading the demo…"), ui.user_waiting():
            g = view.demo(spec)
            ui.ss()["galaxy"] = g
        ui.ss()["demo_click"], ui.ss()["demo_engine_seconds"] = RUN_STARTED, time.perf_counter() - t0
        ui.ss().pop("demo_seconds", None)  # set once the figure has been sent (ui.demo_seconds)
        st.rerun()  # redraw with the new data and model (sidebar included)

    g = ui.ss().get("galaxy")
    if g is not None and ui.data() is not None and g.get("index") == 0 and "demo_click" in ui.ss():
        view.demo_result(spec, g)

    ui.workflow_links()
