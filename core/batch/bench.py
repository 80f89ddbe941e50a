"""``python -m core bench scale``: end-to-end rows/s of batch posteriors in-process and on Dask (1 and 2 workers),
peak memory per worker, and map files per second.

Rows: simulated halo_mass galaxies (1e6; ``--quick`` 2e5) written once as Parquet in the dataset cache; every run
reads them in partitions of 20,000 rows, draws 1,000 flow posterior samples per galaxy with the bundled
``halo_mass_flow`` checkpoint and writes the summaries as Parquet parts. ``inprocess`` runs the same per-partition
code (:func:`core.batch.worker.table_columns` + :func:`write_parquet_part`) in one fresh process without Dask, on
one core as a worker; ``dask_1``/``dask_2`` are local clusters of 1/2 worker processes of 1 thread each, each pinned
to its own core when they fit (:func:`core.batch.cluster.pin_cores`). Start-up (cluster start, imports, the model
loaded and its sampler compiled or read from JAX's disk cache: :func:`warm_up_rows`, the same in every run) is
reported apart, not in the rate; ``dask_1_small`` is 1 worker on a fifth of the rows (peak memory must not grow with rows).
Maps: 100 simulated exsitu_map map-stack files (one map each) on 2 workers. Budgets are rows, draws and files, never
wall-clock; the rates of course depend on the machine and its load (``load_average`` is recorded).
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["run", "markdown"]

PARTITION_ROWS = 20_000
DRAWS = 1000
MAP_FILES = 100


def run(quick: bool = False, seed: int = 0, device: str | None = None,
        methods: Sequence[str] | None = None, rows: int | None = None, map_files: int = MAP_FILES,
        partition_rows: int = PARTITION_ROWS, draws: int = DRAWS) -> dict[str, Any]:
    """All runs (``methods``: a subset of inprocess, dask_1, dask_2, dask_1_small, maps); ``rows``, ``map_files``,
    ``partition_rows`` and ``draws`` shrink it for tests."""
    from core.data.cache import cache_dir

    rows = rows or (200_000 if quick else 1_000_000)
    wanted = set(methods or ("inprocess", "dask_1", "dask_2", "dask_1_small", "maps"))
    work = Path(tempfile.mkdtemp(prefix="gps-bench-scale-"))
    cache = cache_dir() / "bench_scale"
    try:
        big = _table(cache, rows, seed, partition_rows)
        small = _table(cache, rows // 5, seed, partition_rows)
        out: dict[str, Any] = {"task": "scale", "rows": rows, "draws": draws, "partition_rows": partition_rows,
                               "quick": quick, "seed": seed, "cpu_count": os.cpu_count(),
                               "load_average_start": list(os.getloadavg()), "runs": {}}
        if "inprocess" in wanted:
            out["runs"]["inprocess"] = _in_fresh_process(big, work / "inprocess", seed, partition_rows, draws)
        for name, n, path in (("dask_1", 1, big), ("dask_2", 2, big), ("dask_1_small", 1, small)):
            if name in wanted:
                out["runs"][name] = _dask(path, work / name, n, seed, device, partition_rows, draws)
        if "maps" in wanted:
            out["maps"] = _maps(cache, work / "maps", seed, quick, device, map_files)
        r = out["runs"]
        if "dask_1" in r and "dask_2" in r:
            out["scaling_efficiency"] = round(r["dask_2"]["rows_per_second"] / (2 * r["dask_1"]["rows_per_second"]), 3)
        if "dask_1" in r and "inprocess" in r:
            out["dask_1_over_inprocess"] = round(r["dask_1"]["rows_per_second"] / r["inprocess"]["rows_per_second"], 3)
        if "dask_1" in r and "dask_1_small" in r:
            out["peak_rss_ratio_full_vs_small"] = round(r["dask_1"]["peak_rss_mb"] / r["dask_1_small"]["peak_rss_mb"], 3)
        best = max((v["rows_per_second"] for v in r.values()), default=0.0)
        out["projected_galaxies_per_day"] = int(best * 86400)
        out["load_average_end"] = list(os.getloadavg())
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(results: dict[str, Any]) -> str:
    lines = [f"## Batch scale benchmark ({results['rows']:,} halo_mass rows, {results['draws']} draws each, "
             f"partitions of {results['partition_rows']:,})", "",
             "| run | rows | seconds | rows/s | peak RSS per worker (MB) | start-up s |", "|---|---|---|---|---|---|"]
    for name, r in results["runs"].items():
        lines.append(f"| {name} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_second']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} | {r.get('startup_seconds', 0):.1f} |")
    lines.append("")
    for key, label in (("dask_1_over_inprocess", "Dask 1 worker / in-process rows/s (bar >= 0.8)"),
                       ("scaling_efficiency", "scaling efficiency 2 vs 1 worker (bar >= 0.7)"),
                       ("peak_rss_ratio_full_vs_small", "peak RSS full / fifth of the rows (bar within 1.2)"),
                       ("projected_galaxies_per_day", "projected galaxies/day at the best rate")):
        if key in results:
            lines.append(f"- {label}: {results[key]}")
    if "maps" in results:
        m = results["maps"]
        lines.append(f"- map files: {m['files']} files ({m['maps']} maps, {m['draws']} draws) on {m['workers']} "
                     f"workers: {m['files_per_second']:.2f} files/s")
    lines.append(f"- load average (1/5/15 min) at start {results['load_average_start']}, end "
                 f"{results.get('load_average_end')} on {results['cpu_count']} CPUs")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------- runs
def _table(cache: Path, rows: int, seed: int, partition_rows: int) -> Path:
    """The simulated catalogue as Parquet with row groups of ``partition_rows`` rows (as survey files are written:
    each worker then decodes only its own rows)."""
    path = cache / f"halo_mass_{rows}_{seed}_rg{partition_rows}.parquet"
    if not path.exists():
        import pyarrow.parquet as pq

        from core import api
        from core.data import io as dio

        cache.mkdir(parents=True, exist_ok=True)
        data = api.simulate("halo_mass", rows, seed=seed)
        tmp = path.with_name(path.stem + ".tmp.parquet")
        dio.write(data.to_table(), tmp)                    # astropy's writer: units in the schema metadata
        pq.write_table(pq.read_table(tmp), path, row_group_size=partition_rows)
        tmp.unlink()
    return path


def _in_fresh_process(path: Path, out: Path, seed: int, partition_rows: int, draws: int) -> dict[str, Any]:
    """:func:`_inprocess` in a new Python process with a Dask worker's thread settings (its own peak memory)."""
    import json
    import subprocess
    import sys

    import core
    from core.batch.cluster import core_sets, worker_env

    root = str(Path(core.__file__).resolve().parent.parent)
    env = {**os.environ, **worker_env(1), "GPS_CPU_CORES": (core_sets(1, 1) or [""])[0], "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "core.batch.bench", str(path), str(out), str(seed), str(partition_rows), str(draws)]
    res = subprocess.run(args, env=env, cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        from core.errors import GPSError

        raise GPSError("the in-process reference run failed", found=res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _inprocess(path: str, out: str, seed: int, partition_rows: int, draws: int) -> dict[str, Any]:
    """Read -> posterior -> write every partition in this process, no Dask (the reference rate)."""
    import pyarrow.parquet as pq
    import torch

    from core.batch.cluster import pin_cores
    from core.batch.parts import read_parquet_rows
    from core.batch.worker import table_columns, write_parquet_part

    torch.set_num_threads(1)
    pin_cores()                                     # one core, as a 1-thread worker of the local cluster
    n = pq.ParquetFile(path).metadata.num_rows
    t_start = time.perf_counter()
    model = warm_up_rows(path, draws)               # as every Dask worker before timing
    t0 = time.perf_counter()
    for k, start in enumerate(range(0, n, partition_rows)):
        pin_cores()                                 # threads the engine started meanwhile (JAX's pool)
        table = read_parquet_rows(path, start, min(start + partition_rows, n))
        cols, _ = table_columns(model, table, start, draws=draws, seed=seed + k, save_samples=False, device=None)
        write_parquet_part(cols, Path(out) / f"part-{k:05d}.parquet", {})
    dt = time.perf_counter() - t0
    return {"rows": n, "seconds": round(dt, 2), "rows_per_second": round(n / dt, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1), "workers": 0,
            "startup_seconds": round(t0 - t_start, 2)}


def warm_up_rows(path: str, draws: int, rows: int = 2000):
    """Start-up before timing, the same in every run: imports, the bundled halo_mass flow loaded, and its sampler
    compiled (or loaded from JAX's disk cache) on the first ``rows`` rows of ``path`` (nothing written). Returns
    the model."""
    from core import api
    from core.batch.parts import read_parquet_rows
    from core.batch.worker import table_columns, warm_up

    warm_up(1)
    model = api.load_bundled("halo_mass")
    table_columns(model, read_parquet_rows(path, 0, rows), 0, draws=draws, seed=0, save_samples=False, device=None)
    return model


def _dask(path: Path, out: Path, workers: int, seed: int, device: str | None, partition_rows: int,
          draws: int) -> dict[str, Any]:
    from core.batch import BatchConfig, Manifest, run_batch
    from core.batch.cluster import open_client

    t0 = time.perf_counter()
    with open_client(workers=workers, threads_per_worker=1, device=device) as cl:
        cl.wait_for_workers(workers)
        cl.run(warm_up_rows, str(path), draws)              # as the in-process run before timing
        startup = time.perf_counter() - t0
        s = run_batch(BatchConfig(input=str(path), out=str(out), draws=draws, partition_rows=partition_rows,
                                  seed=seed, device=device or ""), client=cl, log=lambda _m: None)
    peaks = {}
    for p in Manifest.read(out).parts.values():
        peaks[p.get("worker", "")] = max(peaks.get(p.get("worker", ""), 0.0), float(p.get("peak_rss_mb", 0.0)))
    return {"rows": s["rows"], "seconds": s["seconds"], "rows_per_second": s["rows_per_second"],
            "peak_rss_mb": max(peaks.values()), "peak_rss_mb_by_worker": peaks, "workers": workers,
            "startup_seconds": round(startup, 2), "failed": s["failed"]}


def _maps(cache: Path, out: Path, seed: int, quick: bool, device: str | None, files: int) -> dict[str, Any]:
    from core import api
    from core.batch import BatchConfig, run_batch
    from core.batch.cluster import open_client

    folder = cache / f"exsitu_maps_{files}_{seed}"
    if not (folder / f"{files - 1:03d}.maps.h5").exists():
        stack = api.simulate("exsitu_map", -(-files // 3), seed)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            stack.subset([i]).to_hdf5(folder / f"{i:03d}.maps.h5")
    draws = 50 if quick else 200
    with open_client(workers=2, threads_per_worker=1, device=device) as cl:
        cl.wait_for_workers(2)
        s = run_batch(BatchConfig(input=str(folder), out=str(out), task="exsitu_map", draws=draws, seed=seed),
                      client=cl, log=lambda _m: None)
    return {"files": s["parts"], "maps": s["rows"], "draws": draws, "workers": 2, "seconds": s["seconds"],
            "files_per_second": round(s["done"] / max(s["seconds"], 1e-9), 3), "failed": s["failed"]}


if __name__ == "__main__":      # the in-process reference run: PATH OUT SEED PARTITION_ROWS DRAWS -> JSON on stdout
    import json
    import sys

    a = sys.argv[1:]
    print(json.dumps(_inprocess(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))))
