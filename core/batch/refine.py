"""``--refine-hmc WHERE``: which rows get a NUTS refinement, and the columns the refinement adds to a part.

``WHERE`` is a small expression over a part's output columns: terms joined by ``or`` / ``and`` (``and`` binds
tighter), each term ``all``, ``outside_domain``, ``invalid`` or ``COLUMN OP NUMBER`` with OP one of ``> >= < <=``,
e.g. ``outside_domain or log_mh_std>0.3``. The refinement runs on the worker that computed the part (so it is spread
over the workers like the parts), with the ``vae_hmc`` model, and every part gets the same refinement columns (NaN
where a row was not refined) so the parts form one dataset.
"""

from __future__ import annotations

import re

import numpy as np

from core.errors import GPSError

__all__ = ["select_rows", "refine_columns", "check_where", "HMC_COLUMNS"]

_TERM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")
HMC_COLUMNS = ("mean", "std", "p16", "p50", "p84")


def check_where(where: str) -> str:
    """``where`` normalized, or a GPSError saying what a term must look like."""
    for group in _split(where):
        for term in group:
            if term not in ("all", "outside_domain", "invalid") and not _TERM.match(term):
                raise GPSError("cannot read this --refine-hmc condition", field="--refine-hmc",
                               expected="all | outside_domain | invalid | COLUMN>NUMBER (joined by or/and)",
                               found=term)
    return where.strip()


def select_rows(where: str, cols: dict[str, tuple[np.ndarray, str]]) -> np.ndarray:
    """Boolean (n,) of the rows of ``cols`` (name -> (values, unit)) that satisfy ``where``."""
    n = len(cols["id"][0])
    out = np.zeros(n, bool)
    for group in _split(check_where(where)):
        sel = np.ones(n, bool)
        for term in group:
            sel &= _term(term, cols, n)
        out |= sel
    return out


def refine_columns(model, data, sel: np.ndarray, *, seed: int = 0) -> dict[str, tuple[np.ndarray, str]]:
    """NUTS summaries and diagnostics for the ``sel`` rows of ``data`` (NaN elsewhere), plus ``refined`` (int8)."""
    from core import api

    n = len(sel)
    params = tuple(getattr(model, "targets", ()) or ("target",))
    units = tuple(model.param_units()) if hasattr(model, "param_units") else ("",) * len(params)
    cols: dict[str, tuple[np.ndarray, str]] = {}
    for j, p in enumerate(params):
        for k in HMC_COLUMNS:
            cols[f"{p}_hmc_{k}"] = (np.full(n, np.nan), units[j] if j < len(units) else "")
    for k in ("rhat", "ess", "divergences"):
        cols[f"hmc_{k}"] = (np.full(n, np.nan), "")
    cols["refined"] = (sel.astype(np.int8), "")
    idx = np.flatnonzero(sel)
    if len(idx):
        post = api.refine_hmc(model, data.subset(idx), seed=seed)
        summ = post.summaries()
        for p in params:
            for k in HMC_COLUMNS:
                cols[f"{p}_hmc_{k}"][0][idx] = summ[f"{p}_{k}"]
        for k in ("rhat", "ess", "divergences"):
            if k in post.diagnostics:
                cols[f"hmc_{k}"][0][idx] = np.asarray(post.diagnostics[k], float).reshape(len(idx), -1)[:, 0]
    return cols


def _split(where: str) -> list[list[str]]:
    text = where.strip()
    if not text:
        raise GPSError("empty --refine-hmc condition", field="--refine-hmc", expected="e.g. outside_domain")
    return [[t.strip() for t in re.split(r"\s+and\s+", g)] for g in re.split(r"\s+or\s+", text)]


def _term(term: str, cols: dict, n: int) -> np.ndarray:
    if term == "all":
        return np.ones(n, bool)
    if term == "outside_domain":
        return np.asarray(cols["outside_domain"][0]).astype(bool)
    if term == "invalid":
        return ~np.asarray(cols["valid"][0]).astype(bool)
    name, op, num = _TERM.match(term).groups()
    if name not in cols:
        raise GPSError("unknown column in the --refine-hmc condition", field="--refine-hmc",
                       expected=", ".join(k for k, (v, _) in cols.items() if np.asarray(v).ndim == 1), found=name)
    v, x = np.asarray(cols[name][0], float), float(num)
    with np.errstate(invalid="ignore"):
        return {">": v > x, ">=": v >= x, "<": v < x, "<=": v <= x}[op]
