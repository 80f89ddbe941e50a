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
    cat = ui.data()
    st.caption(
        "Train on your own labelled catalogue (TNG, EAGLE, your simulation): upload it on the Data page and map its "
        "truth column there, then train from scratch or fine-tune a bundled model here (80/10/10 split, early "
        "stopping on the validation part, scores on the held-out part)."
    )
    if ui.need(cat, "Training needs labelled data: simulate a set or upload one on the Data page.", "pages/1_data.py"):
        start = _start_choice(spec)
        if start is not None:
            _finetune_form(spec, cat, dev, start)
            _train_result(spec)
            return
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

            def work(j):
                from core.metrics.typicality import attach_reference

                m = api.train(
                    spec.name,
                    name,
                    tr,
                    cfg,
                    features=feats,
                    val=va,
                    callbacks=[j.epoch],
                    stop=j.stop,
                    device=None if dev == "auto" else dev,
                )
                attach_reference(m, tr)  # the typicality score's reference, saved with the checkpoint
                m.card["test_metrics"] = _held_out(spec, m, te)
                return m, fp

            # training runs on, detached, when the user looks at other pages
            ui.start_job("train", f"Training {name}", work, cancel_on_leave=False)
        _train_result(spec)


def _start_choice(spec):
    """None (from scratch) or the bundled checkpoint item to fine-tune (models whose training can continue)."""
    from core.tasks.base import get_model_spec

    def warm(name: str) -> bool:
        try:
            return bool(getattr(get_model_spec(spec.name, name).model_class(), "supports_warm_start", False))
        except Exception:  # noqa: BLE001 - a model family not installed here is not offered
            return False

    fits = [i for i in api.bundled_checkpoints(spec.name) if warm(i["model"])]
    opts = ["from scratch"] + [f"fine-tune {i['file']}" for i in fits]
    pick = st.radio("Start", opts, key="train_start", horizontal=True)
    return None if pick == "from scratch" else fits[opts.index(pick) - 1]


def _finetune_form(spec, cat, dev: str, item) -> None:
    from core.inference.finetune import finetune

    meta = item["metadata"]
    st.caption(
        f"Continue training {item['file']} ({item['model']}; inputs {', '.join(meta.get('features', []))}) on the "
        "current catalogue from its weights."
    )
    cfg = api.model_config_class(spec.name, item["model"]).from_dict(meta.get("config") or {}).to_dict()
    lr0 = cfg.get("warm_lr") or (cfg.get("train") or {}).get("lr") or cfg.get("learning_rate") or 2e-4
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input("Epochs (boosting rounds for LightGBM)", 1, 2000, 30, key="ft_epochs")
    lr = c2.number_input("Learning rate", 1e-6, 1.0, float(lr0), format="%.5f", key="ft_lr")
    patience = c3.number_input("Early-stopping patience", 1, 500, 10, key="ft_patience")
    if "train" in cfg:  # torch models: epochs and patience; the warm-start learning rate when the model has one
        over = {"train": {"epochs": int(epochs), "patience": int(patience)}}
        if "warm_lr" in cfg:
            over["warm_lr"] = float(lr)
        else:
            over["train"]["lr"] = float(lr)
    else:  # LightGBM: more boosting rounds with early stopping
        over = {"n_estimators": int(epochs), "learning_rate": float(lr), "early_stopping_rounds": int(patience)}
        over = {k: v for k, v in over.items() if k in cfg}
    if st.button("Fine-tune", type="primary", key="train", disabled=ui.running("train")):
        tr, va, te = api.split(cat, (0.8, 0.1, 0.1), seed=0)
        ui.ss()["pending_test_index"] = np.isin(cat.ids, te.ids)
        fp, label, sha = cat.fingerprint(), ui.ss().get("data_label"), cat.meta.get("sha256")
        init = ui.on_engine(api.load_checkpoint, item["path"], expected_task=spec.name)

        def work(j):
            m = finetune(
                init,
                tr,
                va,
                over,
                init_label=item["file"],
                data_label=label,
                data_sha256=sha,
                callbacks=[j.epoch],
                stop=j.stop,
                device=None if dev == "auto" else dev,
            )
            m.card["test_metrics"] = {**_held_out(spec, m, te), "before_finetune": _held_out(spec, init, te)}
            return m, fp

        ui.start_job("train", f"Fine-tuning {item['file']}", work, cancel_on_leave=False)


def _held_out(spec, m, te) -> dict:
    """Scores of ``m`` on the held-out rows ``te`` (stored as the checkpoint's test metrics)."""
    from core.metrics.typicality import annotate, summary

    te = te.subset(np.arange(min(len(te), 2000)))
    post = annotate(m, te, api.posterior(m, te, n_samples=ui.defaults(spec.name).draws, seed=0))
    sc = api.evaluate(post, te)["scores"]
    out = {"n_test": len(te), **{k: v for k, v in sc.items() if isinstance(v, (int, float)) or v is None}}
    typ = summary(post)
    if typ is not None:
        out["fraction_atypical"] = typ["fraction_atypical"]
    return out


def _train_result(spec) -> None:
    """The running job's live loss curves, then the trained model made current with its held-out scores."""
    from core.viz.training import loss_curves_figure

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
            note = (m.card.get("provenance") or {}).get("note")
            tm = m.card.get("test_metrics") or {}
            before = tm.get("before_finetune") or {}
            ui.ss()["train_note"] = (
                f"Trained {m.name} in {done.seconds:.1f} s: {_stop_reason(m.history)}."
                + (f" {note[0].upper() + note[1:]}." if note else "")
                + (
                    f" Held-out ({tm.get('n_test')} rows): RMSE {tm['rmse']:.3f}, coverage_68 "
                    f"{tm.get('coverage_68') or float('nan'):.2f}"
                    if isinstance(tm.get("rmse"), (int, float))
                    else ""
                )
                + (f" (before fine-tuning: RMSE {before['rmse']:.3f})" if "rmse" in before else "")
            )
            ui.ss()["train_scores"] = [
                {"model": k, **{c: v.get(c) for c in ("rmse", "bias", "coverage_68", "crps", "fraction_atypical")}}
                for k, v in (("this model", tm), ("before fine-tuning", before))
                if v
            ]
            st.rerun()


def _stop_reason(hist) -> str:
    hist = hist if isinstance(hist, dict) else {}
    return str(hist.get("stopped_reason") or "done")


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
        if ui.ss().get("train_scores"):
            st.dataframe(ui.rows_frame(ui.ss()["train_scores"]), hide_index=True, key="train_scores")
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
