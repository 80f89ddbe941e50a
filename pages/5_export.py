"""Export: posterior summaries (and samples) or posterior maps with units and provenance; figures as HTML."""

import streamlit as st

import app_ui as ui
from core import api
from core.data.provenance import result_provenance

st.title("Export")
with ui.guard("Export"):
    spec, cat, m = ui.task(), ui.data(), ui.model()
    post = ui.ss().get("post") if ui.ss().get("post_key", (None,))[:2] == ui.results_key() else None
    data = ui.ss().get("post_data") or cat  # the data as the model ran on them (maps: on the model grid)
    formats = list(api.task_obj(spec.name).writer.formats)
    ui.data_warnings()
    st.subheader("Posterior " + ("table" if "csv" in formats else "maps"))
    if ui.need(post, "Compute posteriors on the Posterior page first.", "pages/3_posterior.py"):
        c1, c2, c3 = st.columns(3)
        fmt = c1.selectbox("Format", formats, key="export_fmt")
        with_samples = c2.checkbox("Include posterior samples", key="export_samples")
        n_s = c3.number_input(
            "Samples per galaxy", 10, 10000, 1000, step=100, key="export_n", disabled=not with_samples
        )
        if st.button("Prepare file", key="export_prepare"):
            label = ui.ss().get("model_label")
            prov = result_provenance(
                m,
                checkpoint=label,
                data=cat,
                prepared=data,
                input_name=ui.ss().get("data_label"),
                seed=0,
                data_label=ui.ss().get("data_label"),
                model_label=label,
                model_card={k: (m.card or {}).get(k) for k in ("created", "provenance", "config")},
            )
            prov["validation_warnings"] = ui.validation_warnings()
            ui.ss()["export_file"] = (
                fmt,
                api.export_posterior(
                    post, data, fmt, task=spec.name, include_samples=with_samples, n_samples=int(n_s), provenance=prov
                ),
            )
        ready = ui.ss().get("export_file")
        if ready is not None:
            ext = {"csv": "csv", "fits": "fits", "hdf5": "h5", "npy": "npy", "qp": "qp.hdf5"}[ready[0]]
            st.download_button(
                f"Download posterior.{ext} ({len(ready[1]) / 1024:.0f} KiB)",
                ready[1],
                file_name=f"{spec.name}_posterior.{ext}",
                icon=":material/download:",
                key="export_download",
            )
            st.caption(
                "Units and provenance (data, model, settings) are in the columns and headers / attributes; "
                "maps keep the input's WCS moved onto the model grid."
            )

    ui.figures_download()
