"""Photometric catalogue readers: MLZ / ANNz text tables, CSV, FITS, HDF5, Parquet -> photo-z CatalogData.

Formats: whitespace tables whose first line is a ``#`` header naming every column (MLZ style, e.g.
``#zs u g r i z u-g ...``); ANNz ``;``-separated headers with type prefixes (``#F:MAG_U;F:MAGERR_U;...;D:Z``);
everything else goes through the project's table registry (:func:`core.data.io.read`: CSV/ECSV, FITS, HDF5,
Parquet).

Column guesses (case-insensitive), per band b: magnitudes ``mag_b, b, MAG_B, modelMag_b, petroMag_b,
cModelMag_b, dered_b, b_mag, bmag``; errors ``err_b, eb, MAGERR_B, modelMagErr_b, petroMagErr_b, magerr_b,
b_err, b_magerr``; fluxes ``flux_b, FLUX_B, modelFlux_b, cModelFlux_b, b_flux`` with errors ``fluxerr_b,
flux_err_b, FLUXERR_B, b_fluxerr`` or inverse variances ``modelFlux_ivar_b, flux_ivar_b``; spectroscopic
redshift ``zs, z_spec, zspec, specz, spec_z, redshift, z_true, z`` (a bare ``z`` is the redshift only when the
z-band magnitude has another name, e.g. ``MAG_Z``). Fluxes are converted to uJy (``flux_unit`` = "nanomaggies"
(default for SDSS-style names), "maggies", "uJy", "nJy", "Jy", or the column's own unit) and to SDSS asinh
magnitudes.

Bad photometry is flagged per galaxy, never used: a magnitude that is NaN or a sentinel (|m| >= 90, e.g.
99/-99), an error that is NaN, negative, zero or a sentinel (>= 90), a non-finite flux. Those band values become
NaN; ``extra["n_bad_bands"]`` counts them and ``extra["flag_bad"]`` marks the galaxy (models skip it and report
it invalid).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from core.data.catalog import CatalogData, file_sha256
from core.errors import GPSError
from core.tasks.photoz.simulator import SHORT, SOFTENING, asinh_mag

__all__ = ["read_photometry", "from_table", "guess_columns", "FLUX_UNITS_UJY"]

FLUX_UNITS_UJY = {
    "nanomaggies": 3.631,
    "nanomaggy": 3.631,
    "nmgy": 3.631,
    "maggies": 3.631e9,
    "maggy": 3.631e9,
    "ujy": 1.0,
    "µjy": 1.0,
    "microjy": 1.0,
    "njy": 1e-3,
    "jy": 1e6,
    "mjy": 1e3,
}
_MAG = (
    "mag_{b}",
    "{b}",
    "modelmag_{b}",
    "petromag_{b}",
    "cmodelmag_{b}",
    "dered_{b}",
    "{b}_mag",
    "{b}mag",
    "mag{b}",
    "mag_auto_{b}",
)
_ERR = (
    "err_{b}",
    "e{b}",
    "magerr_{b}",
    "modelmagerr_{b}",
    "petromagerr_{b}",
    "cmodelmagerr_{b}",
    "{b}_err",
    "{b}_magerr",
    "err{b}",
    "magerr_auto_{b}",
    "sigma_{b}",
)
_FLUX = ("flux_{b}", "modelflux_{b}", "cmodelflux_{b}", "{b}_flux", "flux{b}")
_FLUXERR = ("fluxerr_{b}", "flux_err_{b}", "{b}_fluxerr", "{b}_flux_err", "fluxerr{b}")
_IVAR = ("modelflux_ivar_{b}", "flux_ivar_{b}", "cmodelflux_ivar_{b}", "{b}_flux_ivar")
_ZSPEC = ("zs", "z_spec", "zspec", "specz", "spec_z", "redshift", "z_true", "ztrue", "zsp", "z")


def read_photometry(
    path: str | os.PathLike,
    *,
    bands: str | None = None,
    flux_unit: str | None = None,
    columns: dict[str, str] | None = None,
    **options: Any,
) -> CatalogData:
    """Read a photometric catalogue into photo-z :class:`CatalogData` (features mag_*/err_*, target ``z`` if a
    spec-z column exists). ``columns`` overrides guesses, e.g. ``{"mag_u": "PSFMAG_U", "z": "ZBEST"}``."""
    path = str(path)
    table = _read_text(path) or _read_registry(path, **options)
    data = from_table(table, bands=bands, flux_unit=flux_unit, columns=columns, source=path)
    data.meta.update(file=Path(path).name, sha256=file_sha256(path))
    return data


def guess_columns(names, bands: str = "sdss") -> dict[str, str]:
    """Map canonical names (mag_b, err_b, flux_b, fluxerr_b, ivar_b, z) to the table's column names."""
    lower = {n.lower(): n for n in names}
    out: dict[str, str] = {}
    used: set[str] = set()
    for b in SHORT[bands]:
        for key, pats in (("mag", _MAG), ("err", _ERR), ("flux", _FLUX), ("fluxerr", _FLUXERR), ("ivar", _IVAR)):
            for p in pats:
                name = p.format(b=b)
                if name == b and b == "z":
                    continue  # bare "z" decided below
                if name in lower and lower[name] not in used:
                    out[f"{key}_{b}"] = lower[name]
                    used.add(lower[name])
                    break
    for p in _ZSPEC:
        if p in lower and lower[p] not in used:
            if p == "z" and "mag_z" not in out and "flux_z" not in out and bands == "sdss":
                out["mag_z"] = lower[p]  # MLZ-style "u g r i z": bare z is the z band
                used.add(lower[p])
                continue
            out["z"] = lower[p]
            break
    if "mag_z" not in out and bands == "sdss" and "z" in lower and lower["z"] not in used:
        out["mag_z"] = lower["z"]
    return out


