"""Photo-z prediction on a catalogue file as a Python call: read (any supported format), posterior, write.

``python -m core predict --task photoz --input FILE --out OUT`` runs the shared path (:mod:`core.predict`: the
task's data adapter, a bundled or given checkpoint, the task's writer); this function is the same steps for a
model built in place (default: the template posterior ``exact``, which needs no training) and returns the table.
Both add ``z_median, z_p16, z_p84, z_mode, n_peaks`` (and ``valid``/``flag_bad``) plus p(z) on a grid
(:mod:`core.tasks.photoz.writer`). Mock-trained models and the template posterior see a file's errors with the
simulator's calibration floor added in quadrature (the adapter's ``prepare``,
:func:`core.tasks.photoz.simulator.floor_errors`).
"""

from __future__ import annotations

import os
from typing import Any

from core.errors import GPSError

__all__ = ["predict_file"]


def predict_file(
    path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    model: str = "exact",
    checkpoint: str | os.PathLike | None = None,
    n_samples: int = 500,
    seed: int = 0,
    grid=None,
    **read_options: Any,
):
    """Run a photo-z model on a file; returns the result table (and writes it when ``output`` is given)."""
    from core import api
    from core.models.base import build_model
    from core.tasks.photoz.models.common import INPUTS
    from core.tasks.photoz.writer import result_table, write

    data = api.read_data(path, "photoz", **read_options)
    if checkpoint is not None:
        m = api.load_checkpoint(checkpoint, expected_task="photoz")
    elif api.task_obj("photoz").capabilities(model).exact:
        m = build_model("photoz", model, {}, INPUTS, ("z",))
    else:
        raise GPSError(
            "this model needs a trained checkpoint",
            field="checkpoint",
            expected="--checkpoint FILE (or model 'exact', the template posterior, which needs none)",
            found=model,
        )
    prepared = api.prepare(m, data)
    post = api.posterior(m, prepared, n_samples=n_samples, seed=seed)
    prov = {
        "task": "photoz",
        "model": m.name,
        "input": data.meta.get("file"),
        "sha256": data.meta.get("sha256"),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "n_flagged": data.meta.get("n_flagged"),
    }
    if output is not None:
        write(post, prepared, output, provenance=prov, grid=grid)
    return result_table(post, prepared, grid)[0]
