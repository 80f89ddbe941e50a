"""Survey-scale batch posteriors on Dask: partitioned inputs, resumable runs, atomic parts, NUTS refinement.

``run_batch(BatchConfig(input=..., out=...))`` runs (or resumes) a batch on a local Dask cluster or any scheduler;
``BatchJob`` runs one in a background thread for the app (start / poll / stop). Modules: :mod:`.config` (settings),
:mod:`.parts` (input kinds and partitions), :mod:`.manifest` (run state, atomic writes), :mod:`.worker` (one part on
a worker), :mod:`.refine` (``--refine-hmc``), :mod:`.cluster` (local/remote cluster, GPU policy), :mod:`.hats`
(HATS via lsdb/hats), :mod:`.engine` (the run), :mod:`.job` (background jobs), :mod:`.cli`, :mod:`.bench`.
"""

from __future__ import annotations

from core.batch.config import BatchConfig
from core.batch.engine import run_batch
from core.batch.job import BatchJob, poll_job
from core.batch.manifest import Manifest

__all__ = ["BatchConfig", "run_batch", "BatchJob", "poll_job", "Manifest", "read_results", "results_bytes"]

MAX_DOWNLOAD_ROWS = 2_000_000


def read_results(out_dir: str):
    """The posterior summaries of a finished catalogue run as one pandas DataFrame (all parts, sorted by id)."""
    from pathlib import Path

    import pandas as pd

    files = sorted((Path(out_dir) / "parts").glob("part-*.parquet")) or sorted(
        (Path(out_dir) / "hats" / "dataset").rglob("Npix=*.parquet"))
    if not files:
        from core.errors import GPSError

        raise GPSError("no output parts in this directory", source=str(out_dir))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).sort_values("id", ignore_index=True)


def results_bytes(out_dir: str, fmt: str = "csv") -> bytes:
    """The summaries of a run as one CSV or Parquet file (for downloads; at most MAX_DOWNLOAD_ROWS rows)."""
    import io

    from core.errors import GPSError

    df = read_results(out_dir)
    if len(df) > MAX_DOWNLOAD_ROWS:
        raise GPSError("too many rows for a download: read the Parquet parts in the output folder", source=out_dir,
                       expected=f"<= {MAX_DOWNLOAD_ROWS:,} rows", found=f"{len(df):,}")
    df = df[[c for c in df.columns if not c.endswith("_samples")]]
    buf = io.BytesIO()
    if fmt == "parquet":
        df.to_parquet(buf)
    else:
        df.to_csv(buf, index=False)
    return buf.getvalue()
