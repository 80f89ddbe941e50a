"""halo_mass data adapter: catalogue tables (CatalogData) from the catalogue simulator or a user's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.tasks.base import DataAdapter

__all__ = ["DATA", "exact_posterior"]


def simulate(n: int, seed: int, cfg, use_cache: bool = True) -> Any:
    """``n`` simulated central galaxies (cached by configuration hash outside the repo unless ``use_cache=False``)."""
    from core.data.simulators import SIMULATORS

    sim = SIMULATORS.get("catalog")
    if not use_cache:
        return sim.simulate(n, seed, cfg)
    from core.data.cache import cached

    return cached(sim.name, cfg, n, seed, lambda: sim.simulate(n, seed, cfg))


def read(path, **_: Any):
    """A catalogue table mapped onto the task's inputs by the automatic column mapping."""
    from core.data import io as dio
    from core.data.schema import suggest_mapping, to_catalog
    from core.tasks import get_task

    table = dio.read(path, kind="table")
    spec = get_task("halo_mass")
    data, _report = to_catalog(table, spec, mapping=suggest_mapping(table, spec), source=Path(path).name)
    return data


def prepare(model, data):
    """Catalogues need no preparation: the model selects its features (and refuses missing ones)."""
    return data


def save(data, out_path: str) -> str:
    """Write a simulated catalogue as a table (.csv, .fits, .h5/.hdf5, .parquet); atomic."""
    from core.data import io as dio

    out = Path(out_path)
    tmp = out.with_name(out.stem + ".part" + "".join(out.suffixes))
    dio.write(data.to_table(), tmp)
    tmp.replace(out)
    return (
        f"wrote {len(data)} simulated objects ({', '.join(data.features)}; target {', '.join(data.targets)}) to {out}"
    )


def exact_posterior(data):
    """The catalogue simulator's exact posterior when ``data`` were simulated by it, else None."""
    from core.data.simulators import exact_posterior as exact

    return exact(data)


DATA = DataAdapter(
    container="CatalogData",
    simulate=simulate,
    read=read,
    prepare=prepare,
    save=save,
    unit="galaxy",
    file_kinds="catalogue tables (CSV, FITS, HDF5, Parquet, TNG group catalogue)",
    table_input=True,
)
