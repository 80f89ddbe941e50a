"""Photo-z result writer: per-galaxy summaries plus p(z) on a grid, as CSV, FITS or HDF5 (with provenance).

Columns: ``id``, ``z_true`` (when the input had a spec-z), ``z_median, z_p16, z_p84, z_mode, n_peaks``,
``valid`` and ``flag_bad`` (flagged photometry), then p(z) on ``grid`` (default 0-1.5 in steps of 0.005): one
2-D column ``pz`` in FITS/HDF5 (the grid in a second HDU / dataset ``pz_grid``), one column per grid node
``pz_<z>`` in CSV (the grid is the column names). With ``save_samples`` the posterior draws of every parameter
are added as a 2-D column ``<param>_samples``.

``qp``: the LSST/RAIL ``qp`` format (optional package ``qp-prob``, extra ``photoz``): an ``interp`` ensemble, p(z)
on ``grid`` (``xvals``; each row normalized on the grid as in the other formats) with the per-galaxy summaries,
``valid`` and ``flag_bad`` as ancillary columns, written by ``qp`` itself as HDF5 (``qp.read`` reads it back).
Galaxies without a posterior (flagged photometry) get a flat p(z) and ``valid`` 0, since a qp ``interp`` row
cannot be empty. Without ``qp-prob`` installed, asking for ``qp`` raises a :class:`GPSError` saying what to install.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.tasks.photoz.metrics import pz_summary

__all__ = ["write", "result_table", "DEFAULT_GRID", "FORMATS", "qp_available"]

DEFAULT_GRID = np.round(np.arange(0.0, 1.5 + 1e-9, 0.005), 4)
FORMATS = ("csv", "fits", "hdf5", "qp")
QP_INSTALL = "pip install qp-prob  (or: pip install -e '.[photoz]')"


def qp_available() -> bool:
    """Whether the optional ``qp`` package (``qp-prob``) can be imported."""
    import importlib.util

    return importlib.util.find_spec("qp") is not None


def result_table(post: Posterior, data: CatalogData, grid: np.ndarray | None = None, save_samples: bool = False):
    """astropy Table of the photo-z results (``pz`` as a 2-D column)."""
    from astropy.table import Table

    grid = DEFAULT_GRID if grid is None else np.asarray(grid, float)
    s = pz_summary(post, grid)
    t = Table()
    t["id"] = np.asarray(data.ids)
    if data.y is not None and "z" in data.targets:
        t["z_true"] = data.y[:, data.targets.index("z")]
    for k in ("z_median", "z_p16", "z_p84", "z_mode", "n_peaks"):
        t[k] = s[k]
    t["valid"] = post.valid.astype(np.int8)
    t["flag_bad"] = np.asarray(data.extra.get("flag_bad", np.zeros(len(data), bool))).astype(np.int8)
    for k in ("typicality_p", "atypical"):  # core.metrics.typicality, when the posterior was annotated
        if k in post.diagnostics:
            t[k] = np.asarray(post.diagnostics[k])
    t["pz"] = np.nan_to_num(s["pz"]).astype(np.float32)
    if save_samples and post.samples is not None:
        for j, p in enumerate(post.params):
            t[f"{p}_samples"] = post.samples[:, :, j].astype(np.float32)
    t.meta["pz_grid"] = json.dumps([float(g) for g in grid])
    return t, grid


def write(
    post: Posterior,
    data: CatalogData,
    path: str | os.PathLike,
    fmt: str | None = None,
    *,
    provenance: dict | None = None,
    save_samples: bool = False,
    grid: np.ndarray | None = None,
) -> None:
    """Write the results to ``path`` (format from ``fmt`` or the extension: .csv, .fits, .h5/.hdf5)."""
    path = Path(path)
    fmt = fmt or {".csv": "csv", ".fits": "fits", ".fit": "fits", ".h5": "hdf5", ".hdf5": "hdf5"}.get(
        path.suffix.lower()
    )
    if fmt not in FORMATS:
        raise GPSError(
            "unknown output format",
            source=str(path),
            expected="csv | fits | hdf5 | qp (.csv .fits .h5; qp: give fmt='qp')",
            found=str(fmt or path.suffix),
        )
    if fmt == "qp":
        _write_qp(post, data, path, grid, provenance)
        return
    t, grid = result_table(post, data, grid, save_samples)
    prov = json.dumps(provenance or {}, default=str)
    if fmt == "csv":
        flat = t.copy()
        pz = np.asarray(flat["pz"])
        del flat["pz"]
        for c in [c for c in flat.colnames if flat[c].ndim > 1]:
            del flat[c]
        for i, g in enumerate(grid):
            flat[f"pz_{g:.4f}"] = pz[:, i]
        flat.meta = {"comments": [f"provenance: {prov}", "p(z) columns pz_<z> are densities per unit z"]}
        flat.write(path, format="ascii.csv", overwrite=True, comment="# ")
    elif fmt == "fits":
        from astropy.io import fits

        t.meta = {"PZGRID": "see HDU PZ_GRID", "PROV": prov[:60]}
        hdus = fits.HDUList(
            [fits.PrimaryHDU(), fits.table_to_hdu(t), fits.ImageHDU(np.asarray(grid, np.float64), name="PZ_GRID")]
        )
        hdus[1].name = "PHOTOZ"
        hdus[0].header["PROVJSON"] = prov[:60]
        hdus.writeto(path, overwrite=True)
    else:
        import h5py

        with h5py.File(path, "w") as f:
            g = f.create_group("photoz")
            for c in t.colnames:
                g.create_dataset(c, data=np.asarray(t[c]))
            f.create_dataset("pz_grid", data=np.asarray(grid, np.float64))
            f.attrs["provenance"] = prov


def _write_qp(post: Posterior, data: CatalogData, path: Path, grid: np.ndarray | None, provenance: dict | None) -> None:
    """p(z) as a qp ``interp`` ensemble (HDF5 written by qp); summaries as ancillary columns."""
    if not qp_available():
        raise GPSError(
            "the qp format needs the optional package qp-prob, which is not installed",
            source=str(path),
            field="format",
            expected=f"qp installed ({QP_INSTALL}), or csv | fits | hdf5",
            found="no module named qp",
        )
    import qp

    t, grid = result_table(post, data, grid, save_samples=False)
    pz = np.asarray(t["pz"], dtype=np.float64)
    valid = np.asarray(t["valid"]).astype(bool) & np.all(np.isfinite(pz), axis=1) & (pz.sum(axis=1) > 0)
    pz[~valid] = 1.0 / (grid[-1] - grid[0])  # qp cannot hold an empty row: flat, with valid = 0
    ancil = {c: np.asarray(t[c]) for c in t.colnames if c != "pz" and np.asarray(t[c]).ndim == 1}
    ancil["valid"] = valid.astype(np.int8)
    ancil["id"] = np.asarray([str(i) for i in ancil["id"]]) if ancil["id"].dtype.kind == "O" else ancil["id"]
    ens = qp.interp.create_ensemble(np.asarray(grid, np.float64), pz, norm=False, warn=False, ancil=ancil)
    # qp picks its writer from the suffix: write NAME.hdf5 next to the target, then move it into place
    tmp = path.with_name(path.name + ".tmp.hdf5")
    try:
        ens.write_to(str(tmp))
        if provenance:
            import h5py

            with h5py.File(tmp, "a") as f:
                f.attrs["provenance"] = json.dumps(provenance, default=str)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
