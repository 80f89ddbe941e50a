"""The Batch page's live status panel: progress, dashboard link, Stop, failures, preview and download."""

from __future__ import annotations

import streamlit as st

from app_ui.state import ss
from core.batch import poll_job, read_results, results_bytes

__all__ = ["batch_status"]


def batch_status(job) -> None:
    """Show the batch run of this session, refreshed every second while ``job`` runs."""
    st.fragment(_status, run_every=1.0 if job is not None and not job.finished else None)()


def _status() -> None:
    s = poll_job(ss().get("batch_job"))
    if s["state"] == "idle":
        return
    st.progress(
        s["fraction"],
        text=f"{s['state']}: {s['done']}/{s['total']} parts, {s['failed']} failed, "
        f"{s['rows']:,} rows, {s['rows_per_second']:,.0f} rows/s",
    )
    if s["dashboard"]:
        st.markdown(f"Dask dashboard: [{s['dashboard']}]({s['dashboard']})")
    if s["state"] in ("running", "stopping") and st.button("Stop", key="batch_stop"):
        ss()["batch_job"].stop()
    for e in s["errors"]:
        st.error(e, icon=":material/error:")
    if s.get("error"):
        st.error(s["error"], icon=":material/error:")
    if (
        s["state"] in ("done", "failed", "stopped")
        and s.get("summary")
        and s["summary"]["kind"] != "maps"
        and s["summary"]["done"]
    ):
        st.success(f"Results in {s['out']} ({s['summary']['skipped']} parts reused from earlier runs)")
        st.dataframe(read_results(s["out"]).head(200), key="batch_preview")
        st.download_button(
            "Download summaries (CSV)",
            results_bytes(s["out"], "csv"),
            "posteriors.csv",
            key="batch_download",
            icon=":material/download:",
        )
    elif s["state"] in ("done", "failed", "stopped") and s.get("summary"):
        st.success(f"Posterior maps in {s['out']}/maps; index table {s['out']}/index.parquet")
