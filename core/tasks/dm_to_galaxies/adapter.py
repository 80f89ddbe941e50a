"""The dm_to_galaxies data adapter: simulate fields, read a user's field file, check a model's grid."""

from __future__ import annotations

from typing import Any

from core.errors import GPSError
from core.tasks.dm_to_galaxies.data import FieldData, simulate
from core.tasks.dm_to_galaxies.io import read_field
from core.tasks.dm_to_galaxies.simulator import FieldSimConfig

__all__ = ["FieldDataAdapter"]


class FieldDataAdapter:
    """The task's data adapter (see core.tasks.base)."""

    container = FieldData
    unit = "field"

    def simulate(self, n: int, seed: int, config: FieldSimConfig | dict | None = None) -> FieldData:
        return simulate(n, seed, config)

    def read(self, path: str, **options: Any) -> FieldData:
        return read_field(path, **options)

    def prepare(self, model: Any, data: FieldData) -> FieldData:
        grid = getattr(model, "grid", None)
        if grid is not None and tuple(grid) != data.grid:
            raise GPSError(
                f"the model {getattr(model, 'name', '')!r} runs on {tuple(grid)} fields",
                field="dm",
                expected=str(tuple(grid)),
                found=str(data.grid),
            )
        return data
