"""Batch prediction: a file in, posterior summaries (or maps) out, for any task.

* Tasks whose users bring tables (``Task.data.table_input``): the table is streamed in chunks; memory stays constant
  in the number of rows (the column mapping and unit conversions are decided once, on the first chunk); every chunk
  is run through the model and appended to the output (:class:`core.data.export.PosteriorWriter`).
* Other tasks (map files): the file is read by the task's adapter, put on the model's grid (or refused with one
  message naming the missing inputs and the bundled models that can run), and the posterior is written by the task's
  result writer (``Task.writer``: e.g. posterior f_ex maps as FITS / HDF5 with the input's WCS, or per-target
  summaries as CSV / FITS / HDF5), with provenance (:func:`core.data.provenance.result_provenance`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["predict_file"]


def predict_file(
    input_path: str | list[str],
    out_path: str,
    *,
    checkpoint: str | None = None,
    task: str | None = None,
    model: str | None = None,
    n_samples: int | None = None,
    save_samples: bool = False,
    chunk_rows: int = 20000,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    mode: str | None = None,
    column_map: list[str] | None = None,
    h: float | None = None,
    id_column: str | None = None,
    loaded_model=None,
    reff_arcsec: Any = None,
) -> dict[str, Any]:
    """Posterior of every object of ``input_path`` written to ``out_path`` (format from its name); ``mode``: an
    inference mode of the model (its capabilities list them). Tables: ``column_map`` (``COLUMN=INPUT[:UNIT]`` items,
    on top of the suggested mapping: :mod:`core.data.column_map`), ``h`` and ``id_column`` as on the app's Data page;
    the validation report's warnings go to stderr and into the output's provenance. ``loaded_model``: a model already
    loaded (batch workers load theirs once; ``checkpoint`` is then only its label). Map tasks whose adapter reads
    several files take a list of files, a folder or a glob as ``input_path`` (the files of one object are combined,
    e.g. a SAMI galaxy's velocity and dispersion files); ``reff_arcsec``: R_e for files that carry none (a number, a
    mapping id -> R_e, or ``--reff-arcsec`` strings). Returns a JSON-ready summary."""
    from core import api
    from core.data.export import format_from_path

    fmt = format_from_path(out_path)
    if isinstance(input_path, (list, tuple)) and len(input_path) == 1:
        input_path = input_path[0]
    first = input_path[0] if isinstance(input_path, (list, tuple)) else input_path
    m = loaded_model
    if m is not None:
        task = m.task_name
    elif checkpoint:
        m = api.load_checkpoint(checkpoint, expected_task=task)
        from core.inference.checkpoints import check_task_matches, data_task_of

        check_task_matches(m, data_task_of(first), checkpoint, first)  # a table, a map task's checkpoint
        task = m.task_name
    elif not task:
        raise GPSError("give --checkpoint FILE or --task NAME")
    t = api.task_obj(task)
    n_samples = int(n_samples or t.defaults.draws)
    writer = t.writer
    if fmt not in writer.formats:
        raise GPSError(
            f"{task} posteriors are written as {writer.what}",
            source=str(out_path),
            field="--out",
            expected="a name ending in "
            + " or ".join({"csv": ".csv", "fits": ".fits", "hdf5": ".h5/.hdf5"}.get(f, f) for f in writer.formats),
            found=Path(out_path).suffix or "no extension",
        )
    if save_samples and fmt not in writer.sample_formats:
        raise GPSError(
            f"posterior samples of {task} are stored in {' or '.join(writer.sample_formats) or 'no'} outputs",
            source=str(out_path),
            field="--save-samples",
            expected=" | ".join(writer.sample_formats) or "no --save-samples",
        )
    from core.data.io.map_sets import is_several, parse_reff

    if is_several(input_path) and not getattr(t.data, "multi_file", False):
        raise GPSError(
            f"{task} reads one --input file at a time"
            + (" (python -m core batch runs many)" if t.data.table_input else ""),
            field="--input",
            expected="one file",
            found=", ".join(map(str, input_path))[:200] if isinstance(input_path, (list, tuple)) else str(input_path),
        )
    read_opts: dict[str, Any] = {}
    if reff_arcsec is not None:
        if "reff_arcsec" not in getattr(t.data, "read_options", ()):
            raise GPSError(
                f"--reff-arcsec does not apply to {task}",
                field="--reff-arcsec",
                expected=f"no --reff-arcsec ({task} reads {t.data.file_kinds})",
            )
        read_opts["reff_arcsec"] = parse_reff(reff_arcsec) if isinstance(reff_arcsec, (list, tuple)) else reff_arcsec
    if t.data.table_input:
        if m is None:
            m = api.load_bundled(task, model)
        _check_mode(api, m, mode, None)
        from core.data.column_map import parse_column_map

        mapping, units = parse_column_map(column_map, api.get_task(task))
        table_opts = {"mapping": mapping, "units": units or None, "h": h, "id_column": id_column}
        return _predict_table(
            api,
            m,
            input_path,
            out_path,
            fmt,
            checkpoint,
            n_samples,
            save_samples,
            chunk_rows,
            seed,
            device,
            progress,
            table_opts,
        )
    if column_map or h is not None or id_column:
        raise GPSError(f"--map, --h and --id-column apply to tables; {task} reads {t.data.file_kinds}", field="--map")
    return _predict_file(
        t, m, model, input_path, out_path, checkpoint, n_samples, save_samples, seed, device, progress, mode, read_opts
    )


def _check_mode(api, m, mode: str | None, data) -> dict[str, Any]:
    """The model options for ``mode`` (checked against the model's capabilities)."""
    caps = api.capabilities(m)
    if mode is None:
        return {"mode": caps.modes[0]} if caps.modes else {}
    if mode not in caps.modes:
        raise GPSError(
            f"--mode does not apply to the {m.name} model",
            field="--mode",
            expected=" | ".join(caps.modes) or "no --mode",
            found=mode,
        )
    if mode in caps.truth_modes and data is not None and not data.has_truth:
        raise GPSError(
            f"the {mode} mode needs the true target",
            source=getattr(data, "source", None),
            field="--mode",
            expected=" | ".join(x for x in caps.modes if x not in caps.truth_modes) + " for a real file",
            found=mode,
        )
    return {"mode": mode}


def _predict_file(
    t, m, model_name, input_path, out_path, checkpoint, n, save_samples, seed, device, progress, mode, read_opts
) -> dict[str, Any]:
    from core import api
    from core.data.export import format_from_path
    from core.data.provenance import result_provenance
    from core.inference.bundled import bundled_file

    t0 = time.perf_counter()
    if m is not None:
        _check_mode(api, m, mode, None)  # a wrong option fails before the file is read
    data = api.read_data(input_path, t.name, **read_opts)
    if m is None:
        m = api.load_bundled(t.name, model_name, data=data)
        label = "bundled:" + bundled_file(m)
    else:
        label = str(checkpoint or "given model")
    prepared = api.prepare(m, data)
    t_read = time.perf_counter() - t0
    options = _check_mode(api, m, mode, prepared)
    if save_samples:
        options["keep_samples"] = len(prepared)
    t1 = time.perf_counter()
    from core.inference.sanity import checked_posterior

    post = checked_posterior(
        m,
        prepared,
        n_samples=n,
        seed=seed,
        device=device,
        progress=_bar(len(prepared), progress, t.data.unit),
        **options,
    )
    from core.metrics import typicality

    typicality.annotate(m, prepared, post)  # per-object typicality_p / atypical (tables only)
    t_post = time.perf_counter() - t1
    prov = result_provenance(
        m, checkpoint=label, data=data, prepared=prepared, input_path=input_path, n_samples=n, seed=seed, **options
    )
    prov.pop("keep_samples", None)
    typ = typicality.summary(post)
    if typ is not None:
        prov["typicality"] = typicality.DESCRIPTION
    t.writer(post, prepared, out_path, format_from_path(out_path), provenance=prov, save_samples=save_samples)
    summary = t.writer.summary(post) if t.writer.summary else {"objects": int(post.n)}
    if typ is not None:
        summary["typicality"] = typ
    return {
        "out": str(out_path),
        "task": t.name,
        "model": m.name,
        "checkpoint": label,
        **summary,
        "read_prepare_seconds": round(t_read, 2),
        "posterior_seconds": round(t_post, 2),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _predict_table(
    api, m, input_path, out_path, fmt, checkpoint, n_samples, save_samples, chunk_rows, seed, device, progress, opts
) -> dict[str, Any]:
    from core.data.export import PosteriorWriter, posterior_columns
    from core.data.io.tables import iter_table_chunks
    from core.data.provenance import result_provenance
    from core.data.column_map import merge_mapping
    from core.data.schema import _ids, suggest_mapping, to_catalog
    from core.inference.sanity import FLAG_LEGEND, checked_posterior
    from core.metrics import typicality

    spec = api.get_task(m.task_name)
    if chunk_rows < 1:
        raise GPSError("chunk size must be positive", field="--chunk-rows", found=str(chunk_rows))
    n_total = 0
    for chunk in iter_table_chunks(input_path, chunk_rows):
        n_total += len(chunk)
    if n_total == 0:
        raise GPSError("the input table has no rows", source=input_path)
    provenance = result_provenance(
        m, checkpoint=checkpoint or f"bundled:{m.task_name}", input_path=input_path, n_samples=n_samples, seed=seed
    )
    provenance["flag"] = FLAG_LEGEND
    if typicality.reference_for(m) is not None:
        provenance["typicality"] = typicality.DESCRIPTION
    provenance["validation_warnings"] = warnings = []
    writer, mapping, done, masked, n_scored, n_atypical = None, None, 0, 0, 0, 0
    t0 = time.perf_counter()
    bar = _bar(n_total, progress, "obj")
    try:
        for i, chunk in enumerate(iter_table_chunks(input_path, chunk_rows)):
            if mapping is None:
                mapping = merge_mapping(suggest_mapping(chunk, spec), opts["mapping"])
                if opts["mapping"] or opts["units"] or opts["h"] is not None:
                    provenance["column_map"] = {"mapping": mapping, "units": opts["units"] or {}, "h": opts["h"]}
            data, report = to_catalog(
                chunk,
                spec,
                mapping=mapping,
                units=opts["units"],
                h=opts["h"],
                id_column=opts["id_column"],
                source=Path(input_path).name,
            )
            if i == 0:  # inputs far from the model's training distribution (checked on the first chunk)
                from core.data.ood import check_report

                check_report(report, data, m.task_name, m)
            for w in report.warnings:
                w = w if i == 0 else f"rows {done}-{done + len(chunk) - 1}: {w}"
                print(f"warning: {w}", file=sys.stderr)
                warnings.append(w)
            if _ids(chunk, opts["id_column"]) is None:  # no id column: running row numbers across chunks
                data.ids = np.arange(done, done + len(data))
            post = checked_posterior(m, data, n_samples=n_samples, seed=seed + i, device=device)
            typ = typicality.summary(typicality.annotate(m, data, post))
            if typ is not None:
                n_scored, n_atypical = n_scored + typ["n_scored"], n_atypical + typ["n_atypical"]
            cols = posterior_columns(post, data)
            if writer is None:
                writer = PosteriorWriter(
                    out_path,
                    fmt,
                    n_total=n_total,
                    columns={k: u for k, (_, u) in cols.items()},
                    sample_shape=(n_samples, len(post.params)) if save_samples else None,
                    params=post.params,
                    provenance=provenance,
                )
            writer.write(
                {k: v for k, (v, _) in cols.items()}, post.sample(n_samples, seed + i) if save_samples else None
            )
            done += len(data)
            masked += int(np.count_nonzero(post.diagnostics.get("flag", 0)))
            if bar:
                bar(done, n_total)
        writer.close()
    except BaseException:
        if writer is not None:
            Path(str(out_path) + ".part").unlink(missing_ok=True)
        raise
    dt = time.perf_counter() - t0
    if progress:
        print(file=sys.stderr)
    out = {
        "out": str(out_path),
        "rows": done,
        "rows_masked": masked,
        "seconds": round(dt, 2),
        "objects_per_second": round(done / max(dt, 1e-9), 1),
        "model": m.name,
        "task": m.task_name,
    }
    if "typicality" in provenance:
        out["rows_atypical"] = n_atypical
        out["fraction_atypical"] = round(n_atypical / max(n_scored, 1), 4)
    return out


def _bar(total: int, enabled: bool, unit: str):
    if not enabled or total < 2:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, n: int) -> None:
        bar.update(done - bar.n)
        if done >= n:
            bar.close()

    return update
