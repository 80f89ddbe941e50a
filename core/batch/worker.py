"""What runs on a Dask worker: one part in, one output part written atomically, a small JSON-ready result out.

Every worker loads each checkpoint once (from the bytes the driver broadcast, cached by their hash) and runs at the
thread count it was given (``OMP_NUM_THREADS`` from the cluster, torch threads set here), confined to the cores the
local cluster gave it (``GPS_CPU_CORES``, :func:`core.batch.cluster.pin_cores`). Any error in a part is
caught and returned as ``{"status": "failed", "error": message}``, so one bad file or partition never stops the run.
Catalogue parts are written as Parquet: ``id``, the HATS spatial columns when the input had them, the posterior
summaries with units (field metadata ``unit``), ``valid``, the domain flags, optional draws (``<param>_samples``,
a fixed-size list per row) and, for rows selected by ``--refine-hmc``, the NUTS summaries and diagnostics.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.batch.manifest import atomic_path
from core.batch.refine import refine_columns, select_rows
from core.errors import GPSError

__all__ = ["run_part", "get_model", "table_columns", "write_parquet_part", "warm_up"]

_MODELS: dict[str, Any] = {}
PASS_THROUGH = ("_healpix_29", "ra", "dec")


def run_part(part: dict, ctx: dict, table=None) -> dict[str, Any]:
    """Run ``part`` (a plan dict from :mod:`core.batch.parts`) with the run context ``ctx`` (model bytes and key,
    draws, seed, output directory, ...); ``table`` is the part's rows when the driver or lsdb read them."""
    t0 = time.perf_counter()
    _set_threads(int(ctx.get("threads", 1)))
    try:
        if part.get("plan_error"):
            raise GPSError(part["plan_error"], source=part["path"])
        if part["kind"] == "maps":
            res = _run_map_part(part, ctx)
        else:
            res = _run_table_part(part, ctx, table)
        res["status"] = "done"
    except GPSError as e:
        res = {"status": "failed", "error": str(e)}
    except Exception as e:  # noqa: BLE001 - recorded in the manifest with its message; the other parts go on
        res = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
    res["seconds"] = round(time.perf_counter() - t0, 3)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    res["worker"] = _worker_name()
    return res


def warm_up(threads: int = 1) -> int:
    """Import the engine on a worker (torch, JAX, the models) before timing: ``client.run(warm_up)``."""
    import core.api  # noqa: F401
    import core.data.export  # noqa: F401
    import core.models.flows  # noqa: F401

    _set_threads(threads)
    return os.getpid()


def get_model(blob: bytes | None, key: str, task: str | None = None):
    """The model of checkpoint bytes ``blob`` (loaded once per worker, cached under ``key``)."""
    if key not in _MODELS:
        from core import api

        _MODELS[key] = api.load_checkpoint(bytes(blob), name=key.split("|")[0]) if blob is not None else \
            api.load_bundled(task or "halo_mass")
    return _MODELS[key]


def table_columns(model, table, offset: int, *, draws: int, seed: int, save_samples: bool, device: str | None,
                  refine: dict | None = None, keep: tuple[str, ...] = PASS_THROUGH
                  ) -> tuple[dict[str, tuple[np.ndarray, str]], int]:
    """Output columns name -> (values, unit) for the rows of ``table`` (astropy Table); rows with missing inputs
    that the model cannot marginalize are kept with ``valid`` = 0 and NaN summaries; the ``keep`` columns of
    ``table`` are carried over (HATS: the spatial index and coordinates). Returns (columns, refined)."""
    from core import api
    from core.data.export import posterior_columns
    from core.tasks import get_task

    task = model.task_name
    data, _report = api.table_to_catalog(table, task)
    n = len(data)
    data.ids = np.asarray(data.ids) if "id" in table.colnames else np.arange(offset, offset + n)
    x = data.x[:, [data.features.index(f) for f in model.features if f in data.features]]
    ok = np.isfinite(x).all(axis=1) if getattr(model, "missing_policy", "refuse") == "refuse" else np.ones(n, bool)
    cols: dict[str, tuple[np.ndarray, str]] = {"id": (np.asarray(data.ids), "")}
    for c in keep:
        if c in table.colnames:
            cols[c] = (np.asarray(table[c]), str(getattr(table[c], "unit", "") or ""))
    samples = None
    if ok.any():
        sub = data if ok.all() else data.subset(np.flatnonzero(ok))
        post = api.posterior(model, sub, n_samples=draws, seed=seed, device=device)
        for k, (v, u) in posterior_columns(post, sub).items():
            if k != "id":
                cols[k] = (_expand(v, ok), u)
        if save_samples:
            s = post.samples if post.samples is not None and post.samples.shape[1] == draws else \
                post.sample(draws, seed)
            samples = {p: _expand(np.asarray(s[..., j], np.float32), ok) for j, p in enumerate(post.params)}
    else:
        cols["valid"] = (np.zeros(n, np.int8), "")
    if "valid" in cols:
        cols["valid"] = (np.where(ok, cols["valid"][0], 0).astype(np.int8), "")
    absent = sum(f not in data.features for f in model.features)      # columns not in the file (or all NaN)
    cols["missing_inputs"] = (((~np.isfinite(x)).sum(axis=1) + absent).astype(np.int16), "")
    flags, names = _domain_flags(get_task(task), data)
    cols["outside_domain"] = (flags.astype(np.int8), "")
    cols["domain_flags"] = (names, "")
    for p, s in (samples or {}).items():
        cols[f"{p}_samples"] = (s, cols.get(f"{p}_mean", (None, ""))[1])
    refined = 0
    if refine:
        sel = select_rows(refine["where"], cols) & ok
        refined = int(sel.sum())
        hmc = get_model(refine["blob"], refine["key"], task)
        cols.update(refine_columns(hmc, data, sel, seed=seed))
    return cols, refined


