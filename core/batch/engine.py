"""The batch run: plan the parts, open the manifest, run the parts not yet done on Dask, record, summarize.

Parts are Dask futures (``client.submit``; HATS pixels through lsdb's per-partition delayed objects); at most
``2 x workers + 2`` are in flight, so the driver and the scheduler hold a bounded amount of data whatever the input
size. Each finished part is recorded in the manifest at once, so a killed run (driver or worker) resumes where it
stopped; a lost worker's parts are rerun by Dask itself, and a part that keeps failing is recorded as failed with its
message while the others go on.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from core.batch.config import BatchConfig
from core.batch.manifest import Manifest
from core.batch.parts import input_kind, plan_parts
from core.errors import GPSError

__all__ = ["run_batch", "resolve_checkpoint"]

Progress = Callable[[dict[str, Any]], None]


def run_batch(config: BatchConfig | dict, *, client=None, progress: bool | Progress = False,
              stop: threading.Event | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the batch described by ``config``; returns the summary (also appended to the manifest).

    ``client``: an existing ``distributed.Client`` (else one from ``config.scheduler`` or a local cluster).
    ``progress``: True for a tqdm bar on stderr, or a callable receiving a status dict after every part.
    ``stop``: set it to stop submitting and cancel the parts in flight (the manifest keeps what finished).
    """
    from core.tasks import get_task

    cfg = config if isinstance(config, BatchConfig) else BatchConfig.from_dict(config)
    say = log or (lambda s: print(s, file=sys.stderr))
    blob, task, label = resolve_checkpoint(cfg)
    spec = get_task(task)
    kind = input_kind(cfg.input, spec.data_kind)
    parts = plan_parts(cfg.input, kind, cfg.partition_rows)
    manifest = Manifest.open(cfg.out, {**cfg.to_dict(), "kind": kind, "task": task, "checkpoint_label": label},
                             cfg.fingerprint(), parts, overwrite=cfg.overwrite)
    todo = [p for p in parts if not manifest.is_done(p["id"])]
    skipped = len(parts) - len(todo)
    ctx = {"blob": blob, "key": f"{label}|{_sha(blob)}", "task": task, "draws": cfg.draws, "seed": cfg.seed,
           "save_samples": cfg.save_samples, "device": cfg.device or None, "out_dir": str(Path(cfg.out).resolve()),
           "threads": cfg.threads_per_worker, "mode": cfg.mode, "checkpoint_label": label,
           "reff_arcsec": cfg.reff_arcsec,
           "provenance": {"task": task, "checkpoint": label, "checkpoint_sha256": _sha(blob), "draws": cfg.draws,
                          "run_fingerprint": cfg.fingerprint(), "input": cfg.input}}
    if kind == "hats":
        from core.batch.hats import spatial_columns

        ctx["keep"] = spatial_columns(cfg.input)
    if cfg.refine_hmc:
        from core.batch.refine import check_where

        rblob, _t, rlabel = resolve_checkpoint(cfg.replace(task=task), refine=True)
        ctx["refine"] = {"where": check_where(cfg.refine_hmc), "blob": rblob, "key": f"{rlabel}|{_sha(rblob)}"}
    state = {"total": len(parts), "done": skipped, "skipped": skipped, "failed": 0, "rows": 0, "rows_in_run": 0,
             "errors": [], "dashboard": "", "started": time.perf_counter(), "finished": False, "stopped": False}
    if todo:
        from core.batch.cluster import open_client

        holder = _given(client) if client is not None else open_client(
            cfg.scheduler, cfg.workers, cfg.threads_per_worker, cfg.processes, cfg.device or None)
        with holder as cl:
            state["dashboard"] = str(getattr(cl, "dashboard_link", "") or "")
            say(f"dask: {len(cl.scheduler_info().get('workers', {}))} workers; dashboard {state['dashboard']}")
            _run(cl, cfg, kind, todo, ctx, manifest, state, progress, stop)
    if kind == "maps":
        _write_index(manifest)
    elif kind == "hats" and manifest.counts()["done"] == len(parts):
        from core.batch.hats import finish_hats_output

        finish_hats_output(cfg.input, cfg.out, [p for p in parts])
    seconds = time.perf_counter() - state["started"]
    counts = manifest.counts()
    summary = {"out": str(cfg.out), "kind": kind, "task": task, "checkpoint": label, "parts": len(parts),
               "done": counts["done"], "skipped": skipped, "failed": counts["failed"], "pending": counts["pending"],
               "rows": state["rows_in_run"], "rows_total": sum(int(p.get("rows", 0) or 0) for pid, p in
                                                               manifest.parts.items() if manifest.is_done(pid)),
               "seconds": round(seconds, 2),
               "rows_per_second": round(state["rows_in_run"] / max(seconds, 1e-9), 1),
               "stopped": state["stopped"], "dashboard": state["dashboard"], "failures": manifest.failures()[:50],
               "ok": counts["failed"] == 0 and counts["pending"] == 0}
    manifest.add_run({k: v for k, v in summary.items() if k != "failures"} | {"ended": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return summary


def resolve_checkpoint(cfg: BatchConfig, refine: bool = False) -> tuple[bytes | None, str, str]:
    """(checkpoint bytes or None, task, label) of the run's model (``refine``: of its NUTS refinement model)."""
    from core import api
    from core.tasks import get_task

    path = cfg.refine_checkpoint if refine else cfg.checkpoint
    task = cfg.task or "halo_mass"
    if path:
        try:
            blob = Path(path).read_bytes()
        except OSError as e:
            raise GPSError("cannot read the checkpoint", source=path, found=str(e)) from None
        model = api.load_checkpoint(blob, name=Path(path).name)            # refused here, not on every worker
        if refine and not (hasattr(model, "run_hmc") or model.name == "vae_hmc"):
            raise GPSError("the refinement needs a NUTS model", source=path, expected="a vae_hmc checkpoint",
                           found=model.name)
        return blob, model.task_name, Path(path).name
    if refine:
        items = [b for b in api.bundled_checkpoints(task) if b["model"] == "vae_hmc"]
        if not items:
            raise GPSError("no bundled vae_hmc checkpoint for the refinement", field="--refine-checkpoint",
                           expected="a vae_hmc checkpoint file")
        return Path(items[0]["path"]).read_bytes(), task, "bundled:" + items[0]["file"]
    if get_task(task).data_kind != "catalog" and not cfg.model:
        return None, task, f"bundled:{task}"                     # map tasks: the bundled model that fits each file
    model = api.load_bundled(task, cfg.model or None)
    item = next(b for b in api.bundled_checkpoints(task) if b["model"] == model.name)
    return Path(item["path"]).read_bytes(), task, "bundled:" + item["file"]


# --------------------------------------------------------------------------------------------------- the loop
def _run(cl, cfg: BatchConfig, kind: str, todo: list[dict], ctx: dict, manifest: Manifest, state: dict,
         progress, stop: threading.Event | None) -> None:
    from distributed import as_completed

    from core.batch.worker import run_part

    nworkers = max(1, len(cl.scheduler_info().get("workers", {})))
    ctx = dict(ctx)
    for key in ("blob",):
        if ctx.get(key) is not None:
            ctx[key] = cl.scatter(ctx[key], broadcast=True, hash=True)
    if "refine" in ctx:
        ctx["refine"] = {**ctx["refine"], "blob": cl.scatter(ctx["refine"]["blob"], broadcast=True, hash=True)}
    bar = _bar(sum(p["stop"] - p["start"] for p in todo), progress is True)
    source = _submissions(cl, kind, cfg, todo, ctx, run_part)
    inflight, owner = as_completed(), {}
    limit = 2 * nworkers + 2

    def refill() -> None:
        while len(owner) < limit and not (stop is not None and stop.is_set()):
            nxt = next(source, None)
            if nxt is None:
                return
            fut, part = nxt
            owner[fut.key] = part
            inflight.add(fut)

    refill()
    while owner:
        try:
            fut = next(inflight)
        except StopIteration:
            break
        part = owner.pop(fut.key)
        try:
            res = fut.result()
        except Exception as e:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
            res = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        manifest.record(part["id"], res)
        if res["status"] == "done":
            state["done"] += 1
            state["rows_in_run"] += int(res.get("rows", 0))
        else:
            state["failed"] += 1
            state["errors"].append(f"{part['id']} ({Path(part['path']).name}): {res.get('error', '')}")
        bar(part["stop"] - part["start"], state)
        if callable(progress):
            progress(_status(state))
        if stop is not None and stop.is_set():
            state["stopped"] = True
            for f in list(inflight.futures):
                f.cancel()
            break
        refill()
    bar(0, state, close=True)


def _submissions(cl, kind: str, cfg: BatchConfig, todo: list[dict], ctx: dict, fn) -> Iterator[tuple[Any, dict]]:
    """(future, part) for every part to run, lazily (the caller pulls as slots free up): parts the workers read
    themselves first, HATS pixels through lsdb, then the ``table`` parts streamed by the driver."""
    from core.batch.parts import stream_parts

    for part in todo:
        if part["kind"] in ("parquet", "maps"):
            yield cl.submit(fn, part, ctx, pure=False, key=f"gps-{part['id']}-{_token()}"), part
    pixels = [p for p in todo if p["kind"] == "hats"]
    if pixels:
        from core.batch.hats import pixel_delayed

        delayed = pixel_delayed(cfg.input, pixels)
        for part in pixels:
            yield cl.compute(_delayed_call(fn, part, ctx, delayed[part["id"]])), part
    for part, chunk in stream_parts([p for p in todo if p["kind"] == "table"], cfg.partition_rows):
        yield cl.submit(fn, part, ctx, chunk, pure=False, key=f"gps-{part['id']}-{_token()}"), part


def _delayed_call(fn, part, ctx, frame):
    import dask

    return dask.delayed(fn, pure=False)(part, ctx, frame, dask_key_name=f"gps-{part['id']}-{_token()}")


def _status(state: dict) -> dict[str, Any]:
    dt = time.perf_counter() - state["started"]
    return {"total": state["total"], "done": state["done"], "skipped": state["skipped"], "failed": state["failed"],
            "rows": state["rows_in_run"], "seconds": round(dt, 1),
            "rows_per_second": round(state["rows_in_run"] / max(dt, 1e-9), 1), "errors": list(state["errors"][-20:]),
            "dashboard": state["dashboard"]}


def _bar(total_rows: int, enabled: bool):
    if not enabled:
        return lambda n, state, close=False: None
    from tqdm import tqdm

    bar = tqdm(total=total_rows, unit="row", file=sys.stderr, dynamic_ncols=True)

    def update(n: int, state: dict, close: bool = False) -> None:
        bar.update(n)
        bar.set_postfix(parts=f"{state['done']}/{state['total']}", failed=state["failed"], refresh=False)
        if close:
            bar.close()

    return update


def _write_index(manifest: Manifest) -> None:
    """``index.parquet``: one row per input map file (its output file, state, objects, error)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.batch.manifest import atomic_path

    rows = list(manifest.parts.values())
    table = pa.table({"input": [p["path"] for p in rows], "output": [p["out"] for p in rows],
                      "status": [("done" if manifest.is_done(p["id"]) else p.get("status") or "pending") for p in rows],
                      "objects": [int(p.get("rows", 0) or 0) for p in rows],
                      "model": [str(p.get("model", "")) for p in rows], "error": [p.get("error", "") for p in rows]})
    target = manifest.dir / "index.parquet"
    tmp = atomic_path(target)
    pq.write_table(table, tmp)
    tmp.replace(target)


class _given:
    """Context manager around a client the caller owns (left open)."""

    def __init__(self, client):
        self.client = client

    def __enter__(self):
        return self.client

    def __exit__(self, *exc):
        return False


def _sha(blob: bytes | None) -> str:
    return hashlib.sha256(blob).hexdigest()[:16] if blob is not None else "bundled"


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
