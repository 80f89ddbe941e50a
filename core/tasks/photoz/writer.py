"""Photo-z result writer: per-galaxy summaries plus p(z) on a grid, as CSV, FITS or HDF5 (with provenance).

Columns: ``id``, ``z_true`` (when the input had a spec-z), ``z_median, z_p16, z_p84, z_mode, n_peaks``,
``valid`` and ``flag_bad`` (flagged photometry), then p(z) on ``grid`` (default 0-1.5 in steps of 0.005): one
2-D column ``pz`` in FITS/HDF5 (the grid in a second HDU / dataset ``pz_grid``), one column per grid node
``pz_<z>`` in CSV (the grid is the column names). With ``save_samples`` the posterior draws of every parameter
are added as a 2-D column ``<param>_samples``.
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

__all__ = ["write", "result_table", "DEFAULT_GRID"]

DEFAULT_GRID = np.round(np.arange(0.0, 1.5 + 1e-9, 0.005), 4)


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
    if fmt not in ("csv", "fits", "hdf5"):
        raise GPSError(
            "unknown output format",
            source=str(path),
            expected="csv | fits | hdf5 (.csv .fits .h5)",
            found=str(fmt or path.suffix),
        )
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
