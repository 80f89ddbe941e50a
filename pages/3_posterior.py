"""Posterior: per-object summaries (searchable) and the chosen object's posterior, in the task's view."""

import streamlit as st

import app_ui as ui
from app_ui.views import view_for

st.title("Posterior")
with ui.guard("Posterior"):
    spec, cat, m = ui.task(), ui.data(), ui.model()
    ui.data_warnings()
    if ui.need(cat, "Load or simulate a catalogue first (or use Load demo on Home).", "pages/1_data.py") and ui.need(
        m, "Load, train or upload a model first.", "pages/2_model.py"
    ):
        view_for(spec).posterior_page(spec, cat, m)
