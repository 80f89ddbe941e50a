"""Data: upload or simulate the current task's data, validate and preview it (the task's view does the work)."""

import streamlit as st

import app_ui as ui
from app_ui.views import view_for

st.title("Data")
with ui.guard("Data"):
    spec = ui.task()
    view_for(spec).data_page(spec)
