"""Every method of a task scored on the same test objects, side by side (the Evaluation page's comparison).

An orchestration over :mod:`core.api` (which never imports this module): methods come from the user's model, a
bundled checkpoint or (baselines) a fit on the objects not used for scoring; slow methods (capability ``slow``) are
scored on at most :data:`HMC_MAX_GALAXIES` objects.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from core import api
from core.tasks import get_task, get_task_obj

__all__ = ["compare_methods", "HMC_MAX_GALAXIES"]

HMC_MAX_GALAXIES = 200  # slow (NUTS) methods are scored on at most this many galaxies in comparisons


def compare_methods(
    task: str,
    cat,
    ev,
    current=None,
    *,
    progress: Callable[..., None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Score every method of ``task`` on the same test objects ``ev`` ("all methods side by side").

    Methods come from ``current`` (the user's model), a bundled checkpoint, or (baselines) a fit on the objects of
    ``cat`` not used for scoring. When ``ev`` is the whole catalogue it is split in halves: baselines fit on one half
    and every method scores on the other. Slow methods score on at most :data:`HMC_MAX_GALAXIES` objects.
    """
    spec, draws = get_task(task), get_task_obj(task).defaults.draws
    if ev is cat or len(ev) == len(cat):
        fit_part, ev = api.split(ev, (0.5, 0.5), seed=0)
    else:
        fit_part = cat.subset(~np.isin(cat.ids, ev.ids))
    exact = api.exact_posterior(ev)
    bundled = {b["model"]: b["path"] for b in api.bundled_checkpoints(task)}
    out: dict[str, Any] = {"scores": {}, "notes": [], "importance": None, "n": len(ev)}
    methods = list(spec.methods)
    for k, name in enumerate(methods):
        if progress is not None:
            progress(k, len(methods), f"{name} …")
        if stop is not None and stop.is_set():
            out["notes"].append("stopped by user")
            break
        try:
            mspec = next(s for s in api.list_models(task) if s.name == name)
            if current is not None and current.name == name:
                m, how = current, "current model"
            elif name in bundled:
                m, how = api.load_checkpoint(bundled[name], expected_task=task), "bundled checkpoint"
            elif mspec.kind == "baseline":
                feats = [f for f in fit_part.features if f in spec.input_names]
                m, how = api.train(task, name, fit_part, None, features=feats), f"fit on {len(fit_part)}"
            else:
                out["notes"].append(f"{name}: no bundled checkpoint; train it on the Model page to compare")
                continue
            sub = ev.subset(slice(0, HMC_MAX_GALAXIES)) if mspec.capabilities.slow else ev
            post = api.posterior(m, sub, n_samples=draws, seed=0)
            ex = None if exact is None else (exact if len(sub) == len(ev) else exact.subset(slice(0, len(sub))))
            res = api.evaluate(post, sub, None if mspec.capabilities.exact else ex)
            out["scores"][name] = {
                "source": how,
                **{k2: v for k2, v in res["scores"].items() if isinstance(v, (int, float))},
            }
            out["importance"] = api.feature_importance(m) or out["importance"]
        except ImportError as e:
            out["notes"].append(f"{name}: not available ({e})")
        except Exception as e:  # noqa: BLE001 - one failing method must not hide the others
            out["notes"].append(f"{name}: {e}")
    if progress is not None:
        progress(len(methods), len(methods), "done")
    return out
