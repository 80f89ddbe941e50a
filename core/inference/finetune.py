"""Fine-tune a trained model on a user's labelled catalogue (TNG, EAGLE, their own simulation).

:func:`finetune` rebuilds ``init``'s model (same family, inputs, targets and settings, with the given overrides,
e.g. fewer epochs or a smaller learning rate), copies its weights and continues training on the new data through
the model's own ``fit(train, val, ..., warm_start=True)`` (early stopping on ``val``, best weights kept). The card
records where it came from: ``provenance.fine_tuned_from`` (model, checkpoint label, weights sha256, creation
time) and ``provenance.note`` = "fine-tuned from <checkpoint> (weights sha256 ...) on <file> (sha256 ...)". The
new model keeps a typicality reference of the fine-tuning inputs (:mod:`core.metrics.typicality`).

Training from scratch stays :func:`core.api.train`; :func:`describe_init` is the provenance line both share.
"""

from __future__ import annotations

import inspect
import threading
from typing import Callable, Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["finetune", "can_finetune", "describe_init", "merge_config"]


def can_finetune(model) -> bool:
    """Whether ``model``'s ``fit`` accepts ``warm_start`` (continue from the weights set by ``set_state``)."""
    flag = getattr(type(model), "supports_warm_start", None)  # core.models.base: set from the fit signature
    if flag is not None:
        return bool(flag)
    try:
        return "warm_start" in inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return False


def merge_config(base: dict, overrides: dict | None) -> dict:
    """``base`` with the (nested) ``overrides`` on top."""
    out = dict(base)
    for k, v in (overrides or {}).items():
        out[k] = merge_config(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def describe_init(init, label: str | None = None) -> dict:
    """JSON provenance of the checkpoint a model was fine-tuned from."""
    card = getattr(init, "card", None) or {}
    return {
        "model": init.name,
        "task": init.task_name,
        "checkpoint": label or card.get("file") or f"{init.task_name}_{init.name}",
        "weights_sha256": card.get("weights_sha256", ""),
        "created": card.get("created", ""),
        "trained_on": {k: (card.get("provenance") or {}).get(k) for k in ("source", "simulator", "file", "n_objects")},
    }


def _with_features(data, features: Sequence[str], any_subset: bool, name: str):
    have = set(data.features)
    missing = [f for f in features if f not in have]
    if missing and not any_subset:
        raise GPSError(
            f"the catalogue lacks input(s) the {name} model was trained on; it cannot be fine-tuned on it",
            field=", ".join(missing),
            expected=", ".join(features),
            found=", ".join(data.features),
        )
    if missing:  # an any-subset model: the missing inputs are NaN (masked) in every row
        from dataclasses import replace

        x = np.column_stack([data.x] + [np.full(len(data), np.nan)] * len(missing))
        data = replace(data, x=x, features=tuple(data.features) + tuple(missing), meta=dict(data.meta))
    return data.select_features(features)


def finetune(
    init,
    train,
    val,
    config: dict | None = None,
    *,
    init_label: str | None = None,
    data_label: str | None = None,
    data_sha256: str | None = None,
    callbacks: Sequence[Callable] = (),
    stop: threading.Event | None = None,
    device: str | None = None,
):
    """A copy of ``init`` trained further on ``train`` (early stopping on ``val``); ``config``: setting overrides
    (e.g. ``{"train": {"epochs": 30, "lr": 5e-4}}``). Returns the new model (``init`` is left unchanged)."""
    from core.inference.sanity import training_sets
    from core.metrics.typicality import attach_reference
    from core.models import build_model
    from core.tasks.base import get_model_spec

    if not can_finetune(init):
        raise GPSError(
            f"the {init.name} model cannot be fine-tuned in this version (its training has no warm start)",
            field="--init",
            expected="a checkpoint of a model that can continue training (flow, lightgbm, vae_hmc)",
            found=init.name,
        )
    train, val = training_sets(train, val, init.targets, "fine-tuning")
    any_subset = bool(getattr(get_model_spec(init.task_name, init.name).capabilities, "any_subset", False))
    tr = _with_features(train, init.features, any_subset, init.name)
    va = None if val is None else _with_features(val, init.features, any_subset, init.name)
    cfg = merge_config(init.config.to_dict(), config)
    try:
        m = build_model(init.task_name, init.name, cfg, init.features, init.targets, init.units)
    except (TypeError, ValueError) as e:
        raise GPSError(f"bad fine-tuning setting: {e}", field="--set") from None
    m.set_state(*init.get_state())
    m.history = m.fit(tr, va, callbacks=callbacks, stop=stop, device=device, warm_start=True) or {}
    src = describe_init(init, init_label)
    data_name = data_label or train.meta.get("file") or train.meta.get("source", "data")
    sha = data_sha256 or train.meta.get("sha256") or train.fingerprint()
    prov = {k: v for k, v in train.meta.items() if isinstance(v, (str, int, float, bool, dict, list))}
    prov.pop("prepared_for", None)
    prov.update(n_objects=len(train), fingerprint=train.fingerprint(), fine_tuned_from=src, data_sha256=sha)
    prov["note"] = (
        f"fine-tuned from {src['checkpoint']} (weights sha256 {src['weights_sha256'][:12] or 'unknown'}) "
        f"on {data_name} (sha256 {str(sha)[:12]})"
    )
    m.card = {"provenance": prov, "device": m.history.get("device", "cpu") if isinstance(m.history, dict) else "cpu"}
    attach_reference(m, train, source=f"fine-tuning data ({data_name})")
    return m
