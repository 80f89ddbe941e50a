"""Evaluation: scores, calibration and every method side by side on labelled data, in the task's view."""

import streamlit as st

import app_ui as ui
from app_ui.views import view_for

st.title("Evaluation")
with ui.guard("Evaluation"):
    spec, cat, m = ui.task(), ui.data(), ui.model()
    ok = ui.need(cat, "Load or simulate a labelled catalogue first.", "pages/1_data.py") and ui.need(
        m, "Load, train or upload a model first.", "pages/2_model.py"
    )
    if ok and not cat.has_truth:
        st.info("Evaluation needs the true target values: map a target column on the Data page or simulate data.")
        ok = False
    if ok:
        ev = ui.eval_data()
        st.caption(
            f"Scored on {len(ev):,} objects "
            + (
                "(the held-out test part of the data the model was trained on)."
                if len(ev) < len(cat)
                else "(all of the current data; the model was not trained on them here)."
            )
        )
        from core.api import prior_caveat

        caveat = prior_caveat(m, ev)
        if caveat:
            st.warning(caveat)
        view_for(spec).evaluation_page(spec, cat, m, ev)
