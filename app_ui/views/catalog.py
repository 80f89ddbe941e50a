"""The catalogue view (data kind "catalog", e.g. halo_mass): column mapping, tables, corner plots, HMC refinement,
posterior predictive checks, calibration and every method side by side."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import streamlit as st

import app_ui as ui
from core import api
from core.data.column_map import refused_columns
from core.data.ood import check_report

NOUN = "catalogue"
TYPES = ["csv", "txt", "ecsv", "fits", "fit", "fz", "gz", "h5", "hdf5", "hdf", "parquet", "pq"]


# --------------------------------------------------------------------------------------------------- data
def data_page(spec) -> None:
    from core.viz.data import correlation_figure, histograms_figure, pair_plot_figure

    up_tab, sim_tab = st.tabs(["Upload a catalogue", "Simulate a catalogue"])

    with up_tab:
        f = st.file_uploader(
            "Catalogue file: CSV, FITS table, HDF5, Parquet or a TNG group-catalogue chunk", type=TYPES, key="upload"
        )
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
            refused = refused_columns(table, spec)
            st.markdown(
                "**Column mapping** (auto-filled from names and units; a unit left as the task's "
                "canonical unit means the values are already in it). Under each input: what it means for the "
                "models (a column with another definition is a different quantity)."
            )
            mapping, units = {}, {}
            options = [None] + list(table.colnames)
            for q in spec.targets + spec.inputs:
                g = guess.get(q.name)
                opts = options + ([g] if g and g not in options else [])
                c1, c2, c3 = st.columns([2, 3, 2])
                c1.markdown(f"**{q.label}** {'(target)' if q in spec.targets else ''}", help=_help(q))
                if q.definition is not None:
                    c1.caption(q.definition.short() or q.definition.note)
                for note in refused.get(q.name, ()):
                    c2.caption(f":orange[not auto-mapped: {note}]")
                col = c2.selectbox(
                    q.name,
                    opts,
                    index=opts.index(g) if g in opts else 0,
                    key=f"map.{q.name}",
                    format_func=lambda c: "— not used —" if c is None else c,
                    label_visibility="collapsed",
                )
                file_unit = str(table[col].unit) if col in table.colnames and table[col].unit else ""
                unit = c3.text_input(
                    "unit",
                    value=file_unit or q.unit,
                    key=f"unit.{q.name}.{col}",
                    label_visibility="collapsed",
                    help=f"canonical unit: {q.unit or '(none)'}",
                )
                mapping[q.name] = col
                if unit != (file_unit or q.unit):
                    units[q.name] = unit
            h = _h_field(table, mapping, units)
            if st.button("Use this catalogue", type="primary", key="use_upload"):
                try:
                    cat, report = api.table_to_catalog(table, spec.name, mapping=mapping, units=units or None, h=h)
                except Exception as err:
                    ui.ss()["report"] = getattr(err, "report", None)
                    raise
                m = ui.model()  # inputs far from the loaded model's training data (else the simulator's)
                check_report(report, cat, spec.name, m if getattr(m, "task_name", None) == spec.name else None)
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
        if getattr(report, "ood_reference", ""):
            st.caption(
                f"Input distributions compared with {report.ood_reference} (median > 1 sd off or > 20% "
                "outside its 0.5-99.5% range: flagged)."
            )

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
        ui.show_figure(
            correlation_figure(cols, names, title="Pearson correlation of inputs and target"), "data_correlation"
        )
        if st.toggle("Show the pair plot (coloured by the target when known)", key="pair"):
            ui.show_figure(
                pair_plot_figure(
                    cat.x, labels, color=cat.y[:, 0] if cat.has_truth else None, color_label=spec.targets[0].label
                ),
                "pair_plot",
            )
    else:
        st.info("No catalogue yet: upload one, simulate one, or use **Load demo** on the Home page.")


def _help(q) -> str:
    """Tooltip of an input: its description and its full definition (what the training simulator produces)."""
    if q.definition is None:
        return q.description
    rows = "\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in q.definition.items())
    return f"{q.description}\n\n{rows}"


# --------------------------------------------------------------------------------------------------- posterior
def _h_field(table, mapping: dict, units: dict) -> float | None:
    """A Hubble-h field when a mapped column's unit is h-scaled (``Msun/h``); None when no unit needs one."""
    from core.data.units import has_little_h, parse_unit

    def needs_h(name: str, col) -> bool:
        u = units.get(name) or (str(table[col].unit) if col in table.colnames and table[col].unit else "")
        try:
            return bool(u) and has_little_h(parse_unit(u))
        except Exception:  # noqa: BLE001 - an unreadable unit is reported by the validation, not here
            return False

    if not any(col and needs_h(name, col) for name, col in mapping.items()):
        return None
    meta_h = table.meta.get("h", table.meta.get("HubbleParam"))
    return float(
        st.number_input(
            "Hubble h (a unit is h-scaled)",
            0.3,
            1.2,
            float(meta_h or 0.6774),
            step=0.0001,
            format="%.4f",
            key="hubble_h",
            help="little h of the simulation or survey (TNG/Planck 2015: 0.6774); from the file's metadata when it "
            "states one",
        )
    )


