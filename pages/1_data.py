"""Data: upload a catalogue (column mapping with units, validation report) or simulate one; preview and plots."""

import hashlib

import numpy as np
import streamlit as st

import ui
import ui_maps
from core import api
from core.viz.data import correlation_figure, histograms_figure, pair_plot_figure

TYPES = ["csv", "txt", "ecsv", "fits", "fit", "fz", "gz", "h5", "hdf5", "hdf", "parquet", "pq"]

st.title("Data")
with ui.guard("Data"):
    spec = ui.task()
    if ui_maps.is_maps(spec):
        ui_maps.data_page(spec)
        st.stop()
    up_tab, sim_tab = st.tabs(["Upload a catalogue", "Simulate a catalogue"])

    with up_tab:
        f = st.file_uploader("Catalogue file: CSV, FITS table, HDF5, Parquet or a TNG group-catalogue chunk",
                             type=TYPES, key="upload")
        if f is not None:
            raw = f.getvalue()
            digest = hashlib.sha256(raw).hexdigest()[:16]
            if ui.ss().get("table_digest") != digest:
                ui.ss()["table"], ui.ss()["table_digest"] = None, digest
                ui.ss()["table"], ui.ss()["table_name"] = api.read_table(raw, filename=f.name), f.name
        table = ui.ss().get("table")
        if table is not None:
            name = ui.ss().get("table_name", "upload")
            st.caption(f"{name}: {len(table):,} rows, {len(table.colnames)} columns")
            guess = api.suggest_mapping(table, spec.name)
            st.markdown("**Column mapping** (auto-filled from names and units; a unit left as the task's "
                        "canonical unit means the values are already in it)")
            mapping, units = {}, {}
            options = [None] + list(table.colnames)
            for q in spec.targets + spec.inputs:
                g = guess.get(q.name)
                opts = options + ([g] if g and g not in options else [])
                c1, c2, c3 = st.columns([2, 3, 2])
                c1.markdown(f"**{q.label}** {'(target)' if q in spec.targets else ''}", help=q.description)
                col = c2.selectbox(q.name, opts, index=opts.index(g) if g in opts else 0, key=f"map.{q.name}",
                                   format_func=lambda c: "— not used —" if c is None else c,
                                   label_visibility="collapsed")
                file_unit = str(table[col].unit) if col in table.colnames and table[col].unit else ""
                unit = c3.text_input("unit", value=file_unit or q.unit, key=f"unit.{q.name}.{col}",
                                     label_visibility="collapsed", help=f"canonical unit: {q.unit or '(none)'}")
                mapping[q.name] = col
                if unit != (file_unit or q.unit):
                    units[q.name] = unit
            if st.button("Use this catalogue", type="primary", key="use_upload"):
                try:
                    cat, report = api.table_to_catalog(table, spec.name, mapping=mapping, units=units or None)
                except Exception as err:
                    ui.ss()["report"] = getattr(err, "report", None)
                    raise
                ui.set_data(cat, name, report)
                st.rerun()

    with sim_tab:
        ui.simulate_tab(spec, "sim", "Number of galaxies", 5000, 2_000_000, 1000)

    report = ui.ss().get("report")
    if report is not None:
        st.subheader("Validation report")
        (st.success if report.ok else st.error)(report.summary().splitlines()[0])
        for m in report.messages:
            (st.error if m.startswith("error") else st.warning)(m)
        st.dataframe(ui.rows_frame(report.rows()), hide_index=True, key="report_table")

    cat = ui.data()
    if cat is not None:
        st.subheader(f"Current catalogue: {ui.ss().get('data_label')}")
        n_nan = int(np.isnan(cat.x).any(axis=1).sum())
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("galaxies", f"{len(cat):,}")
        c2.metric("features", len(cat.features))
        c3.metric("rows with a missing value", f"{n_nan:,}")
        c4.metric("truth", "yes" if cat.has_truth else "no")
        st.dataframe(ui.catalog_frame(cat, rows=500), hide_index=True, key="preview", height=260)
        labels = [spec.input(f).label for f in cat.features]
        domains = [spec.input(f).domain for f in cat.features]
        ui.show_figure(histograms_figure(cat.x, labels, domains=domains), "feature_histograms")
        cols = np.column_stack([cat.x] + ([cat.y] if cat.has_truth else []))
        names = labels + ([q.label for q in spec.targets] if cat.has_truth else [])
        ui.show_figure(correlation_figure(cols, names, title="Pearson correlation of inputs and target"),
                       "data_correlation")
        if st.toggle("Show the pair plot (coloured by the target when known)", key="pair"):
            ui.show_figure(pair_plot_figure(cat.x, labels, color=cat.y[:, 0] if cat.has_truth else None,
                                            color_label=spec.targets[0].label), "pair_plot")
    else:
        st.info("No catalogue yet: upload one, simulate one, or use **Load demo** on the Home page.")