def from_table(
    table,
    *,
    bands: str | None = None,
    flux_unit: str | None = None,
    columns: dict[str, str] | None = None,
    source: str = "table",
) -> CatalogData:
    """Map an astropy Table onto photo-z :class:`CatalogData` (see the module docstring)."""
    names = list(table.colnames)
    bands = bands or (
        "hsc" if any(n.lower() in ("y", "mag_y", "y_mag", "mag_auto_y", "flux_y") for n in names) else "sdss"
    )
    cols = guess_columns(names, bands)
    cols.update(columns or {})
    short = SHORT[bands]
    n = len(table)
    mags, errs, fluxes, ferrs = (np.full((n, 5), np.nan) for _ in range(4))
    soft = np.asarray(SOFTENING["sdss"]) * 3631e6 if bands == "sdss" else None
    for j, b in enumerate(short):
        if f"mag_{b}" in cols:
            mags[:, j] = _col(table, cols[f"mag_{b}"], source)
            if f"err_{b}" not in cols:
                raise GPSError(
                    f"magnitude column without an error column for band {b}",
                    source=source,
                    field=cols[f"mag_{b}"],
                    expected=f"one of {', '.join(p.format(b=b) for p in _ERR)}",
                    found=", ".join(names),
                )
            errs[:, j] = _col(table, cols[f"err_{b}"], source)
        elif f"flux_{b}" in cols:
            scale = _flux_scale(table, cols[f"flux_{b}"], flux_unit, source)
            f = _col(table, cols[f"flux_{b}"], source) * scale
            if f"fluxerr_{b}" in cols:
                s = _col(table, cols[f"fluxerr_{b}"], source) * scale
            elif f"ivar_{b}" in cols:
                with np.errstate(divide="ignore", invalid="ignore"):
                    s = scale / np.sqrt(_col(table, cols[f"ivar_{b}"], source))
            else:
                raise GPSError(
                    f"flux column without an error column for band {b}",
                    source=source,
                    field=cols[f"flux_{b}"],
                    expected=f"fluxerr_{b} or modelFlux_ivar_{b}",
                    found=", ".join(names),
                )
            fluxes[:, j], ferrs[:, j] = f, s
            bb = soft[j] if soft is not None else np.nanmedian(s)
            with np.errstate(invalid="ignore", divide="ignore"):
                mags[:, j] = asinh_mag(f, bb)
                errs[:, j] = 2.5 / np.log(10) * s / np.sqrt(f**2 + 4 * bb**2)
        else:
            raise GPSError(
                f"no magnitude or flux column found for band {b}",
                source=source,
                field=b,
                expected=f"one of {', '.join(p.format(b=b) for p in _MAG + _FLUX)}",
                found=", ".join(names),
            )
    bad = ~np.isfinite(mags) | (np.abs(mags) >= 90) | ~np.isfinite(errs) | (errs <= 0) | (errs >= 90)
    mags[bad], errs[bad] = np.nan, np.nan
    n_bad = bad.sum(axis=1)
    feats = tuple(f"mag_{b}" for b in short) + tuple(f"err_{b}" for b in short)
    extra: dict[str, np.ndarray] = {"n_bad_bands": n_bad.astype(np.int64), "flag_bad": n_bad > 0}
    if np.isfinite(fluxes).any():
        for j, b in enumerate(short):
            extra[f"flux_{b}"], extra[f"fluxerr_{b}"] = np.where(bad[:, j], np.nan, fluxes[:, j]), ferrs[:, j]
    y, targets = None, ()
    if "z" in cols:
        zs = _col(table, cols["z"], source)
        zs = np.where((zs > -0.5) & (zs < 20), zs, np.nan)
        y, targets = zs[:, None], ("z",)
    units = {f: "mag" for f in feats} | {"z": ""}
    return CatalogData(
        x=np.concatenate([mags, errs], axis=1),
        features=feats,
        y=y,
        targets=targets,
        units=units,
        extra=extra,
        meta={"source": "file", "task": "photoz", "bands": bands, "columns": cols, "n_flagged": int((n_bad > 0).sum())},
    )


