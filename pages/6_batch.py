"""Batch: posteriors for a large catalogue, Parquet/HATS dataset or many map files on Dask, with live progress."""

import streamlit as st

import app_ui as ui
from core import api
from app_ui.batch import batch_status
from core.batch import BatchConfig, BatchJob
from core.batch.job import default_first

st.title("Batch")
st.caption(
    "Survey-size inputs on the server: a table, a folder or glob of Parquet files, a HATS catalogue, or a "
    "folder of map files. Runs on a local Dask cluster or any scheduler; rerunning the same settings resumes."
)
with ui.guard("Batch"):
    c1, c2 = st.columns(2)
    source = c1.text_input("Input path on the server", key="batch_input", placeholder="/data/survey/*.parquet")
    out = c2.text_input("Output folder", key="batch_out", placeholder="/data/survey_posteriors")
    ckpts = {
        f"{b['task']} · {b['model']} ({b['file']})": b["path"]
        for b in default_first(api.bundled_checkpoints(), ui.task_name())
    }
    c1, c2, c3 = st.columns(3)
    label = c1.selectbox("Checkpoint", [*ckpts, "Other file…"], key="batch_ckpt")
    ckpt = ckpts.get(label) or c1.text_input("Checkpoint path", key="batch_ckpt_path")
    draws = c2.number_input("Draws per object", 10, 100000, 1000, step=100, key="batch_draws")
    rows = c3.number_input("Rows per partition", 100, 10_000_000, 20000, step=1000, key="batch_rows")
    c1, c2, c3 = st.columns(3)
    where = c1.radio("Cluster", ["Local", "Scheduler address"], horizontal=True, key="batch_cluster")
    address = c2.text_input("Scheduler", key="batch_address", placeholder="tcp://host:8786") if where != "Local" else ""
    workers = (
        c2.number_input("Workers", 0, 512, 0, key="batch_workers", help="0 = one per GPU, else 2")
        if where == "Local"
        else 0
    )
    threads = c3.checkbox("Workers as threads of this app", key="batch_threads", help="small runs, no processes")
    samples = c3.checkbox("Store the draws", key="batch_samples")
    refine = st.text_input(
        "Refine with NUTS (rows where …)", key="batch_refine", placeholder="outside_domain or log_mh_std>0.3"
    )
    job: BatchJob | None = ui.ss().get("batch_job")
    busy = job is not None and not job.finished
    if st.button("Start", key="batch_start", type="primary", disabled=busy):
        cfg = BatchConfig(
            input=source,
            out=out,
            checkpoint=ckpt or "",
            draws=int(draws),
            partition_rows=int(rows),
            save_samples=samples,
            scheduler=address,
            workers=int(workers),
            processes=not threads,
            refine_hmc=refine,
        )
        ui.ss()["batch_job"] = job = BatchJob(cfg).start()

    batch_status(job)
