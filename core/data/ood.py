"""Out-of-distribution checks of a table's inputs against the training distribution of a model.

The training distribution is a few quantiles per input (:data:`LEVELS`), stored at training time in the
checkpoint's JSON metadata (``input_distribution``, written by :func:`distribution_of` through ``api.train`` and
``core.inference.checkpoints``). A checkpoint without it (bundled ones built before) falls back to a simulated
reference sample of the task's default simulator (:func:`simulated_reference`, cached per process).

A column is flagged (:func:`ood_check`) when its median is more than ``shift_sd`` (default 1) robust training
standard deviations (half the 16-84% range) from the training median, or when more than ``outside_frac``
(default 20%) of its values lie outside the training 0.5-99.5% range. Each flag names the column, the file's median
and 0.5-99.5% range and the training ones (:func:`ood_messages`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["LEVELS", "distribution_of", "ood_check", "ood_messages", "reference_for", "simulated_reference",
           "model_reference", "check_report", "REFERENCE_SIZE", "REFERENCE_SEED"]

#: quantile levels stored per input (0.5%, 2.5%, 16%, 25%, 50%, 75%, 84%, 97.5%, 99.5%)
LEVELS = (0.005, 0.025, 0.16, 0.25, 0.5, 0.75, 0.84, 0.975, 0.995)
REFERENCE_SIZE = 20000   # galaxies in the simulated fallback reference
REFERENCE_SEED = 97531


def distribution_of(data, features=None) -> dict[str, Any] | None:
    """``{"levels": [...], "features": {name: {"n": finite count, "quantiles": [...]}}}`` of a table-like
    container (``x`` of shape (n, features), ``features``), or None for other data (maps, fields)."""
    x = getattr(data, "x", None)
    feats = tuple(features) if features is not None else tuple(getattr(data, "features", ()) or ())
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != len(getattr(data, "features", ())):
        return None
    cols = {f: i for i, f in enumerate(data.features)}
    out = {}
    for f in feats:
        if f not in cols:
            continue
        v = x[:, cols[f]].astype(float)
        v = v[np.isfinite(v)]
        if v.size:
            out[f] = {"n": int(v.size), "quantiles": [round(float(q), 6) for q in np.quantile(v, LEVELS)]}
    return {"levels": list(LEVELS), "features": out} if out else None


def _q(dist: dict, level: float) -> float:
    levels = list(dist.get("levels", LEVELS))
    return float(np.interp(level, levels, dist["quantiles"]))


def ood_check(data, reference: dict | None, *, shift_sd: float = 1.0, outside_frac: float = 0.2) -> list[dict]:
    """One dict per input present in both ``data`` and ``reference``: the file's median and 0.5-99.5% range,
    the training ones, ``shift_sd`` (|median difference| / robust training sd), ``frac_outside`` (share of the
    file's finite values outside the training 0.5-99.5% range) and ``flagged``."""
    if not reference or not reference.get("features"):
        return []
    x = getattr(data, "x", None)
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        return []
    levels = reference.get("levels", list(LEVELS))
    out = []
    for i, f in enumerate(getattr(data, "features", ())):
        ref = reference["features"].get(f)
        if not ref:
            continue
        d = {"levels": levels, "quantiles": ref["quantiles"]}
        v = x[:, i].astype(float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        lo, hi, med = _q(d, 0.005), _q(d, 0.995), _q(d, 0.5)
        sd = max(0.5 * (_q(d, 0.84) - _q(d, 0.16)), 1e-9)
        fmed = float(np.median(v))
        shift = abs(fmed - med) / sd
        frac = float(np.mean((v < lo) | (v > hi)))
        out.append({"name": f, "n": int(v.size), "median": fmed, "p005": float(np.quantile(v, 0.005)),
                    "p995": float(np.quantile(v, 0.995)), "train_median": med, "train_p005": lo, "train_p995": hi,
                    "train_sd": sd, "shift_sd": shift, "frac_outside": frac,
                    "flagged": bool(shift > shift_sd or frac > outside_frac)})
    return out


def ood_messages(entries: list[dict], source: str = "", reference_label: str = "the training data") -> list[str]:
    """A warning line per flagged column: which column, the file's median/range vs the training one."""
    pre = f"{source} " if source else ""
    msgs = []
    for e in entries:
        if not e["flagged"]:
            continue
        msgs.append(
            f"{pre}[{e['name']}]: far from {reference_label}: median {e['median']:.3g} vs {e['train_median']:.3g} "
            f"({e['shift_sd']:.1f} training sd), {100 * e['frac_outside']:.0f}% of {e['n']} values outside the "
            f"training 0.5-99.5% range [{e['train_p005']:.3g}, {e['train_p995']:.3g}] (file: "
            f"[{e['p005']:.3g}, {e['p995']:.3g}]); the posterior there is an extrapolation")
    return msgs


def reference_for(task: str, card: dict | None = None) -> tuple[dict | None, str]:
    """(training distribution, label): the checkpoint's stored ``input_distribution`` when ``card`` (a model's
    metadata) has one, else the cached simulated reference of the task's default simulator (None for tasks
    whose data are not tables)."""
    dist = (card or {}).get("input_distribution")
    if isinstance(dist, dict) and dist.get("features"):
        return dist, "the model's training data"
    ref = simulated_reference(task)
    label = f"the training simulator's default sample ({REFERENCE_SIZE} simulated, seed {REFERENCE_SEED})"
    return ref, label


@functools.lru_cache(maxsize=8)
def simulated_reference(task: str) -> dict | None:
    """Input quantiles of :data:`REFERENCE_SIZE` objects of ``task``'s default simulator (seed
    :data:`REFERENCE_SEED`), computed once per process; None when the task's data are not a table."""
    from core.data.simulators import SIMULATORS
    from core.tasks import get_task_obj

    t = get_task_obj(task)
    if t.spec.data_kind not in ("catalog", "photometry"):
        return None
    cfg = SIMULATORS.get(t.spec.simulator).config_cls()
    data = t.data.simulate(REFERENCE_SIZE, REFERENCE_SEED, cfg, True)   # also cached on disk (core.data.cache)
    return distribution_of(data)


def model_reference(task: str, model=None) -> tuple[dict | None, str]:
    """(training distribution restricted to ``model``'s inputs, label) for ``model`` (a loaded model; None = the
    task's simulated reference)."""
    ref, label = reference_for(task, getattr(model, "card", None) if model is not None else None)
    feats = getattr(model, "features", None)
    if ref and feats:
        ref = {**ref, "features": {k: v for k, v in ref["features"].items() if k in feats}}
        if model is not None and label != "the model's training data":
            label = f"{label}; model {model.name} has no stored training distribution"
        elif model is not None:
            label = f"the training data of model {model.name}"
    return ref, label


def check_report(report, data, task: str, model=None) -> list[str]:
    """Run the check of ``data`` against ``model``'s training distribution (or the task's simulated reference) and
    record it in the validation ``report`` (:meth:`~core.data.schema_report.ValidationReport.add_ood`); returns
    the warnings (empty when nothing is flagged or the task has no table reference)."""
    ref, label = model_reference(task, model)
    if not ref:
        return []
    return report.add_ood(ood_check(data, ref), label)