def posterior_page(spec, cat, m) -> None:
    from core.viz.corner import corner_figure
    from core.viz.evaluation import ppc_figure
    from core.viz.hmc import split_chains, trace_figure

    q = spec.targets[0]
    d = ui.defaults(spec.name)
    n_samples = st.select_slider(
        "Posterior draws per galaxy", list(d.draw_choices), d.interactive_draws, key="n_samples"
    )
    key = ui.results_key() + (n_samples,)
    done = ui.take_result("post")
    if done is not None:
        if done.error:
            st.error(f"Posterior failed: {done.error}")
            ui.ss()["post_key"] = key
        else:
            ui.ss()["post"], ui.ss()["post_key"] = done.result
    if ui.ss().get("post_key") != key and not ui.running("post"):
        ui.start_job(
            "post",
            f"Posteriors of {len(cat):,} galaxies ({m.name})",
            lambda j: (_posterior(m, cat, n_samples, j.progress), key),
        )
    ui.watch("post", stoppable=False)
    post = ui.ss().get("post") if ui.ss().get("post_key") == key else None
    if post is not None:
        s = post.summaries()
        cols = {"row": np.arange(len(cat)), "id": cat.ids}
        for stat in ("median", "p16", "p84", "std"):
            cols[f"{q.name}_{stat}"] = s[f"{q.name}_{stat}"]
        if cat.has_truth:
            cols[f"{q.name} (truth)"] = cat.y[:, 0]
        for k in ("typicality_p", "atypical"):  # core.metrics.typicality: inputs unlike the model's training set
            if k in post.diagnostics:
                cols[k] = np.asarray(post.diagnostics[k])
        typ = typicality_summary(post)
        if typ is not None:
            st.caption(
                f"{typ['n_atypical']:,} of {typ['n_scored']:,} galaxies ({100 * typ['fraction_atypical']:.1f}%) are "
                f"atypical of the model's training inputs (typicality_p < {typ['alpha']:g}; ~{100 * typ['alpha']:g}% "
                "expected by chance): their posteriors extrapolate."
            )
        search = st.text_input("Search galaxies by id", key="search", placeholder="e.g. 1234")
        hit = np.array([search.strip() in str(i) for i in cat.ids]) if search.strip() else np.ones(len(cat), bool)
        st.dataframe(ui.frame({k: v[hit] for k, v in cols.items()}), hide_index=True, height=260, key="summary_table")
        rows = np.flatnonzero(hit)[:1000]
        if rows.size == 0:
            st.warning("No galaxy matches this search.")
            st.stop()
        i = int(st.selectbox("Galaxy", rows, key="galaxy_row", format_func=lambda r: f"id {cat.ids[r]}"))
        one = cat.subset([i])
        exact_all = ui.ss().setdefault("exact_one", {})
        ekey = (ui.ss().get("data_version"), i)
        if ekey not in exact_all:
            exact_all[ekey] = ui.on_engine(api.exact_posterior, one)
        exact = exact_all[ekey]
        truth = float(cat.y[i, 0]) if cat.has_truth else None
        draws = post.subset([i]).sample(n_samples, seed=0)[0]
        ui.show_figure(
            corner_figure(
                draws,
                [f"{q.label} [{q.unit}]"],
                truths=None if truth is None else [truth],
                exact_grid=None if exact is None else exact.grid,
                exact_pdf=None if exact is None else exact.pdf[0],
                title=f"Galaxy {cat.ids[i]} — {post.method}",
            ),
            "galaxy_posterior",
        )
        if exact is None:
            st.caption("No exact posterior: these data were not simulated by a simulator that has one.")

        st.subheader("Refine with HMC")
        if st.button("Refine with HMC (NUTS)", key="hmc", disabled=ui.running("hmc")):
            hm = m if api.capabilities(m).hmc_refine else ui.bundled_model(spec.name, _model_with(spec, "hmc_refine"))
            ui.start_job(
                "hmc",
                f"NUTS for galaxy {cat.ids[i]}",
                lambda j: (api.refine_hmc(hm, one, seed=0, progress=j.progress), i),
            )
        if ui.running("hmc"):
            ui.job_panel("hmc", stoppable=False)
        done = ui.take_result("hmc")
        if done is not None:
            (st.error(f"HMC failed: {done.error}") if done.error else ui.ss().__setitem__("hmc_result", done.result))
        hmc = ui.ss().get("hmc_result")
        if hmc is not None and hmc[1] == i:
            hp = hmc[0]
            d = {k: float(np.asarray(v)[0]) for k, v in hp.diagnostics.items() if np.ndim(v) == 1}
            c1, c2, c3 = st.columns(3)
            c1.metric("R-hat", f"{d.get('rhat', np.nan):.3f}", help="< 1.01 means the chains agree")
            c2.metric("ESS (bulk)", f"{d.get('ess', np.nan):.0f}")
            c3.metric("divergences", f"{d.get('divergences', 0):.0f}")
            ui.show_figure(
                corner_figure(
                    hp.samples[0],
                    [f"{q.label} [{q.unit}]"],
                    truths=None if truth is None else [truth],
                    exact_grid=None if exact is None else exact.grid,
                    exact_pdf=None if exact is None else exact.pdf[0],
                    title=f"Galaxy {cat.ids[i]} — NUTS",
                ),
                "hmc_posterior",
            )
            ui.show_figure(trace_figure(split_chains(hp.samples[0], hp.info.get("chains", 1)), [q.label]), "hmc_trace")

        st.subheader("Posterior predictive check")
        if st.button("Simulate x from the posterior", key="ppc"):
            lik = (
                m
                if api.capabilities(m).posterior_predictive
                else ui.bundled_model(spec.name, _model_with(spec, "posterior_predictive"))
            )
            src = hmc[0] if hmc is not None and hmc[1] == i else post.subset([i])
            x_rep = ui.on_engine(api.posterior_predictive, lik, one, src, n=500, seed=0)
            ui.ss()["ppc_result"] = (i, x_rep[0], one.select_features(lik.features).x[0], lik.features, lik.name)
        ppc = ui.ss().get("ppc_result")
        if ppc is not None and ppc[0] == i:
            labels = [spec.input(f).label for f in ppc[3]]
            ui.show_figure(
                ppc_figure(
                    ppc[2], ppc[1], labels, title=f"Observed x (red) vs x replicated by the {ppc[4]} likelihood"
                ),
                "ppc",
            )


