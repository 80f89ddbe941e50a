"""``python -m core batch``: the command line of a batch run (arguments -> :class:`BatchConfig` -> :func:`run_batch`).

Prints the Dask dashboard address, a tqdm bar fed by the finished parts, then the summary as JSON; exit status 0 only
when every part is done (1 when some failed or the run was stopped; 2 for bad input, as every command).
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_parser", "run"]


def add_parser(sub, func) -> argparse.ArgumentParser:
    """Register the ``batch`` subcommand on ``sub`` (argparse subparsers), calling ``func(args)``."""
    b = sub.add_parser("batch", help="posteriors for a large catalogue, Parquet/HATS dataset or many map files on "
                       "Dask (local cluster by default), resumable")
    b.add_argument("input", help="table (CSV/FITS/HDF5/Parquet), directory or glob of Parquet files, HATS "
                   "catalogue directory, or directory/glob of map files (map tasks)")
    b.add_argument("--out", required=True, help="output directory (manifest.json, parts/, hats/ or maps/)")
    b.add_argument("--checkpoint", default="", help="checkpoint file (.gps); default: the task's bundled one")
    b.add_argument("--task", default="", help="task of the bundled checkpoint (default halo_mass)")
    b.add_argument("--model", default="", help="with --task: a bundled model other than the default")
    b.add_argument("--draws", type=int, default=1000, help="posterior draws per object (default 1000)")
    b.add_argument("--save-samples", action="store_true", help="store the draws in the output parts too")
    b.add_argument("--partition-rows", type=int, default=20000, help="rows per partition of a table (default 20000)")
    b.add_argument("--scheduler", default="", help="Dask scheduler address; default: a local cluster")
    b.add_argument("--workers", type=int, default=0, help="local workers (default: one per GPU, else 2)")
    b.add_argument("--threads-per-worker", type=int, default=1)
    b.add_argument("--thread-workers", action="store_true",
                   help="local workers as threads of this process instead of processes (small runs, debugging)")
    b.add_argument("--refine-hmc", default="", metavar="WHERE",
                   help="NUTS refinement of the rows matching WHERE, e.g. 'outside_domain or log_mh_std>0.3'")
    b.add_argument("--refine-checkpoint", default="", help="vae_hmc checkpoint for --refine-hmc (default bundled)")
    b.add_argument("--mode", default="", help="exsitu_map inference mode: flow (default) | prior")
    b.add_argument("--reff-arcsec", action="append", metavar="ARCSEC|ID=ARCSEC",
                   help="R_e for map files that carry none (SAMI): one number, or ID=ARCSEC (repeatable)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--device", default="", help="auto | cpu | cuda | mps (default: GPS_DEVICE, then auto)")
    b.add_argument("--overwrite", action="store_true", help="start again in an --out that holds another run")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=func)
    return b


def run(args) -> int:
    """Run the ``batch`` subcommand for parsed ``args``; returns the exit status."""
    from core.batch.config import BatchConfig
    from core.batch.engine import run_batch

    cfg = BatchConfig(input=args.input, out=args.out, checkpoint=args.checkpoint, task=args.task, model=args.model,
                      draws=args.draws, save_samples=args.save_samples, partition_rows=args.partition_rows,
                      seed=args.seed, scheduler=args.scheduler, workers=args.workers,
                      threads_per_worker=args.threads_per_worker,
                      processes=not args.thread_workers, device=args.device, refine_hmc=args.refine_hmc,
                      refine_checkpoint=args.refine_checkpoint, mode=args.mode, overwrite=args.overwrite,
                      reff_arcsec=",".join(args.reff_arcsec or []))
    summary = run_batch(cfg, progress=not args.quiet)
    print(json.dumps(summary, indent=1, default=str))
    print(f"done {summary['done']}/{summary['parts']} parts ({summary['skipped']} skipped from earlier runs), "
          f"{summary['failed']} failed; {summary['rows']} rows in {summary['seconds']} s "
          f"({summary['rows_per_second']} rows/s)", file=sys.stderr)
    return 0 if summary["ok"] else 1
