"""The photometry view (data kind "photometry", task photoz): colour plots of a photometric catalogue, p(z) per
galaxy with the exact p(z) on mocks, z-age contours and multi-modality flags, z_phot vs z_spec, PIT and per-bin
metrics. Numbers come from :mod:`core.tasks.photoz.metrics`, figures from :mod:`core.tasks.photoz.viz`; the Export
page writes p(z) on a grid through the task's writer."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

import app_ui as ui
from core import api

NOUN = "photometric catalogue"
TYPES = ["train", "txt", "dat", "csv", "ecsv", "fits", "fit", "gz", "h5", "hdf5", "parquet", "pq"]


def _mags(cat) -> dict[str, np.ndarray]:
    return {f[4:]: cat.column(f) for f in cat.features if f.startswith("mag_")}


def _z_true(cat) -> np.ndarray | None:
    return cat.y[:, cat.targets.index("z")] if cat.has_truth and "z" in cat.targets else None


# --------------------------------------------------------------------------------------------------- data
def data_page(spec) -> None:
    from core.tasks.photoz.viz import colour_colour, colour_redshift

    up_tab, sim_tab = st.tabs(["Upload a photometric catalogue", "Simulate mock photometry"])
    with up_tab:
        f = st.file_uploader(
            "ugriz magnitudes + errors (or fluxes), optional spec-z: MLZ / ANNz text tables, CSV, FITS, HDF5, Parquet",
            type=TYPES,
            key="upload",
        )
        if f is not None:
            raw = f.getvalue()
            digest = hashlib.sha256(raw).hexdigest()[:16]
            if ui.ss().get("table_digest") != digest:
                ui.set_data(api.read_data(raw, spec.name, filename=f.name), f.name)  # a GPSError shows as a message
                ui.ss()["table_digest"] = digest
                st.rerun()
    with sim_tab:
        ui.simulate_tab(spec, "sim", "Number of galaxies", 5000, 2_000_000, 1000)

    cat = ui.data()
    if cat is None:
        st.info("No catalogue yet: upload one, simulate one, or use **Load demo** on the Home page.")
        return
    st.subheader(f"Current catalogue: {ui.ss().get('data_label')}")
    z = _z_true(cat)
    bad = np.asarray(cat.extra.get("flag_bad", np.zeros(len(cat), bool)), bool)
    c1, c2, c3 = st.columns(3)
    c1.metric("galaxies", f"{len(cat):,}")
    c2.metric("flagged photometry", f"{int(bad.sum()):,}", help="99/-99 sentinels, negative errors, NaN")
    c3.metric("redshift", "yes" if z is not None else "no")
    st.dataframe(ui.catalog_frame(cat, rows=500), hide_index=True, key="preview", height=260)
    mags = _mags(cat)
    if {"g", "r", "i"} <= set(mags):
        ui.show_figure(colour_colour(mags, color=z), "colour_colour")
        if z is not None:
            ui.show_figure(colour_redshift(mags, z), "colour_redshift")


# --------------------------------------------------------------------------------------------------- posterior
def posterior_page(spec, cat, m) -> None:
    from core.tasks.photoz.metrics import pz_summary
    from core.tasks.photoz.viz import pz_figure, z_age_contours
    from core.tasks.photoz.writer import DEFAULT_GRID

    d = ui.defaults(spec.name)
    n_samples = st.select_slider(
        "Posterior draws per galaxy", list(d.draw_choices), d.interactive_draws, key="n_samples"
    )
    key = ui.results_key() + (n_samples,)

    def work(j):
        from core.metrics.typicality import annotate  # typicality_p / atypical per galaxy (table and export)

        post = annotate(m, cat, api.posterior(m, cat, n_samples=n_samples, seed=0, progress=j.progress))
        return {"key": key, "post": post, "summary": pz_summary(post, DEFAULT_GRID)}

    res = ui.keyed_job("post_pz", key, f"p(z) of {len(cat):,} galaxies ({m.name})", work)
    if res is None:
        return
    post, s = res["post"], res["summary"]
    ui.ss()["post"], ui.ss()["post_key"] = post, key  # the Export page writes this posterior
    multi = s["n_peaks"] > 1
    st.metric("multi-modal p(z)", f"{int(multi.sum()):,} of {len(cat):,}", help="galaxies whose p(z) has >1 peak")
    cols = {"row": np.arange(len(cat)), "id": cat.ids}
    cols.update({k: s[k] for k in ("z_median", "z_p16", "z_p84", "z_mode", "n_peaks")})
    z = _z_true(cat)
    if z is not None:
        cols["z (truth)"] = z
    cols.update({k: np.asarray(post.diagnostics[k]) for k in ("typicality_p", "atypical") if k in post.diagnostics})
    only = st.toggle("Only multi-modal galaxies", key="only_multi")
    rows = np.flatnonzero(multi) if only else np.arange(len(cat))
    st.dataframe(ui.frame({k: v[rows] for k, v in cols.items()}), hide_index=True, height=260, key="summary_table")
    if rows.size == 0:
        st.info("No galaxy has a multi-modal p(z).")
        return
    i = int(st.selectbox("Galaxy", rows[:1000], key="galaxy_row", format_func=lambda r: f"id {cat.ids[r]}"))
    one = cat.subset([i])
    exact = ui.on_engine(api.exact_posterior, one)
    npk = int(s["n_peaks"][i])
    if npk > 1:
        st.warning(f"p(z) of galaxy {cat.ids[i]} is multi-modal ({npk} peaks): its median can fall between them.")
    ui.show_figure(
        pz_figure(
            DEFAULT_GRID,
            s["pz"][i],
            exact_pdf=None if exact is None else exact.pdf[0],
            exact_grid=None if exact is None else exact.grid,
            z_true=None if z is None else float(z[i]),
            n_peaks=npk,
            title=f"Galaxy {cat.ids[i]}: p(z) ({post.method})",
        ),
        "pz",
    )
    if exact is None:
        st.caption("No exact p(z): these data were not simulated by the photometry simulator.")
    if post.samples is not None and "age" in post.params:
        zj, aj = post.params.index("z"), post.params.index("age")
        has = cat.has_truth and {"z", "age"} <= set(cat.targets)
        truth = (float(cat.y[i, cat.targets.index("z")]), float(cat.y[i, cat.targets.index("age")])) if has else None
        ui.show_figure(z_age_contours(post.samples[i, :, zj], post.samples[i, :, aj], truth=truth), "z_age")
    else:
        st.caption(f"The {m.name} model gives p(z) only; mmvae and exact give the joint (z, age, ...) posterior.")


# --------------------------------------------------------------------------------------------------- evaluation
def evaluation_page(spec, cat, m, ev) -> None:
    from core.tasks.photoz.metrics import score, score_groups, z_pit
    from core.tasks.photoz.viz import pit_histogram, zphot_zspec

    z = _z_true(ev)
    if z is None:
        st.info("Evaluation needs spectroscopic redshifts (a z_spec column) or simulated data.")
        return
    key = ui.results_key()

    def work(j):
        post = api.posterior(m, ev, n_samples=ui.defaults(spec.name).draws, seed=0, progress=j.progress)
        exact = api.exact_posterior(ev)
        q = post.quantiles([0.5, 0.16, 0.84])[:, :, post.params.index("z")]
        mags = _mags(ev)
        groups = score_groups(post, z, mags["u"], mags["r"]) if {"u", "r"} <= set(mags) else {}
        return {"key": key, "q": q, "scores": score(post, z, exact), "groups": groups, "pit": z_pit(post, z)}

    res = ui.keyed_job("eval_pz", key, f"Scoring {m.name} on {len(ev):,} galaxies", work)
    if res is None:
        return
    sc = res["scores"]
    cols = st.columns(5)
    for c, k in zip(cols, ("sigma_nmad", "outlier_frac", "bias", "coverage_68", "pit_ks_p")):
        c.metric(k, f"{sc.get(k, np.nan):.4f}")
    with st.expander("All scores"):
        st.dataframe(ui.rows_frame([{"metric": k, "value": v} for k, v in sc.items()]), hide_index=True)
    q = res["q"]
    ui.show_figure(zphot_zspec(q[:, 0], z, err_lo=q[:, 1], err_hi=q[:, 2]), "zphot_zspec")
    ui.show_figure(pit_histogram(res["pit"], title=f"PIT of {m.name}"), "pit")
    st.subheader("Per redshift bin and galaxy type")
    st.dataframe(ui.rows_frame([{"subset": k, **v} for k, v in res["groups"].items()]), hide_index=True, key="per_bin")
    st.caption(
        "sigma_NMAD = 1.4826 median(|dz - median(dz)|), dz = (z_phot - z_spec)/(1 + z_spec); outliers: |dz| > 0.15."
    )


# --------------------------------------------------------------------------------------------------- home demo
def demo(spec) -> dict:
    """The demo mock catalogue and the bundled default model; the first galaxy's p(z) (+ exact)."""
    cat = ui.demo_data(spec.name)
    m = ui.bundled_model(spec.name)
    ui.set_data(cat, "demo mock photometry (simulated)")
    ui.set_model(m, f"bundled {m.name}")
    one = cat.subset(slice(0, 1))
    post = ui.on_engine(api.posterior, m, one, n_samples=ui.defaults(spec.name).demo_draws, seed=0)
    return {"index": 0, "post": post, "exact": ui.on_engine(api.exact_posterior, one)}


