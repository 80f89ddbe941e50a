"""Galaxy Posterior Studio: the Streamlit router (page config, navigation, sidebar status). Run `streamlit run app.py`."""

from pathlib import Path

import streamlit as st

import app_ui as ui

ROOT = Path(__file__).resolve().parent

st.set_page_config(
    page_title="Galaxy Posterior Studio",
    page_icon=str(ROOT / "assets" / "logo.svg"),
    layout="wide",
    initial_sidebar_state="expanded",
)
st.html(f"<style>{(ROOT / 'assets' / 'style.css').read_text()}</style>")
st.logo(str(ROOT / "assets" / "logo.svg"), size="large")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("pages/1_data.py", title="Data", icon=":material/table:", url_path="data"),
    st.Page("pages/2_model.py", title="Model", icon=":material/model_training:", url_path="model"),
    st.Page("pages/3_posterior.py", title="Posterior", icon=":material/insights:", url_path="posterior"),
    st.Page("pages/4_evaluation.py", title="Evaluation", icon=":material/fact_check:", url_path="evaluation"),
    st.Page("pages/5_export.py", title="Export", icon=":material/download:", url_path="export"),
    st.Page("pages/6_batch.py", title="Batch", icon=":material/dataset:", url_path="batch"),
]
page = st.navigation(PAGES)
ui.leave_pages(page.url_path)  # jobs of the page the user left are cancelled (training runs on, detached)

with st.sidebar:
    st.caption("Current session")
    cat, m = ui.data(), ui.model()
    st.markdown(
        f"**Task:** `{ui.task_name()}`  \n"
        f"**Data:** {ui.ss().get('data_label', '—') if cat is not None else '—'}"
        f"{f' ({len(cat):,} objects)' if cat is not None else ''}  \n"
        f"**Model:** {ui.ss().get('model_label', '—') if m is not None else '—'}"
    )

page.run()
