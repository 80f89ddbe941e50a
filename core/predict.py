"""Batch prediction for large catalogues: stream an input table in chunks, write posterior summaries (map files go
to :mod:`core.predict_maps`).

Memory stays constant in the number of rows: each chunk is read, mapped onto the model's schema (the mapping and
unit conversions are decided once, on the first chunk), run through the model and appended to the output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["predict_file"]


def predict_file(input_path: str, out_path: str, *, checkpoint: str | None = None, task: str | None = None,
                 model: str | None = None, n_samples: int | None = None, save_samples: bool = False,
                 chunk_rows: int = 20000, seed: int = 0, device: str | None = None,
                 progress: bool = True, mode: str | None = None) -> dict[str, Any]:
    """Posterior summaries for every row of ``input_path`` written to ``out_path`` (CSV/FITS/HDF5).

    Map tasks (``exsitu_map``, ``central_mass``) go to :func:`core.predict_maps.predict_map_file` (a map file ->
    posterior maps or per-target summaries); ``mode`` is the exsitu_map inference mode.
    """
    from core import api
    from core.data.catalog import file_sha256
    from core.data.export import PosteriorWriter, format_from_path, posterior_columns
    from core.tasks import get_task

    fmt = format_from_path(out_path)
    m = None
    if checkpoint:
        m = api.load_checkpoint(checkpoint, expected_task=task)
        from core.inference.checkpoints import check_task_matches, data_task_of

        check_task_matches(m, data_task_of(input_path), checkpoint, input_path)   # a table, a map task's checkpoint
        task = m.task_name
    elif not task:
        raise GPSError("give --checkpoint FILE or --task NAME")
    if get_task(task).data_kind != "catalog":
        from core.predict_maps import predict_map_file

        return predict_map_file(input_path, out_path, task=task, model=m, checkpoint=checkpoint, model_name=model,
                                n_samples=n_samples, save_samples=save_samples, seed=seed, device=device,
                                progress=progress, mode=mode)
    if mode is not None:
        raise GPSError("--mode applies to the exsitu_map task only", field="--mode", found=mode)
    n_samples = int(n_samples or 1000)
    if save_samples and fmt == "csv":
        raise GPSError("posterior samples cannot be stored in CSV", source=out_path,
                       expected="a .fits or .h5/.hdf5 output with --save-samples")
    if m is None:
        m = api.load_bundled(task, model)
    spec = get_task(m.task_name)
    from core.data.io.tables import iter_table_chunks
    from core.data.schema import suggest_mapping, to_catalog
    from core.inference.sanity import FLAG_LEGEND, checked_posterior

    if chunk_rows < 1:
        raise GPSError("chunk size must be positive", field="--chunk-rows", found=str(chunk_rows))

    n_total = 0
    for chunk in iter_table_chunks(input_path, chunk_rows):
        n_total += len(chunk)
    if n_total == 0:
        raise GPSError("the input table has no rows", source=input_path)

    provenance = {"task": m.task_name, "model": m.name, "checkpoint": checkpoint or f"bundled:{m.task_name}",
                  "checkpoint_created": m.card.get("created", ""), "input_file": Path(input_path).name,
                  "input_sha256": file_sha256(input_path), "n_samples": n_samples, "seed": seed,
                  "training_data": m.card.get("provenance", {}).get("simulator", "file"),
                  "package_version": m.card.get("package_version", ""), "flag": FLAG_LEGEND}
    writer = None
    mapping = None
    done = masked = 0
    t0 = time.perf_counter()
    bar = _bar(n_total, progress)
    try:
        for i, chunk in enumerate(iter_table_chunks(input_path, chunk_rows)):
            if mapping is None:
                mapping = suggest_mapping(chunk, spec)
            data, report = to_catalog(chunk, spec, mapping=mapping, source=Path(input_path).name)
            for w in report.warnings:
                print(f"note: {w}", file=sys.stderr)
            data.ids = np.arange(done, done + len(data)) if "id" not in chunk.colnames else data.ids
            post = checked_posterior(m, data, n_samples=n_samples, seed=seed + i, device=device)
            cols = posterior_columns(post, data)
            if writer is None:
                writer = PosteriorWriter(out_path, fmt, n_total=n_total, columns={k: u for k, (_, u) in cols.items()},
                                         sample_shape=(n_samples, len(post.params)) if save_samples else None,
                                         params=post.params, provenance=provenance)
            writer.write({k: v for k, (v, _) in cols.items()},
                         post.sample(n_samples, seed + i) if save_samples else None)
            done += len(data)
            masked += int(np.count_nonzero(post.diagnostics.get("flag", 0)))
            bar(done)
        writer.close()
    except BaseException:
        if writer is not None:
            part = Path(str(out_path) + ".part")
            part.unlink(missing_ok=True)
        raise
    dt = time.perf_counter() - t0
    if progress:
        print(file=sys.stderr)
    return {"out": str(out_path), "rows": done, "rows_masked": masked, "seconds": round(dt, 2),
            "objects_per_second": round(done / max(dt, 1e-9), 1), "model": m.name, "task": m.task_name}


def _bar(total: int, enabled: bool):
    if not enabled:
        return lambda done: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="obj", file=sys.stderr, dynamic_ncols=True)

    def update(done: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