# --------------------------------------------------------------------------------------------------- evaluation
def evaluation_page(spec, cat, m, ev) -> None:
    from core.metrics.calibration import calibration_curves
    from core.viz.calibration import coverage_figure, pit_figure
    from core.viz.data import correlation_figure
    from core.viz.evaluation import importance_figure, methods_figure
    from core.viz.residuals import pred_vs_true_figure, residual_histogram_figure, residuals_vs_inputs_figure

    q = spec.targets[0]
    key = ui.results_key()

    def work(j):
        post = _posterior(m, ev, ui.defaults(spec.name).draws, j.progress)
        exact = api.exact_posterior(ev)
        return {"key": key, "post": post, "exact": exact, **api.evaluate(post, ev, exact)}

    res = ui.keyed_job("eval", key, f"Scoring {m.name} on {len(ev):,} galaxies", work)
    if res is not None:
        post, exact, truth = res["post"], res["exact"], ev.y[:, 0]
        sc = {k: v for k, v in res["scores"].items() if isinstance(v, (int, float))}
        cols = st.columns(5)
        for c, k in zip(cols, ("rmse", "bias", "coverage_68", "crps", "rmse_ratio")):
            if k in sc:
                c.metric(k, f"{sc[k]:.3f}")
        with st.expander("All scores"):
            st.dataframe(ui.rows_frame([{"metric": k, "value": v} for k, v in sc.items()]), hide_index=True)
        typ = typicality_summary(post)
        if typ is not None:
            from core.metrics.typicality import scores_by_typicality

            st.subheader("Typical vs atypical inputs")
            st.caption(
                f"{typ['n_atypical']:,} of {typ['n_scored']:,} galaxies ({100 * typ['fraction_atypical']:.1f}%) "
                f"flagged atypical of the training inputs (typicality_p < {typ['alpha']:g})."
            )
            st.dataframe(ui.rows_frame(scores_by_typicality(post, truth)), hide_index=True, key="typicality_scores")
        st.subheader(f"Per {q.label} bin")
        st.dataframe(ui.rows_frame(res["per_bin"]), hide_index=True, key="per_bin")
        s = post.summaries()
        med = s[f"{q.name}_median"]
        ui.show_figure(
            pred_vs_true_figure(truth, med, s[f"{q.name}_p16"], s[f"{q.name}_p84"], label=q.label), "pred_vs_true"
        )
        c1, c2 = st.columns(2)
        with c1:
            curves, pits = calibration_curves({m.name: post, **({"exact": exact} if exact is not None else {})}, truth)
            ui.show_figure(coverage_figure(curves), "coverage")
        with c2:
            ui.show_figure(pit_figure(pits), "pit")
        ui.show_figure(residual_histogram_figure(med - truth, label=f"median - true {q.label}"), "residual_hist")
        labels = [spec.input(f).label for f in ev.features]
        ui.show_figure(residuals_vs_inputs_figure(ev.x, labels, med - truth), "residuals_vs_inputs")
        ui.show_figure(
            correlation_figure(
                np.column_stack([ev.x, truth]), labels + [q.label], title="Pearson correlation of inputs and target"
            ),
            "correlation",
        )

        st.subheader("All methods side by side")
        c1, c2 = st.columns(2)
        if c1.button("Run every available method on these galaxies", key="run_methods", disabled=ui.running("methods")):
            ui.start_job("methods", "Running every method", lambda j: ui.compare_methods(spec, cat, ev, m, j))
        bench = c2.file_uploader("…or load a benchmark JSON (python -m core bench)", type=["json"], key="bench_upload")
        if bench is not None:
            b = json.loads(bench.getvalue().decode("utf-8"))
            ui.ss()["methods"] = {
                "scores": b.get("methods", {}),
                "notes": [f"from {bench.name}"],
                "importance": None,
                "n": b.get("n_test"),
            }
        if ui.running("methods"):
            ui.job_panel("methods")
        done = ui.take_result("methods")
        if done is not None:
            (st.error(done.error) if done.error else ui.ss().__setitem__("methods", done.result))
        meth = ui.ss().get("methods")
        if meth and meth.get("scores"):
            rows = [{"method": k, **v} for k, v in meth["scores"].items()]
            st.dataframe(ui.rows_frame(rows), hide_index=True, key="methods_table")
            ui.show_figure(methods_figure(meth["scores"]), "methods")
        for note in (meth or {}).get("notes", []):
            st.caption(note)
        imp = ui.on_engine(api.feature_importance, m) or (meth or {}).get("importance")
        if imp:
            ui.show_figure(importance_figure(imp), "lightgbm_importance")
        else:
            st.caption("LightGBM gain importance appears once a LightGBM model is current or has been run above.")


