"""The Model page's panels (generic over tasks): bundled checkpoints, training with live loss curves and Stop,
checkpoint upload with its card, and the current model (loss curves, card, download)."""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_ui as ui
from core import api


def bundled_tab(spec) -> None:
    items = api.bundled_checkpoints(spec.name)
    if not items:
        st.info("No bundled checkpoint for this task in this installation.")
    else:
        rows = [
            {
                "file": i["file"],
                "model": i["model"],
                "created": str(i["metadata"].get("created", ""))[:10],
                "features": len(i["metadata"].get("features", [])),
                **{
                    k: v
                    for k, v in (i["metadata"].get("test_metrics") or {}).items()
                    if k
                    in (
                        "rmse",
                        "coverage_68",
                        "crps",
                        "rmse_ratio",
                        "mae_pixel",
                        "coverage_68_pixel",
                        "coverage_95_pixel",
                    )
                },
            }
            for i in items
        ]
        st.dataframe(ui.rows_frame(rows), hide_index=True, key="bundled_table")
        pick = st.selectbox("Checkpoint", [i["file"] for i in items], key="bundled_pick")
        if st.button("Load this checkpoint", key="load_bundled"):
            item = next(i for i in items if i["file"] == pick)
            ui.set_model(ui.on_engine(api.load_checkpoint, item["path"], expected_task=spec.name), f"bundled {pick}")
            st.rerun()


def train_tab(spec, dev: str) -> None:
    from core.viz.training import loss_curves_figure

    cat = ui.data()
    if ui.need(cat, "Training needs labelled data: simulate a set or upload one on the Data page.", "pages/1_data.py"):
        usable = []
        for s in api.list_models(spec.name):
            try:
                s.config_class()
                usable.append(s)
            except ImportError:
                st.caption(f"{s.name}: not available in this installation")
        usable.sort(key=lambda s: spec.methods.index(s.name) if s.name in spec.methods else 99)
        names = [s.name for s in usable]
        name = st.selectbox(
            "Model",
            names,
            key="train_model",
            help="first listed: the task's default",
            format_func=lambda n: f"{n} — {usable[names.index(n)].title}",
        )
        ms = usable[names.index(name)]
        st.caption(ms.description)
        feats = st.multiselect("Input features", list(cat.features), default=list(cat.features), key="train_features")
        adv = st.toggle("Show advanced settings", key="train_adv")
        values = ui.config_form(ms.config_class(), f"cfg.{name}", show_advanced=adv)
        if st.button("Train", type="primary", key="train", disabled=ui.running("train")):
            cfg = ms.config_class().from_dict(values)
            tr, va, te = api.split(cat, (0.8, 0.1, 0.1), seed=0)
            ui.ss()["pending_test_index"] = np.isin(cat.ids, te.ids)
            fp = cat.fingerprint()
            ui.start_job(
                "train",
                f"Training {name}",
                lambda j: (
                    api.train(
                        spec.name,
                        name,
                        tr,
                        cfg,
                        features=feats,
                        val=va,
                        callbacks=[j.epoch],
                        stop=j.stop,
                        device=None if dev == "auto" else dev,
                    ),
                    fp,
                ),
                cancel_on_leave=False,  # training runs on, detached, when the user looks at other pages
            )

        def live(j):
            if j.reports:
                r = j.reports[-1]
                st.caption(
                    f"epoch {r['epoch'] + 1}/{r['epochs']}: train {r['train_loss']:.4f}, "
                    f"validation {r['val_loss']:.4f} (best {r['best_val_loss']:.4f} at epoch "
                    f"{r['best_epoch'] + 1})"
                )
                st.plotly_chart(loss_curves_figure(j.reports, best_epoch=r["best_epoch"]), key="live_loss")

        if ui.running("train"):
            ui.job_panel("train", live=live, every=1.5)  # a slower redraw leaves the cores to the training
        done = ui.take_result("train")
        if done is not None:
            if done.error:
                st.error(f"Training failed: {done.error}")
            else:
                m, fp = done.result
                ui.set_model(m, f"{m.name} (trained here)", trained_on=fp)
                ui.ss()["test_index"] = ui.ss().pop("pending_test_index", None)
                ui.ss()["train_note"] = (
                    f"Trained {m.name} in {done.seconds:.1f} s: {m.history.get('stopped_reason', 'done')}."
                )
                st.rerun()


def upload_tab(spec) -> None:
    f = st.file_uploader("Checkpoint file (.gps)", type=["gps", "zip"], key="ckpt_upload")
    if f is not None:
        if ui.ss().get("pending_name") != (f.name, f.size):
            ui.ss()["pending_model"] = None
            ui.ss()["pending_model"] = ui.on_engine(
                api.load_checkpoint, f.getvalue(), name=f.name, expected_task=spec.name
            )
            ui.ss()["pending_name"] = (f.name, f.size)
        pending = ui.ss()["pending_model"]
        st.success(f"{f.name}: a valid {pending.name} checkpoint for {spec.name}. Check its card before use.")
        ui.model_card(pending.card)
        if st.button("Use this model", type="primary", key="use_uploaded"):
            ui.set_model(pending, f"uploaded {f.name}")
            st.rerun()


def current_model(spec) -> None:
    from core.viz.training import loss_curves_figure

    m = ui.model()
    st.divider()
    st.subheader("Current model")
    if ui.ss().get("train_note"):
        st.success(ui.ss()["train_note"])
    if ui.need(m, "No model yet: load a bundled checkpoint, train one or upload one."):
        st.write(f"**{ui.ss().get('model_label')}** — inputs: {', '.join(m.features)}")
        hist = m.history if isinstance(m.history, dict) else {}
        # one loss history, or one per training stage (the ex-situ model: "cvae" then "flow")
        stages = (
            {"": hist}
            if hist.get("epochs")
            else {k: v for k, v in hist.items() if isinstance(v, dict) and v.get("epochs")}
        )
        for stage, h in stages.items():
            ui.show_figure(
                loss_curves_figure(
                    h["epochs"], best_epoch=h.get("best_epoch"), title=f"Loss of {m.name} {stage}".strip()
                ),
                f"training_loss{stage}",
            )
            st.caption(
                f"{stage + ': ' if stage else ''}stopped: {h.get('stopped_reason', '—')}; best epoch "
                f"{(h.get('best_epoch') or 0) + 1}; device {h.get('device', hist.get('device', '—'))}; "
                f"{h.get('seconds', 0):.1f} s."
            )
        if m.card and "format" in m.card:
            with st.expander("Model card"):
                ui.model_card(m.card)
        key = ("ckpt", ui.ss().get("model_version"))
        if ui.ss().get("ckpt_bytes", (None,))[0] != key:
            scores = (ui.ss().get("eval") or {}).get("scores")
            ui.ss()["ckpt_bytes"] = (key, ui.on_engine(api.checkpoint_bytes, m, test_metrics=scores))
        st.download_button(
            "Download checkpoint",
            ui.ss()["ckpt_bytes"][1],
            file_name=f"{spec.name}_{m.name}.gps",
            mime="application/zip",
            icon=":material/download:",
            key="download_ckpt",
        )
