"""Scores of a posterior against the truth in its data: scalar targets (overall, per target, per bin of the first
target) or posterior maps (galaxy pixels); what ``core.api.evaluate``, the CLI and the app's Evaluation page show."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.errors import GPSError
from core.inference.posterior import Posterior

__all__ = ["evaluate"]


def evaluate(post, data, exact: Posterior | None = None, bin_edges: Sequence[float] | None = None) -> dict[str, Any]:
    """Scores of ``post`` against the truth in ``data`` (and the exact posterior when given), overall and per bin.

    Scalar targets: ``scores`` of the first target (``scores_by_target`` for every one), ``per_bin`` rows in bins of
    the first target. Map posteriors: per-pixel scores on galaxy pixels (:func:`core.metrics.maps.
    score_map_posterior`) and ``residual_vs_truth`` rows.
    """
    from core.inference.posterior_maps import MapPosterior
    from core.metrics import _one_param, score_posterior
    from core.metrics.binned import metrics_per_bin

    if not data.has_truth:
        raise GPSError(
            "evaluation needs the true target values",
            source=getattr(data, "source", None),
            expected="labelled data (simulate a set, or map a target column)",
        )
    if isinstance(post, MapPosterior):
        return _evaluate_maps(post, data)
    if callable(getattr(post, "evaluate", None)):  # a task posterior that scores itself (dm_to_galaxies fields)
        return post.evaluate(data, exact)
    y = data.y if data.y.ndim == 2 else data.y[:, None]
    names = tuple(getattr(data, "targets", ()) or post.params)
    by_target, keep_all = {}, None
    for j, name in enumerate(post.params):
        truth = y[:, names.index(name) if name in names else j]
        keep = np.isfinite(truth) & post.valid
        keep_all = keep if keep_all is None else keep_all
        p = _one_param(post, j).subset(keep) if len(post.params) > 1 else post.subset(keep)
        e = exact.subset(keep) if (exact is not None and j == 0) else None
        by_target[name] = score_posterior(p, truth[keep], exact=e)
    truth = y[:, 0]
    keep = keep_all
    p = (_one_param(post, 0) if len(post.params) > 1 else post).subset(keep)
    e = exact.subset(keep) if exact is not None else None
    if bin_edges is None:
        lo, hi = np.nanpercentile(truth[keep], [0.5, 99.5])
        bin_edges = np.arange(np.floor(lo * 2) / 2, hi + 0.5, 0.5)
    rows = metrics_per_bin(truth[keep], p, np.asarray(bin_edges), exact=e)
    return {"scores": by_target[post.params[0]], "scores_by_target": by_target, "per_bin": rows, "n": int(keep.sum())}


def _evaluate_maps(post, data) -> dict[str, Any]:
    from core.metrics.maps import galaxy_pixels, residual_vs_truth, score_map_posterior

    truth = np.asarray(data.targets[post.target], dtype=np.float32)
    if truth.shape != post.mean.shape:
        raise GPSError(
            "the true maps are not on the posterior's grid",
            source=getattr(data, "source", None),
            field=post.target,
            expected=str(post.mean.shape),
            found=str(truth.shape),
        )
    pixels = galaxy_pixels(post.mask, truth, getattr(data, "galaxy", None))
    scores = score_map_posterior(post, truth=truth, pixels=pixels)
    return {
        "scores": scores,
        "per_bin": residual_vs_truth(post.q50, truth, pixels, bins=10),
        "n": int(post.n),
        "pixels": pixels,
    }
