"""Write predicted galaxy fields (probability, expected count, optional samples) as .npy, HDF5 or FITS.

Layout: HDF5 datasets ``prob``, ``expected``, ``occupied`` (uint8), optional ``samples`` (n, S, *grid) and ``dm``
with attributes box_size [Mpc/h], threshold, method and the provenance JSON; FITS one image HDU per array (same
names as EXTNAME, BOXSIZE / THRESH / METHOD in the primary header); .npy an (n, 2, *grid) stack [prob, expected]
(samples beside it as ``<stem>_samples.npy`` when asked).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from core.errors import GPSError
from core.tasks.dm_to_galaxies.data import FieldData, FieldPosterior

__all__ = ["write_fields", "FIELD_FORMATS"]

FIELD_FORMATS = ("npy", "hdf5", "fits")


def write_fields(
    post: FieldPosterior,
    data: FieldData,
    path: str | os.PathLike,
    fmt: str | None = None,
    *,
    provenance: dict | None = None,
    save_samples: bool = False,
    **_: object,
) -> None:
    """Write ``post`` for the fields of ``data`` to ``path`` (format from ``fmt`` or the file name). Generic writer
    options that do not apply to fields (``n_samples``: the samples are the posterior's own) are ignored."""
    path = Path(path)
    fmt = fmt or {".npy": "npy", ".h5": "hdf5", ".hdf5": "hdf5", ".fits": "fits", ".fit": "fits"}.get(
        path.suffix.lower()
    )
    if fmt not in FIELD_FORMATS:
        raise GPSError(
            "unknown output format for fields", source=str(path), expected=" | ".join(FIELD_FORMATS), found=str(fmt)
        )
    arrays = {
        "prob": post.prob.astype(np.float32),
        "expected": post.expected.astype(np.float32),
        "occupied": post.occupied.astype(np.uint8),
    }
    if save_samples and post.samples is not None:
        arrays["samples"] = post.samples.astype(np.int16)
    prov = json.dumps(provenance or {}, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        np.save(path, np.stack([arrays["prob"], arrays["expected"]], 1))
        if "samples" in arrays:
            np.save(path.with_name(path.stem + "_samples.npy"), arrays["samples"])
    elif fmt == "hdf5":
        import h5py

        with h5py.File(path, "w") as f:
            for k, v in {**arrays, "dm": data.dm}.items():
                f.create_dataset(k, data=v, compression="gzip")
            f.attrs.update(
                {
                    "box_size": data.box_size,
                    "box_size_unit": "Mpc/h",
                    "threshold": post.threshold,
                    "method": post.method,
                    "provenance": prov,
                    "prob": "P(N >= 1 | DM) per voxel",
                    "expected": "E[N | DM] galaxies per voxel",
                }
            )
    else:
        from astropy.io import fits

        hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(v, name=k.upper()) for k, v in arrays.items()]
        hdus[0].header["BOXSIZE"] = (float(data.box_size), "box side [Mpc/h]")
        hdus[0].header["THRESH"] = (float(post.threshold), "operating point on P(N>=1)")
        hdus[0].header["METHOD"] = post.method
        hdus[0].header["PROVNCE"] = prov[:60]
        fits.HDUList(hdus).writeto(path, overwrite=True)
