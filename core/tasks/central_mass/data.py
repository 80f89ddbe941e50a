"""central_mass data adapter: r-band image (+ g-r map) and v / sigma maps, each at its own size
(:class:`~core.data.central_data.CentralMassData`), from the IFU simulator or a MaNGA DAP MAPS file."""

from __future__ import annotations

import os
from typing import Any

from core.errors import GPSError
from core.tasks.base import DataAdapter

__all__ = ["DATA"]


def simulate(n: int, seed: int, cfg, use_cache: bool = True) -> Any:
    """``n`` simulated galaxies x 3 projections (the IFU simulator caches its own arrays)."""
    from core.data.central_data import from_central_set
    from core.data.simulators.ifu import simulate_central

    data = from_central_set(simulate_central(n, seed, cfg, cache=True))
    data.meta.update({"simulator": "ifu", "config": cfg.to_dict(), "n_galaxies": n, "seed": seed})
    return data


def read(path, redshift: float | None = None, **_: Any):
    """A MaNGA DAP MAPS file as one object (image from SPX_MFLUX, STELLAR_VEL, corrected STELLAR_SIGMA)."""
    from core.data.io.registry import identify_format

    fmt = identify_format(path, kind="maps")
    if fmt != "manga_dap":
        raise GPSError(
            "central_mass reads MaNGA DAP MAPS files (STELLAR_VEL, STELLAR_SIGMA, SPX_MFLUX)",
            source=os.path.basename(str(path)),
            expected="a MaNGA DAP MAPS FITS file",
            found=f"format {fmt}",
        )
    from core.data.central_data import from_manga_dap

    return from_manga_dap(path, redshift=redshift)


def prepare(model, data):
    """The inputs the model needs (each at its own size), or a message naming the missing ones and the bundled
    checkpoints that can run on these data."""
    from core.inference.bundled import channel_sets

    feats = tuple(model.features)
    missing = [f for f in feats if f not in data.maps]
    if missing:
        runnable = [k for k, chans in channel_sets(model.task_name).items() if all(c in data.maps for c in chans)]
        raise GPSError(
            f"{data.source} lacks input(s) {', '.join(missing)} needed by the {model.name} model "
            f"({', '.join(feats)}); present: {', '.join(data.maps)}"
            + ("; models that can run: " + ", ".join(runnable) if runnable else "; train a model on the inputs present")
        )
    return data.select(feats)


def save(data, out_path: str) -> str:
    """central_mass sets are simulated on the fly (no file format)."""
    raise GPSError(
        "central_mass sets have no file format: train and evaluate simulate them on the fly "
        "(python -m core train|evaluate --task central_mass --simulate N; cached by configuration "
        "hash in the dataset cache)",
        field="--task",
        found="central_mass",
    )


DATA = DataAdapter(
    container="CentralMassData",
    simulate=simulate,
    read=read,
    prepare=prepare,
    save=save,
    unit="map set",
    file_kinds="MaNGA DAP MAPS files",
    check_save=lambda out_path: save(None, out_path),
)
