"""Plausibility of catalogue values: sentinels read as missing, unit mistakes named with their fix, rows refused.

Every task quantity may carry ``plausible`` (the range its definition allows, e.g. log M* in [5, 13]; wider than
the simulator's ``domain``). :func:`screen` looks at one converted column:

1. **Sentinels** (-99, 99, -999, 999, -9999, 9999 and the caller's ``missing_values``) that lie outside the
   plausible range are *missing* (NaN), counted in the validation report.
2. **Unit mistakes**: when other readings of the numbers put clearly more of them inside the plausible range
   (linear values in a log column, raw simulation masses in 1e10 Msun/h), the column is refused with the likely
   cause and the fix (the unit to declare), never guessed silently.
3. Otherwise, when most values are implausible the column is refused (a wrong column or definition); when a few
   are, those **rows are refused**: their values become NaN and the row carries the reason, so a catalogue keeps
   its row count and order and the output marks the row as masked (``core.inference.sanity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SENTINELS", "Screen", "screen", "DEFAULT_H"]

SENTINELS = (-99.0, 99.0, -999.0, 999.0, -9999.0, 9999.0)
DEFAULT_H = 0.6774           # Planck 2015 (IllustrisTNG), stated in the message when the file gives no h
_MOST = 0.5                  # more than this fraction implausible -> the column (not the rows) is wrong
_EXPLAINED = 0.9             # a unit reading must put at least this fraction inside the plausible range


@dataclass
class Screen:
    """Result of :func:`screen` for one column: values (sentinels and refused cells NaN), counts, messages."""

    values: np.ndarray
    n_sentinel: int = 0
    refused_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reason: str = ""                    # per-row reason for refused rows
    error: str | None = None            # the column is refused (unit mistake / mostly implausible)
    expected: str = ""
    found: str = ""


def screen(name: str, unit: str, plausible: tuple[float, float] | None, v: np.ndarray,
           *, h: float | None = None, extra_sentinels: tuple[float, ...] = (), identity: bool = True) -> Screen:
    """Screen converted values ``v`` of quantity ``name`` (canonical ``unit``) against ``plausible``.

    ``identity``: the values were taken as they are (no unit conversion), so unit-mistake readings are tried.
    """
    v = np.array(v, dtype=np.float64)
    if plausible is None:
        return Screen(v)
    lo, hi = plausible
    fin = np.isfinite(v)
    outside = fin & ((v < lo) | (v > hi))
    sent = outside & np.isin(v, SENTINELS + tuple(extra_sentinels))
    n_sent = int(sent.sum())
    v[sent] = np.nan
    outside &= ~sent
    res = Screen(v, n_sentinel=n_sent)
    n_fin = int(np.isfinite(v).sum())
    if not outside.any() or n_fin == 0:
        return res
    vals = v[np.isfinite(v)]
    mostly_out = outside.sum() > _MOST * n_fin
    if identity and mostly_out:
        for cause, fix, mapped in _readings(name, unit, vals, h):
            with np.errstate(all="ignore"):
                ok = np.isfinite(mapped) & (mapped >= lo) & (mapped <= hi)
            if ok.mean() >= _EXPLAINED:
                med = float(np.median(vals))
                res.error = (f"values look {cause} (median {med:.4g}; {name} expects {unit} in [{lo:g}, {hi:g}]); "
                             f"{fix}")
                res.expected, res.found = f"{unit} values in [{lo:g}, {hi:g}]", f"median {med:.4g}"
                return res
    rows = np.flatnonzero(outside)
    first = float(v[rows[0]])
    if mostly_out:
        res.error = (f"{rows.size} of {n_fin} values lie outside the plausible range [{lo:g}, {hi:g}] of {name} "
                     f"({unit}); wrong column, unit or definition")
        res.expected, res.found = f"{unit} values in [{lo:g}, {hi:g}]", f"e.g. {first:.4g} in row {rows[0]}"
        return res
    res.refused_rows = rows
    res.reason = f"{name} outside the plausible range [{lo:g}, {hi:g}]"
    v[rows] = np.nan
    return res


def _readings(name: str, unit: str, vals: np.ndarray, h: float | None):
    """(cause, fix, values under that reading) for the unit mistakes a log quantity is prone to."""
    if not unit.startswith("dex"):
        return
    pos = vals[vals > 0]
    if pos.size < vals.size:          # negative numbers cannot be linear quantities
        return
    phys = unit[4:-1] if unit.startswith("dex(") else ""
    lin = phys or "dimensionless"
    with np.errstate(all="ignore"):
        yield ("linear, not log10",
               f"declare the column's linear unit, e.g. units={{{name!r}: {lin!r}}}, or give log10 values",
               np.log10(vals))
        if phys == "solMass":
            hh = DEFAULT_H if h is None else float(h)
            yield (f"like raw simulation masses in 1e10 Msun/h (h={hh:g})",
                   f"declare units={{{name!r}: '1e10 solMass / h'}} (with h; file metadata 'h' or h=)",
                   np.log10(vals * 1e10 / hh))