def write_parquet_part(cols: dict[str, tuple[np.ndarray, str]], target: str | Path, provenance: dict) -> None:
    """Write columns as one Parquet file, atomically (temp name + rename); units in field metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, fields = [], []
    for name, (v, unit) in cols.items():
        v = np.asarray(v)
        if v.ndim == 2:                                           # draws: a fixed-size list per row
            arr = pa.FixedSizeListArray.from_arrays(pa.array(v.astype(np.float32).ravel()), v.shape[1])
        elif v.dtype.kind in "OU":
            arr = pa.array(v.astype(str))
        else:
            arr = pa.array(v)
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata={"unit": unit} if unit else None))
    meta = {"gps_provenance": json.dumps(provenance, default=str),
            "gps_units": json.dumps({k: u for k, (_, u) in cols.items() if u})}
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))
    tmp = atomic_path(target)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------- parts
def _run_table_part(part: dict, ctx: dict, table) -> dict[str, Any]:
    from core.batch.parts import read_parquet_rows

    if part["kind"] == "parquet":
        table = read_parquet_rows(part["path"], part["start"], part["stop"])
    elif part["kind"] == "hats":
        table = _from_pandas(table)
    if table is None:
        raise GPSError("no rows were given for this part", source=part["path"])
    model = get_model(ctx.get("blob"), ctx["key"], ctx.get("task"))
    cols, refined = table_columns(model, table, part["offset"], draws=ctx["draws"], seed=ctx["seed"] + part["index"],
                                  save_samples=ctx["save_samples"], device=ctx.get("device"),
                                  refine=ctx.get("refine"), keep=tuple(ctx.get("keep") or PASS_THROUGH))
    prov = {**ctx.get("provenance", {}), "part": part["id"], "input": part["path"],
            "rows": [part["start"], part["stop"]], "seed": ctx["seed"] + part["index"]}
    write_parquet_part(cols, Path(ctx["out_dir"]) / part["out"], prov)
    return {"rows": len(cols["id"][0]), "refined": refined,
            "n_valid": int(np.asarray(cols["valid"][0]).sum()) if "valid" in cols else 0}


def _run_map_part(part: dict, ctx: dict) -> dict[str, Any]:
    from core.predict import predict_file

    model = get_model(ctx["blob"], ctx["key"]) if ctx.get("blob") is not None else None
    target = Path(ctx["out_dir"]) / part["out"]
    target.parent.mkdir(parents=True, exist_ok=True)
    from core.data.io.map_sets import ReffTable, parse_reff

    reff = parse_reff([v for v in str(ctx.get("reff_arcsec") or "").split(",") if v.strip()])
    reff = ReffTable(reff) if isinstance(reff, dict) else reff          # one galaxy per part: ids of others expected
    summary = predict_file(part.get("paths") or part["path"], str(target), task=ctx["task"], loaded_model=model,
                           reff_arcsec=reff,
                               checkpoint=ctx.get("checkpoint_label") if model is not None else None, n_samples=ctx["draws"],
                               save_samples=ctx["save_samples"], seed=ctx["seed"] + part["index"],
                               device=ctx.get("device"), progress=False, mode=ctx.get("mode") or None)
    return {"rows": int(summary.get("objects", 0)), "model": summary.get("model", "")}


# --------------------------------------------------------------------------------------------------- helpers
def _expand(v: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Values of the ``ok`` rows placed in a full-length array (NaN / 0 elsewhere)."""
    v = np.asarray(v)
    if ok.all():
        return v
    fill = np.nan if v.dtype.kind == "f" else 0
    out = np.full((len(ok),) + v.shape[1:], fill, dtype=v.dtype if v.dtype.kind in "fiub" else np.float64)
    out[ok] = v
    return out


def _domain_flags(spec, data) -> tuple[np.ndarray, np.ndarray]:
    """(outside (n,) bool, names (n,) str): inputs outside the task's training domain, per row."""
    n = len(data)
    out = np.zeros((n, len(data.features)), bool)
    for j, f in enumerate(data.features):
        q = next((q for q in spec.inputs if q.name == f), None)
        if q is not None and q.domain is not None:
            v = data.x[:, j]
            out[:, j] = np.isfinite(v) & ((v < q.domain[0]) | (v > q.domain[1]))
    names = np.full(n, "", dtype=object)
    for i in np.flatnonzero(out.any(axis=1)):
        names[i] = ",".join(f for f, b in zip(data.features, out[i]) if b)
    return out.any(axis=1), names


def _from_pandas(df):
    from astropy.table import Table

    df = df.reset_index() if df.index.name else df
    return Table({c: np.asarray(df[c]) for c in df.columns if np.asarray(df[c]).dtype.kind in "biufUSO"})


def _set_threads(n: int) -> None:
    from core.batch.cluster import pin_cores

    pin_cores()                       # every part: threads the engine started since the last part are pinned too
    if os.environ.get("GPS_BATCH_THREADS_SET") == str(n):
        return
    try:
        import torch

        torch.set_num_threads(max(1, n))
    except ImportError:
        pass
    os.environ["GPS_BATCH_THREADS_SET"] = str(n)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"
