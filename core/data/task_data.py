"""One mechanism per task for its data: simulate a labelled set, read a user's file, bring data onto a model's grid.

Every task has one data container — ``halo_mass``: :class:`~core.data.catalog.CatalogData`; ``exsitu_map``:
:class:`~core.data.maps.MapStack`; ``central_mass``: :class:`~core.data.central_data.CentralMassData` — and every
container answers the same questions (``len``, ``features``, ``has_truth``, ``select_features``, ``subset``,
``fingerprint``, ``meta``, ``extra["galaxy_id"]``). :data:`TASK_DATA` maps a task to its :class:`TaskData`
adapter; ``core.api``, the CLI and the app go through it, so a new task plugs in by registering one adapter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.errors import GPSError

__all__ = ["TaskData", "TASK_DATA", "task_data", "RHALF_OVER_REFF"]

#: r_1/2 (3-D stellar half-mass radius, the simulator's unit of field of view) over the projected half-light
#: radius R_e that real files carry (the simulator's population gives ~1.3; Wolf+10 use 4/3)
RHALF_OVER_REFF = 1.33


@dataclass(frozen=True)
class TaskData:
    """``simulate(n_galaxies, seed, config)``; ``read(path, **options)``; ``prepare(model, data)`` returns the data
    the model can run on (channels selected, regridded onto its grid) or raises GPSError saying what is missing;
    ``demo_galaxies``: size of the bundled demo set; ``unit``: what one object is, for messages."""

    container: str
    simulate: Callable[..., Any]
    read: Callable[..., Any]
    prepare: Callable[[Any, Any], Any]
    demo_galaxies: int
    unit: str
    file_kinds: str


# --------------------------------------------------------------------------------------------------- halo_mass
def _catalog_simulate(n: int, seed: int, cfg) -> Any:
    from core.data.simulators import SIMULATORS

    return SIMULATORS.get("catalog").simulate(n, seed, cfg)


def _catalog_read(path, task: str = "halo_mass", **_: Any):
    from core.data import io as dio
    from core.data.schema import suggest_mapping, to_catalog
    from core.tasks import get_task

    table = dio.read(path, kind="table")
    spec = get_task(task)
    data, _report = to_catalog(table, spec, mapping=suggest_mapping(table, spec), source=Path(path).name)
    return data


def _identity(model, data):
    return data


# --------------------------------------------------------------------------------------------------- exsitu_map
def _exsitu_simulate(n: int, seed: int, cfg) -> Any:
    from core.data.simulators.ifu import simulate_ifu

    stack = simulate_ifu(n, seed, cfg, cache=True).to_mapstack()
    stack.meta.update({"simulator": "ifu", "config": cfg.to_dict(), "n_galaxies": n, "seed": seed})
    return stack


def _maps_read(path, **_: Any):
    from core.data import io as dio

    stack = dio.read(path, kind="maps")
    return stack.to_canonical_units()


def _exsitu_prepare(model, stack):
    """Channels the model needs (or a message naming the missing ones and the bundled models that can run), then
    the model's grid: ``map_size`` pixels over ``fov_rhalf`` r_1/2 = ``fov_rhalf`` x 1.33 R_e of the file."""
    from core.data.maps import describe_missing

    feats = tuple(model.features)
    msg = describe_missing(stack, feats, models_by_channels=_bundled_channel_sets(model.task_name),
                           needed_by=f"the {model.name} model ({', '.join(feats)})")
    if msg:
        raise GPSError(msg + ("" if "models that can run" in msg else "; train a model on the channels present"))
    sel = stack.select_channels(feats)
    size = int(model.config.map_size)
    fov = _training_fov(model)
    on_grid = sel.meta.get("source") == "simulator" and sel.data.shape[2:] == (size, size) and \
        abs(float(sel.meta.get("config", {}).get("fov_rhalf", fov)) - fov) < 1e-9
    if on_grid:
        return sel
    reff = np.asarray(sel.reff_arcsec, float)
    if not np.all(np.isfinite(reff) & (reff > 0)):
        raise GPSError("the effective radius is unknown, so the maps cannot be put on the model's grid (its field of "
                       f"view is {fov:g} r_1/2 = {fov * RHALF_OVER_REFF:.3g} R_e)", source=sel.source,
                       field="reff_arcsec", expected="R_e in arcsec (header REFF, or pass reff_arcsec)",
                       found="unknown")
    out = sel.regrid(size, fov * RHALF_OVER_REFF)
    out.meta.setdefault("notes", [])
    out.meta["notes"] = list(out.meta["notes"]) + [
        f"regridded onto the model grid: {size} x {size} pixels over {fov:g} r_1/2 = {fov * RHALF_OVER_REFF:.3g} R_e "
        f"(r_1/2 = {RHALF_OVER_REFF} R_e)"]
    return out


