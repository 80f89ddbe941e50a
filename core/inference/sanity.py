"""Posterior sanity at the output: refused rows are masked with their reason, NaN/inf draws are never results.

:func:`checked_posterior` is what every caller that writes or scores results uses instead of
``model.posterior(data, ...)``:

* rows the validator refused (``data.extra["refused"]``, a reason per row, "" = fine; see
  :mod:`core.data.plausible`) are not given to the model; they come back with ``valid = False``, NaN summaries and
  ``flag = 1`` so a catalogue keeps its row count and order;
* rows whose draws (or grid density) are not all finite get ``valid = False``, NaN draws and ``flag = 2``;
* a model that refuses rows with a missing (NaN) input (it cannot marginalize it) runs on the complete rows; the
  others get ``valid = False`` and ``flag = 3``;
* when no row at all has a finite posterior (e.g. a checkpoint whose weights are NaN), the run is refused with a
  :class:`GPSError` naming the model, so nothing is written.

Map posteriors (:class:`~core.inference.posterior_maps.MapPosterior`) are refused when a summary is not finite on
a data pixel of any map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["checked_posterior", "check_posterior", "drop_refused", "training_sets", "FLAG_LEGEND", "FLAG_REFUSED_INPUT", "FLAG_NONFINITE",
           "FLAG_MISSING_INPUT"]

FLAG_REFUSED_INPUT = 1
FLAG_NONFINITE = 2
FLAG_MISSING_INPUT = 3
FLAG_LEGEND = {"0": "ok", str(FLAG_REFUSED_INPUT): "input row refused by validation (implausible value)",
               str(FLAG_NONFINITE): "posterior draws not finite (not a result)",
               str(FLAG_MISSING_INPUT): "an input is missing and this model cannot marginalize it"}


def checked_posterior(model, data, **kw: Any):
    """``model.posterior(data, **kw)`` over the rows not refused by validation, then :func:`check_posterior`.

    A catalogue model that cannot marginalize missing values (it refuses NaN rows) still gives results for the
    complete rows: the rows with a missing input come back masked with ``flag = 3``.
    """
    name = getattr(model, "name", "")
    reasons = _reasons(data)
    refused = np.array([bool(r) for r in reasons], dtype=bool) if reasons is not None else None
    if refused is None or not refused.any():
        try:
            return check_posterior(model.posterior(data, **kw), source=_source(data), model=name)
        except GPSError:
            missing = _missing_rows(data)
            if missing is None or not missing.any() or missing.all():
                raise
            return _run_rows(model, data, np.zeros(len(missing), bool), missing, None, **kw)
    if refused.all():
        raise GPSError(f"every row was refused by validation (first reason: {reasons[0]})", source=_source(data),
                       expected="at least one row with plausible values", found=f"{len(refused)} refused rows")
    missing = np.zeros(len(refused), dtype=bool)
    try:
        return _run_rows(model, data, refused, missing, reasons, **kw)
    except GPSError:
        missing = _missing_rows(data) & ~refused
        if not missing.any() or (missing | refused).all():
            raise
        return _run_rows(model, data, refused, missing, reasons, **kw)


def _run_rows(model, data, refused: np.ndarray, missing: np.ndarray, reasons, **kw):
    """Posterior of the rows neither refused nor missing an input, scattered back into every row with flags."""
    keep = np.flatnonzero(~(refused | missing))
    post = model.posterior(data.subset(keep), **kw)
    full = _scatter(post, keep, len(refused))
    full.diagnostics["flag"] = np.select([refused, missing], [FLAG_REFUSED_INPUT, FLAG_MISSING_INPUT], 0
                                         ).astype(np.int64)
    if reasons is not None:
        full.info["refused_reasons"] = {int(i): str(reasons[i]) for i in np.flatnonzero(refused)[:1000]}
    if missing.any():
        full.info["missing_rows"] = int(missing.sum())
    return check_posterior(full, source=_source(data), model=getattr(model, "name", ""))


def _missing_rows(data) -> np.ndarray | None:
    """Rows of a catalogue with a NaN input (None for containers without a feature matrix)."""
    x = getattr(data, "x", None)
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        return None
    return np.isnan(x).any(axis=1)


def drop_refused(data):
    """``data`` without the rows validation refused (for training: a refused row is never used as numbers)."""
    reasons = _reasons(data)
    if reasons is None or data is None:
        return data
    keep = np.array([not r for r in reasons], dtype=bool)
    return data if keep.all() else data.subset(np.flatnonzero(keep))


def training_sets(train, val, targets, what: str = "training"):
    """(train, val) without refused rows; refuses a training set without the target column."""
    train, val = drop_refused(train), drop_refused(val)
    if not train.has_truth:
        raise GPSError(
            f"{what} needs the target column",
            source=str(train.meta.get("file", "data")),
            field=", ".join(targets),
            expected="a labelled catalogue (simulate one, or map a target column)",
        )
    return train, val


def check_posterior(post, *, source: str | None = None, model: str = ""):
    """Mask rows whose draws are not finite (``valid = False``, ``flag = 2``); refuse when none is finite."""
    from core.inference.posterior_maps import MapPosterior

    if isinstance(post, MapPosterior) or getattr(post, "per_pixel", False):  # per-pixel summaries (maps, fields)
        return _check_maps(post, source, model)
    arr = post.samples if post.samples is not None else post.pdf
    flat = np.asarray(arr).reshape(post.n, -1)
    bad = ~np.isfinite(flat).all(axis=1)
    valid = np.asarray(post.valid, dtype=bool)
    if post.pdf is not None and post.samples is None:
        bad |= ~np.isfinite(post.grid).all()
    newly = bad & valid
    flag = np.asarray(post.diagnostics.get("flag", np.zeros(post.n, dtype=np.int64))).astype(np.int64)
    flag = np.where(newly, FLAG_NONFINITE, flag)
    if newly.any():
        if post.samples is not None:
            post.samples[newly] = np.nan
        else:
            post.pdf[newly] = np.nan
        post.valid = valid & ~newly
        post.info["nonfinite_rows"] = int(newly.sum())
    if post.n and not post.valid.any() and (newly.any() or (flag == 0).all()):
        raise GPSError("the model gave no finite posterior for any object (damaged checkpoint or inputs far outside "
                       "its training data); nothing is written", source=source, field=model or None,
                       expected="finite posterior draws", found=f"{int(newly.sum())} of {post.n} rows not finite")
    post.diagnostics["flag"] = flag
    return post


def _check_maps(post, source, model):
    data_pix = ~np.asarray(post.mask, dtype=bool)
    for name in ("mean", "std", "q50"):
        arr = np.asarray(getattr(post, name))
        bad = ~np.isfinite(arr) & data_pix
        if bad.any():
            k = int(np.argmax(bad.reshape(len(arr), -1).any(1)))
            raise GPSError("the posterior maps are not finite on data pixels; nothing is written", source=source,
                           field=f"{model} {name}".strip(), expected="finite posterior summaries",
                           found=f"{int(bad.sum())} non-finite pixels (first in map {k})")
    return post


def _scatter(post, keep: np.ndarray, n: int):
    from core.inference.posterior import Posterior

    def grow(a):
        if a is None:
            return None
        a = np.asarray(a)
        out = np.full((n,) + a.shape[1:], np.nan if a.dtype.kind == "f" else 0, dtype=a.dtype)
        out[keep] = a
        return out

    valid = np.zeros(n, dtype=bool)
    valid[keep] = np.asarray(post.valid, dtype=bool)
    diags = {k: grow(v) for k, v in post.diagnostics.items() if np.ndim(v) >= 1 and len(v) == post.n}
    return Posterior(params=post.params, units=post.units, samples=grow(post.samples), grid=post.grid,
                     pdf=grow(post.pdf), diagnostics=diags, valid=valid, method=post.method, info=dict(post.info))


def _reasons(data):
    extra = getattr(data, "extra", None)
    if not isinstance(extra, dict) or "refused" not in extra:
        return None
    return np.asarray(extra["refused"], dtype=object)


def _source(data) -> str | None:
    meta = getattr(data, "meta", None) or {}
    f = meta.get("file")
    return str(f) if f else None
