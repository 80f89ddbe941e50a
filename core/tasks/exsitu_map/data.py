"""exsitu_map data adapter: IFU map stacks (MapStack) from the IFU simulator or a user's map file, put on a model's
grid (``map_size`` pixels over ``fov_rhalf`` r_1/2) before inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import GPSError
from core.tasks.base import DataAdapter

__all__ = ["DATA", "RHALF_OVER_REFF", "read_maps"]

#: r_1/2 (3-D stellar half-mass radius, the simulator's unit of field of view) over the projected half-light
#: radius R_e that real files carry (the simulator's population gives ~1.3; Wolf+10 use 4/3)
RHALF_OVER_REFF = 1.33


def simulate(n: int, seed: int, cfg, use_cache: bool = True) -> Any:
    """``n`` simulated galaxies x 3 projections as one MapStack (the IFU simulator caches its own arrays)."""
    from core.data.simulators.ifu import simulate_ifu

    stack = simulate_ifu(n, seed, cfg, cache=True).to_mapstack()
    stack.meta.update({"simulator": "ifu", "config": cfg.to_dict(), "n_galaxies": n, "seed": seed})
    return stack


def read_maps(source, reff_arcsec: Any = None, **options: Any):
    """Map file(s) (MaNGA DAP, Pipe3D, Firefly, SAMI kinematics, our HDF5 map stack) in canonical units: one file, or
    several (a list, a folder or a glob) whose files of one object combine by id (a SAMI galaxy's velocity and
    dispersion files by CATID). ``reff_arcsec``: R_e [arcsec] for files that carry none (SAMI, Firefly), a number
    or a mapping id -> R_e; it replaces a file's value. ``options`` go to the readers."""
    from core.data.io.map_sets import read_map_files

    return read_map_files(source, reff_arcsec=reff_arcsec, **options).to_canonical_units()


def prepare(model, stack):
    """Channels the model needs (or a message naming the missing ones and the bundled models that can run), then
    the model's grid: ``map_size`` pixels over ``fov_rhalf`` r_1/2 = ``fov_rhalf`` x 1.33 R_e of the file."""
    from core.data.maps import describe_missing
    from core.inference.bundled import channel_sets

    feats = tuple(model.features)
    msg = describe_missing(
        stack,
        feats,
        models_by_channels=channel_sets(model.task_name),
        needed_by=f"the {model.name} model ({', '.join(feats)})",
    )
    if msg:
        raise GPSError(msg + ("" if "models that can run" in msg else "; train a model on the channels present"))
    sel = stack.select_channels(feats)
    size = int(model.config.map_size)
    fov = _training_fov(model)
    on_grid = (
        sel.meta.get("source") == "simulator"
        and sel.data.shape[2:] == (size, size)
        and abs(float(sel.meta.get("config", {}).get("fov_rhalf", fov)) - fov) < 1e-9
    )
    if on_grid:
        return sel
    reff = np.asarray(sel.reff_arcsec, float)
    if not np.all(np.isfinite(reff) & (reff > 0)):
        lack = [str(i) for i, r in zip(sel.ids, reff) if not (np.isfinite(r) and r > 0)]
        raise GPSError(
            "the effective radius is unknown, so the maps cannot be put on the model's grid (its field of "
            f"view is {fov:g} r_1/2 = {fov * RHALF_OVER_REFF:.3g} R_e)",
            source=sel.source,
            field="reff_arcsec",
            expected="R_e in arcsec (header REFF, or give it: reff_arcsec= in core.api.read_data, --reff-arcsec in "
            "predict, the R_e box on the Data page)",
            found="unknown"
            if len(sel) == 1
            else f"unknown for {len(lack)} of {len(sel)} objects: {', '.join(lack[:5])}",
        )
    out = sel.regrid(size, fov * RHALF_OVER_REFF)
    out.meta.setdefault("notes", [])
    out.meta["notes"] = list(out.meta["notes"]) + [
        f"regridded onto the model grid: {size} x {size} pixels over {fov:g} r_1/2 = {fov * RHALF_OVER_REFF:.3g} R_e "
        f"(r_1/2 = {RHALF_OVER_REFF} R_e)"
    ]
    return out


def check_save(out_path: str) -> None:
    from core.data.export import format_from_path

    if format_from_path(out_path) != "hdf5":
        raise GPSError(
            "simulated map stacks are written as our HDF5 map stack",
            source=str(out_path),
            field="--out",
            expected="a name ending in .h5 / .hdf5 (e.g. sim.maps.h5)",
        )


def save(stack, out_path: str) -> str:
    """Write a simulated map stack as our HDF5 map stack (with the true maps); atomic."""
    check_save(out_path)
    out = Path(out_path)
    tmp = out.with_name(out.name + ".part")
    try:
        stack.to_hdf5(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    n = int(stack.meta.get("n_galaxies", len(stack)))
    return (
        f"wrote {len(stack)} simulated maps ({n} galaxies x {len(stack) // max(n, 1)} projections; channels "
        f"{', '.join(stack.channels)}; {stack.data.shape[2]}x{stack.data.shape[3]} pixels; truth "
        f"{', '.join(k for k in stack.targets)}) to {out}"
    )


def _training_fov(model) -> float:
    """Field of view (in r_1/2) of the maps the model was trained on (the simulator setting in its card)."""
    from core.data.simulators.ifu_config import IFUSimConfig

    cfg = (getattr(model, "card", None) or {}).get("provenance", {}).get("config", {})
    return float(cfg.get("fov_rhalf", IFUSimConfig().fov_rhalf)) if isinstance(cfg, dict) else IFUSimConfig().fov_rhalf


DATA = DataAdapter(
    container="MapStack",
    simulate=simulate,
    read=read_maps,
    prepare=prepare,
    save=save,
    unit="map",
    check_save=check_save,
    file_kinds="IFU map files (MaNGA DAP MAPS, Pipe3D HDF5, Firefly CSV, SAMI stellar velocity + dispersion FITS, "
    "our HDF5 map stack)",
    multi_file=True,
    read_options=("reff_arcsec",),
)