def _training_fov(model) -> float:
    """Field of view (in r_1/2) of the maps the model was trained on (the simulator setting in its card)."""
    from core.data.simulators.ifu_config import IFUSimConfig

    cfg = (getattr(model, "card", None) or {}).get("provenance", {}).get("config", {})
    return float(cfg.get("fov_rhalf", IFUSimConfig().fov_rhalf)) if isinstance(cfg, dict) else IFUSimConfig().fov_rhalf


def _bundled_channel_sets(task: str) -> dict[str, tuple[str, ...]]:
    """Bundled checkpoint file -> the inputs it needs (for "which models can run on this file")."""
    from core import api

    out = {}
    for b in api.bundled_checkpoints(task):
        names = tuple(b["metadata"].get("features") or ())
        out[f"{b['file']} ({', '.join(names)})"] = names
    return out


# --------------------------------------------------------------------------------------------------- central_mass
def _central_simulate(n: int, seed: int, cfg) -> Any:
    from core.data.central_data import from_central_set
    from core.data.simulators.ifu import simulate_central

    data = from_central_set(simulate_central(n, seed, cfg, cache=True))
    data.meta.update({"simulator": "ifu", "config": cfg.to_dict(), "n_galaxies": n, "seed": seed})
    return data


def _central_read(path, redshift: float | None = None, **_: Any):
    """A MaNGA DAP MAPS file as one object (image from SPX_MFLUX, STELLAR_VEL, corrected STELLAR_SIGMA)."""
    from core.data.io.registry import identify_format

    fmt = identify_format(path, kind="maps")
    if fmt != "manga_dap":
        raise GPSError("central_mass reads MaNGA DAP MAPS files (STELLAR_VEL, STELLAR_SIGMA, SPX_MFLUX)",
                       source=os.path.basename(str(path)), expected="a MaNGA DAP MAPS FITS file",
                       found=f"format {fmt}")
    from core.data.central_data import from_manga_dap

    return from_manga_dap(path, redshift=redshift)


def _central_prepare(model, data):
    feats = tuple(model.features)
    missing = [f for f in feats if f not in data.maps]
    if missing:
        runnable = [k for k, chans in _bundled_channel_sets(model.task_name).items()
                    if all(c in data.maps for c in chans)]
        raise GPSError(f"{data.source} lacks input(s) {', '.join(missing)} needed by the {model.name} model "
                       f"({', '.join(feats)}); present: {', '.join(data.maps)}" +
                       ("; models that can run: " + ", ".join(runnable) if runnable else
                        "; train a model on the inputs present"))
    return data.select(feats)


TASK_DATA: dict[str, TaskData] = {
    "halo_mass": TaskData("CatalogData", _catalog_simulate, _catalog_read, _identity, 2000, "galaxy",
                          "catalogue tables (CSV, FITS, HDF5, Parquet, TNG group catalogue)"),
    "exsitu_map": TaskData("MapStack", _exsitu_simulate, _maps_read, _exsitu_prepare, 12, "map",
                           "IFU map files (MaNGA DAP MAPS, Pipe3D HDF5, Firefly CSV, our HDF5 map stack)"),
    "central_mass": TaskData("CentralMassData", _central_simulate, _central_read, _central_prepare, 40, "map set",
                             "MaNGA DAP MAPS files"),
}


def task_data(task: str) -> TaskData:
    if task not in TASK_DATA:
        raise GPSError(f"no data adapter for task {task!r}", expected=", ".join(TASK_DATA), found=task)
    return TASK_DATA[task]