# --------------------------------------------------------------------------------------------------- home demo
def demo(spec) -> dict:
    """Load the demo catalogue and the bundled default checkpoint; the first galaxy's posterior (+ exact)."""
    pick = spec.name
    cat = ui.demo_data(pick)
    m = ui.bundled_model(pick)
    ui.set_data(cat, "demo catalogue (simulated)")
    ui.set_model(m, f"bundled {m.name}")
    one = cat.subset(slice(0, 1))
    post = ui.on_engine(api.posterior, m, one, n_samples=ui.defaults(pick).demo_draws, seed=0)
    return {"index": 0, "post": post, "exact": ui.on_engine(api.exact_posterior, one)}


def demo_result(spec, g: dict) -> None:
    """The demo galaxy's corner plot and a one-line summary."""
    from core.viz.corner import corner_figure

    cat = ui.data()
    post, exact = g["post"], g["exact"]
    q = spec.targets[0]
    truth = cat.y[0, 0] if cat.has_truth else None
    fig = corner_figure(
        post.samples[0],
        [f"{q.label} [{q.unit}]"],
        truths=None if truth is None else [truth],
        exact_grid=None if exact is None else exact.grid,
        exact_pdf=None if exact is None else exact.pdf[0],
        title=f"Galaxy {cat.ids[0]}: posterior of {q.label} ({post.method})",
    )
    ui.show_figure(fig, "demo_posterior", key="demo-corner")
    s = post.summaries()
    name = spec.targets[0].name
    st.success(
        f"First posterior on screen {ui.demo_seconds()}: {q.label} = "
        f"{s[name + '_median'][0]:.2f} (+{s[name + '_p84'][0] - s[name + '_median'][0]:.2f} / "
        f"-{s[name + '_median'][0] - s[name + '_p16'][0]:.2f})" + (f", truth {truth:.2f}" if truth is not None else ""),
        icon=":material/check_circle:",
    )
    st.page_link("pages/3_posterior.py", label="See every galaxy on the Posterior page", icon=":material/insights:")


def _posterior(m, cat, n_samples: int, progress):
    """Posteriors of every galaxy of ``cat`` with their typicality scores (``typicality_p``, ``atypical``)."""
    from core.metrics.typicality import annotate

    return annotate(m, cat, api.posterior(m, cat, n_samples=n_samples, seed=0, progress=progress))


def typicality_summary(post):
    from core.metrics.typicality import summary

    return summary(post)


def _model_with(spec, flag: str) -> str | None:
    """The first model of the task whose registered capabilities have ``flag`` (e.g. "hmc_refine")."""
    return next((s.name for s in api.list_models(spec.name) if getattr(s.capabilities, flag)), None)
