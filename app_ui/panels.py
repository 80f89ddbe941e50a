"""Page panels shared by every task: the figures download (Export) and the workflow links (Home)."""

from __future__ import annotations

import io
import zipfile

import streamlit as st

from app_ui.state import ss


def data_warnings() -> None:
    """The current data's validation warnings (Data page report), so they follow the data onto Posterior/Export."""
    warnings = validation_warnings()
    if warnings:
        with st.expander(f"{len(warnings)} warning(s) about these data (Data page)", icon=":material/warning:"):
            for w in warnings:
                st.warning(w)


def validation_warnings() -> list[str]:
    report = ss().get("report")
    return list(getattr(report, "warnings", None) or []) if ss().get("data") is not None else []


def figures_download() -> None:
    """Every figure drawn in this session as HTML (one file each, or all in a zip)."""
    st.subheader("Figures")
    figs = ss().get("figures", {})
    if not figs:
        st.info("Figures appear here once they have been drawn on the other pages.")
    else:
        offline = st.toggle("Self-contained HTML (works offline; about 4.6 MB per figure)", key="fig_offline")
        js = True if offline else "cdn"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, fig in figs.items():
                zf.writestr(f"{name}.html", fig.to_html(include_plotlyjs=js, full_html=True))
        st.download_button(
            f"Download all {len(figs)} figures (HTML, zip)",
            buf.getvalue(),
            file_name="figures.zip",
            icon=":material/folder_zip:",
            key="fig_zip",
        )
        for name, fig in figs.items():
            c1, c2 = st.columns([3, 1])
            c1.write(f"`{name}` — {fig.layout.title.text or ''}")
            c2.download_button(
                "HTML",
                fig.to_html(include_plotlyjs=js, full_html=True),
                file_name=f"{name}.html",
                mime="text/html",
                key=f"fig-{name}-html",
            )


def workflow_links() -> None:
    """Links to the five steps with one line each."""
    st.divider()
    st.subheader("Workflow")
    cols = st.columns(5)
    for col, (page, text) in zip(
        cols,
        [
            ("pages/1_data.py", "Upload or simulate a catalogue"),
            ("pages/2_model.py", "Train, load or upload a model"),
            ("pages/3_posterior.py", "Per-galaxy posteriors, HMC"),
            ("pages/4_evaluation.py", "Calibration and accuracy"),
            ("pages/5_export.py", "Tables and figures"),
        ],
    ):
        col.page_link(page, label=page.split("_", 1)[1].removesuffix(".py").capitalize())
        col.caption(text)
