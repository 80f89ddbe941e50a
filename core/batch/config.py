"""The settings of one batch run (:class:`BatchConfig`) and the part of them that defines its results (fingerprint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from core.config import Config, param
from core.errors import GPSError

__all__ = ["BatchConfig", "RESULT_FIELDS"]

#: fields that change what the output parts contain: a rerun with other values is refused (``--overwrite`` restarts)
RESULT_FIELDS = ("input", "checkpoint", "task", "model", "draws", "save_samples", "partition_rows", "seed",
                 "refine_hmc", "refine_checkpoint", "mode", "reff_arcsec")


@dataclass(frozen=True)
class BatchConfig(Config):
    """One batch run: what to read, which model, how to split it and where the cluster is."""

    input: str = param("", help="Table (CSV/FITS/HDF5/Parquet), directory or glob of Parquet files, HATS catalogue, "
                       "or directory/glob of map files")
    out: str = param("", help="Output directory (manifest, parts, index)")
    checkpoint: str = param("", help="Checkpoint file (.gps); empty = the task's bundled default")
    task: str = param("", help="Task of the bundled checkpoint when no checkpoint is given (default halo_mass)")
    model: str = param("", help="With task: a bundled model other than the default")
    draws: int = param(1000, help="Posterior draws per object (map tasks: per map)", min=1, max=100000)
    save_samples: bool = param(False, help="Also store the posterior draws in the output parts")
    partition_rows: int = param(20000, help="Rows per partition of a single table file", min=1, max=10_000_000)
    seed: int = param(0, help="Base seed; partition k uses seed + k")
    scheduler: str = param("", help="Dask scheduler address (tcp://host:8786); empty = a local cluster")
    workers: int = param(0, help="Local cluster workers (0 = one per GPU when GPUs are used, else 2)", min=0, max=512)
    threads_per_worker: int = param(1, help="Threads per local worker", min=1, max=64)
    processes: bool = param(True, help="Local workers as processes (False: threads of this process)", advanced=True)
    device: str = param("", help="auto | cpu | cuda | mps (empty = the app's device policy)")
    refine_hmc: str = param("", help="Rows to refine with NUTS: e.g. 'outside_domain', 'log_mh_std>0.3', "
                            "'outside_domain or log_mh_std>0.3', 'all'; empty = none")
    refine_checkpoint: str = param("", help="vae_hmc checkpoint for the refinement (empty = bundled)")
    mode: str = param("", help="exsitu_map inference mode (flow | prior)", advanced=True)
    reff_arcsec: str = param("", help="Map files without R_e (SAMI): R_e in arcsec, one number or ID=ARCSEC items "
                             "separated by commas")
    overwrite: bool = param(False, help="Start again even if the output directory holds another run")

    def validate(self) -> None:
        super().validate()
        if not self.input:
            raise GPSError("no input given", field="input", expected="a table, directory, glob or HATS catalogue")
        if not self.out:
            raise GPSError("no output directory given", field="out", expected="--out DIR")
        if self.reff_arcsec:
            from core.data.io.map_sets import parse_reff

            parse_reff([v for v in self.reff_arcsec.split(",") if v.strip()])      # refused here, not on each part

    def fingerprint(self) -> str:
        """Hash of the settings that define the results (not the cluster, not the output path)."""
        d = self.to_dict()
        key = json.dumps({k: d[k] for k in RESULT_FIELDS}, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]