# -- private -------------------------------------------------------------------------------------------------
def _read_text(path: str):
    """MLZ '#'-header whitespace tables and ANNz typed ';' headers; None if the file is neither."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as err:
        raise GPSError("cannot open the file", source=path, found=str(err)) from None
    if b"\x00" in head or not head.startswith(b"#"):
        return None
    lines = head.decode("utf-8", "replace").splitlines()
    header = lines[0].lstrip("#").strip()
    body = next((ln for ln in lines[1:] if ln.strip() and not ln.startswith("#")), "")
    from astropy.table import Table

    if ";" in header:  # ANNz: "F:MAG_U;F:MAGERR_U;...;D:Z"
        names = [re.sub(r"^[A-Za-z]:", "", h.strip()) for h in header.split(";")]
        delim = "," if "," in body else (";" if ";" in body else None)
    else:
        names = header.split()
        delim = None
        if "," in body or len(body.split()) < 2:
            return None
        if len(body.split()) != len(names):
            names = _mlz_names(path, names, len(body.split()))
    try:
        arr = np.loadtxt(path, comments="#", delimiter=delim, ndmin=2, dtype=float)
    except ValueError as err:
        raise GPSError(
            "a row could not be read as numbers",
            source=path,
            expected="numeric columns",
            found=str(err).splitlines()[0],
        ) from None
    if arr.shape[1] != len(names):
        raise GPSError(
            "the header names a different number of columns than the rows hold",
            source=path,
            expected=f"{len(names)} columns ({' '.join(names)})",
            found=f"{arr.shape[1]} columns",
        )
    return Table(list(arr.T), names=names)


def _mlz_names(path: str, names: list[str], ncol: int) -> list[str]:
    """Repair an MLZ header that does not match the rows: the ``Columns`` line of a sibling ``.inputs`` file,
    else (the MLZ sample files' quirk) one missing band error ``e<b>`` inserted before the other errors."""
    inputs = Path(path).with_suffix(".inputs")
    if inputs.exists():
        for line in inputs.read_text(errors="replace").splitlines():
            if line.split(":")[0].strip() == "Columns":
                cand = [c.strip() for c in line.split(":", 1)[1].split("#")[0].split(",") if c.strip()]
                if len(cand) == ncol:
                    return cand
    missing = [b for b in "ugriz" if b in names and f"e{b}" not in names]
    errs = [i for i, nm in enumerate(names) if nm in {f"e{b}" for b in "ugriz"}]
    if ncol == len(names) + 1 and len(missing) == 1 and errs:
        b = missing[0]
        pos = errs[0] if "ugriz".index(b) < "ugriz".index(names[errs[0]][1]) else errs[-1] + 1
        return names[:pos] + [f"e{b}"] + names[pos:]
    raise GPSError(
        "the '#' header names a different number of columns than the rows hold",
        source=path,
        expected=f"{ncol} names",
        found=f"{len(names)} ({' '.join(names)})",
    )


def _read_registry(path: str, **options: Any):
    from core.data.io import read

    table = read(path, kind="table", **options)
    if len(table) == 0:
        raise GPSError("the table has no rows", source=path, expected="at least one galaxy", found="0 rows")
    return table


def _col(table, name: str, source: str) -> np.ndarray:
    if name not in table.colnames:
        raise GPSError(
            "column not found",
            source=source,
            field=name,
            expected="an existing column",
            found=", ".join(table.colnames),
        )
    col = table[name]
    values = np.asarray(getattr(col, "value", col), dtype=float)
    mask = getattr(col, "mask", None)
    if mask is not None and np.any(mask):
        values = np.where(np.asarray(mask), np.nan, values)
    return values


def _flux_scale(table, name: str, flux_unit: str | None, source: str) -> float:
    unit = (flux_unit or str(getattr(table[name], "unit", "") or "")).strip().lower().replace(" ", "")
    if not unit or unit == "none":
        unit = "nanomaggies"  # SDSS modelFlux convention
    if unit not in FLUX_UNITS_UJY:
        raise GPSError("unknown flux unit", source=source, field=name, expected=" | ".join(FLUX_UNITS_UJY), found=unit)
    return FLUX_UNITS_UJY[unit]
