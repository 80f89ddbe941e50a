"""Posterior: summaries of every galaxy (searchable), the chosen galaxy's corner plot, HMC refinement, PPC."""

import numpy as np
import streamlit as st

import ui
import ui_maps
from core import api
from core.viz.corner import corner_figure
from core.viz.evaluation import ppc_figure
from core.viz.hmc import split_chains, trace_figure

st.title("Posterior")
with ui.guard("Posterior"):
    spec, cat, m = ui.task(), ui.data(), ui.model()
    if ui.need(cat, "Load or simulate a catalogue first (or use Load demo on Home).", "pages/1_data.py") and \
            ui.need(m, "Load, train or upload a model first.", "pages/2_model.py"):
        if ui_maps.is_maps(spec):
            ui_maps.posterior_page(spec, cat, m)
            st.stop()
        q = spec.targets[0]
        n_samples = st.select_slider("Posterior draws per galaxy", [200, 500, 1000, 2000, 4000], 1000,
                                     key="n_samples")
        key = ui.results_key() + (n_samples,)
        done = ui.take_result("post")
        if done is not None:
            if done.error:
                st.error(f"Posterior failed: {done.error}")
                ui.ss()["post_key"] = key
            else:
                ui.ss()["post"], ui.ss()["post_key"] = done.result
        if ui.ss().get("post_key") != key and not ui.running("post"):
            ui.start_job("post", f"Posteriors of {len(cat):,} galaxies ({m.name})",
                         lambda j: (api.posterior(m, cat, n_samples=n_samples, seed=0, progress=j.progress), key))
        if ui.running("post"):
            ui.job_panel("post", stoppable=False)
        post = ui.ss().get("post") if ui.ss().get("post_key") == key else None
        if post is not None:
            s = post.summaries()
            cols = {"row": np.arange(len(cat)), "id": cat.ids}
            for stat in ("median", "p16", "p84", "std"):
                cols[f"{q.name}_{stat}"] = s[f"{q.name}_{stat}"]
            if cat.has_truth:
                cols[f"{q.name} (truth)"] = cat.y[:, 0]
            search = st.text_input("Search galaxies by id", key="search", placeholder="e.g. 1234")
            hit = np.array([search.strip() in str(i) for i in cat.ids]) if search.strip() else np.ones(len(cat), bool)
            st.dataframe(ui.frame({k: v[hit] for k, v in cols.items()}), hide_index=True, height=260,
                         key="summary_table")
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
            ui.show_figure(corner_figure(draws, [f"{q.label} [{q.unit}]"], truths=None if truth is None else [truth],
                                         exact_grid=None if exact is None else exact.grid,
                                         exact_pdf=None if exact is None else exact.pdf[0],
                                         title=f"Galaxy {cat.ids[i]} — {post.method}"), "galaxy_posterior")
            if exact is None:
                st.caption("No exact posterior: these data were not simulated by a simulator that has one.")

            st.subheader("Refine with HMC")
            if st.button("Refine with HMC (NUTS)", key="hmc", disabled=ui.running("hmc")):
                hm = m if m.name == "vae_hmc" or hasattr(m, "run_hmc") else ui.bundled_model(spec.name, "vae_hmc")
                ui.start_job("hmc", f"NUTS for galaxy {cat.ids[i]}", lambda j: (
                    api.refine_hmc(hm, one, seed=0, progress=j.progress), i))
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
                ui.show_figure(corner_figure(hp.samples[0], [f"{q.label} [{q.unit}]"],
                                             truths=None if truth is None else [truth],
                                             exact_grid=None if exact is None else exact.grid,
                                             exact_pdf=None if exact is None else exact.pdf[0],
                                             title=f"Galaxy {cat.ids[i]} — NUTS"), "hmc_posterior")
                ui.show_figure(trace_figure(split_chains(hp.samples[0], hp.info.get("chains", 1)), [q.label]),
                               "hmc_trace")

            st.subheader("Posterior predictive check")
            if st.button("Simulate x from the posterior", key="ppc"):
                lik = m if hasattr(m, "posterior_predictive") else ui.bundled_model(spec.name, "vae_hmc")
                src = hmc[0] if hmc is not None and hmc[1] == i else post.subset([i])
                x_rep = ui.on_engine(api.posterior_predictive, lik, one, src, n=500, seed=0)
                ui.ss()["ppc_result"] = (i, x_rep[0], one.select_features(lik.features).x[0], lik.features, lik.name)
            ppc = ui.ss().get("ppc_result")
            if ppc is not None and ppc[0] == i:
                labels = [spec.input(f).label for f in ppc[3]]
                ui.show_figure(ppc_figure(ppc[2], ppc[1], labels,
                                          title=f"Observed x (red) vs x replicated by the {ppc[4]} likelihood"),
                               "ppc")
