"""Evaluation (truth known): predicted vs true, residuals, coverage and PIT, per-bin table, all methods, importance."""

import json

import numpy as np
import streamlit as st

import ui
import ui_maps
from core import api
from core.metrics.calibration import coverage_curve, pit
from core.viz.calibration import coverage_figure, pit_figure
from core.viz.data import correlation_figure
from core.viz.evaluation import importance_figure, methods_figure
from core.viz.residuals import pred_vs_true_figure, residual_histogram_figure, residuals_vs_inputs_figure

st.title("Evaluation")
with ui.guard("Evaluation"):
    spec, cat, m = ui.task(), ui.data(), ui.model()
    ok = ui.need(cat, "Load or simulate a labelled catalogue first.", "pages/1_data.py") and \
        ui.need(m, "Load, train or upload a model first.", "pages/2_model.py")
    if ok and not cat.has_truth:
        st.info("Evaluation needs the true target values: map a target column on the Data page or simulate data.")
        ok = False
    if ok:
        ev = ui.eval_data()
        q = spec.targets[0]
        st.caption(f"Scored on {len(ev):,} objects "
                   + ("(the held-out test part of the data the model was trained on)." if len(ev) < len(cat)
                      else "(all of the current data; the model was not trained on them here)."))
        if ui_maps.is_maps(spec):
            ui_maps.evaluation_page(spec, cat, m, ev)
            st.stop()
        key = ui.results_key()

        def work(j):
            post = api.posterior(m, ev, n_samples=1000, seed=0, progress=j.progress)
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
            st.subheader(f"Per {q.label} bin")
            st.dataframe(ui.rows_frame(res["per_bin"]), hide_index=True, key="per_bin")
            s = post.summaries()
            med = s[f"{q.name}_median"]
            ui.show_figure(pred_vs_true_figure(truth, med, s[f"{q.name}_p16"], s[f"{q.name}_p84"],
                                               label=q.label), "pred_vs_true")
            c1, c2 = st.columns(2)
            with c1:
                curves = {m.name: coverage_curve(post, truth)}
                pits = {m.name: pit(post, truth)[:, 0]}
                if exact is not None:
                    curves["exact"], pits["exact"] = coverage_curve(exact, truth), pit(exact, truth)[:, 0]
                ui.show_figure(coverage_figure({k: (lv, np.ravel(cv)) for k, (lv, cv) in curves.items()}),
                               "coverage")
            with c2:
                ui.show_figure(pit_figure(pits), "pit")
            ui.show_figure(residual_histogram_figure(med - truth, label=f"median - true {q.label}"), "residual_hist")
            labels = [spec.input(f).label for f in ev.features]
            ui.show_figure(residuals_vs_inputs_figure(ev.x, labels, med - truth), "residuals_vs_inputs")
            ui.show_figure(correlation_figure(np.column_stack([ev.x, truth]), labels + [q.label],
                                              title="Pearson correlation of inputs and target"), "correlation")

            st.subheader("All methods side by side")
            c1, c2 = st.columns(2)
            if c1.button("Run every available method on these galaxies", key="run_methods",
                         disabled=ui.running("methods")):
                ui.start_job("methods", "Running every method", lambda j: ui.compare_methods(spec, cat, ev, m, j))
            bench = c2.file_uploader("…or load a benchmark JSON (python -m core bench)", type=["json"],
                                     key="bench_upload")
            if bench is not None:
                b = json.loads(bench.getvalue().decode("utf-8"))
                ui.ss()["methods"] = {"scores": b.get("methods", {}), "notes": [f"from {bench.name}"],
                                      "importance": None, "n": b.get("n_test")}
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
            imp = ui.on_engine(m.feature_importance, kind="gain") if hasattr(m, "feature_importance") else \
                (meth or {}).get("importance")
            if imp:
                ui.show_figure(importance_figure(imp), "lightgbm_importance")
            else:
                st.caption("LightGBM gain importance appears once a LightGBM model is current or has been run above.")
