"""Photo-z prediction on a catalogue file: read (any supported format), posterior, write summaries + p(z) grid.

``predict_file(input, output, model=..., checkpoint=...)`` is what ``predict --task photoz --input FILE`` runs:
it adds ``z_median, z_p16, z_p84, z_mode, n_peaks`` (and ``valid``/``flag_bad``) plus p(z) on a grid
(:mod:`core.tasks.photoz.writer`). Without a checkpoint the template posterior (``exact``, no training needed)
is used; mock-trained models and the template posterior see the file's errors with the simulator's calibration
floor added in quadrature (:func:`core.tasks.photoz.simulator.floor_errors`).
"""

from __future__ import annotations

import os
from typing import Any

from core.errors import GPSError

__all__ = ["predict_file"]

_MOCK_TRAINED = ("exact", "mmvae")


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
    from core.inference.checkpoints import load_checkpoint
    from core.models.base import build_model
    from core.tasks.photoz.io import read_photometry
    from core.tasks.photoz.models.common import INPUTS
    from core.tasks.photoz.simulator import PhotozSimConfig, floor_errors
    from core.tasks.photoz.writer import result_table, write

    data = read_photometry(path, **read_options)
    if checkpoint is not None:
        m = load_checkpoint(checkpoint, expected_task="photoz")
    elif model == "exact":
        m = build_model("photoz", "exact", {}, INPUTS, ("z",))
    else:
        raise GPSError(
            "this model needs a trained checkpoint",
            field="checkpoint",
            expected="--checkpoint FILE (or model 'exact', the template posterior, which needs none)",
            found=model,
        )
    if m.name in _MOCK_TRAINED and data.meta.get("source") == "file":
        data = floor_errors(data, PhotozSimConfig())
    post = m.posterior(data, n_samples=n_samples, seed=seed)
    prov = {
        "task": "photoz",
        "model": m.name,
        "input": data.meta.get("file"),
        "sha256": data.meta.get("sha256"),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "n_flagged": data.meta.get("n_flagged"),
    }
    if output is not None:
        write(post, data, output, provenance=prov, grid=grid)
    return result_table(post, data, grid)[0]