def demo_result(spec, g: dict) -> None:
    """The demo galaxy's p(z) with the exact p(z) and a one-line summary."""
    from core.tasks.photoz.metrics import pz_summary
    from core.tasks.photoz.viz import pz_figure
    from core.tasks.photoz.writer import DEFAULT_GRID

    cat, post, exact = ui.data(), g["post"], g["exact"]
    s = pz_summary(post, DEFAULT_GRID)
    z = _z_true(cat)
    zt = None if z is None else float(z[0])
    fig = pz_figure(
        DEFAULT_GRID,
        s["pz"][0],
        exact_pdf=None if exact is None else exact.pdf[0],
        exact_grid=None if exact is None else exact.grid,
        z_true=zt,
        n_peaks=int(s["n_peaks"][0]),
        title=f"Galaxy {cat.ids[0]}: p(z) ({post.method})",
    )
    ui.show_figure(fig, "demo_posterior", key="demo-pz")
    med, lo, hi = s["z_median"][0], s["z_p16"][0], s["z_p84"][0]
    st.success(
        f"First posterior on screen {ui.demo_seconds()}: z = {med:.3f} (+{hi - med:.3f} / "
        f"-{med - lo:.3f})" + (f", truth {zt:.3f}" if zt is not None else ""),
        icon=":material/check_circle:",
    )
    st.page_link("pages/3_posterior.py", label="See every galaxy on the Posterior page", icon=":material/insights:")
