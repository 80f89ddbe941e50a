"""Re-run the numbers behind the dm_to_galaxies benchmark's design (issue 13), on the quick bench's 96 test fields
(64^2 slabs, ``simulate(96, seed=3)``, the fields of ``bench dm_to_galaxies --quick`` at seed 0).

    .venv/bin/python scripts/dm_field_checks.py --noise           # ~1 min on 2 CPU cores
    .venv/bin/python scripts/dm_field_checks.py --clip --indep    # ~1 min
    .venv/bin/python scripts/dm_field_checks.py --vdm 384 400     # ~5 min: n_train, steps [, sampling steps]
    .venv/bin/python scripts/dm_field_checks.py --vdm 384 800 --seed 1 --init 1 --config '{"t_focus": 0}'

--noise: pk_ratio_mean_abs_dev of the exact oracle's own samples (2 per field) against the truth on the first 24, 48
and 96 test fields: the noise floor of the metric for a test set of that size.
--clip: T(k) of the true fields clipped at 4, 8 and 16 galaxies per voxel against the unclipped ones (what a model
that cannot represent larger counts loses).
--indep: independent Poisson draws from the exact mean field E[N | DM]: the power a sampler without the satellites'
spatial correlations reaches.
--vdm N STEPS [S]: the bench's VDM (base 16, depth 2) trained on N fields for STEPS steps, sampled with S
sampling steps (default 16), 2 samples per test field. Besides T(k) it prints the second moment of the counts in
w x w cells (w = 1, 3, 5, 9 voxels), samples over truth: 1 at w = 1 and below 1 at w >= 3 means the one-point
counts are right and the satellites' spread over neighbouring voxels is not.
--seed S: the fields of ``bench dm_to_galaxies --quick --seed S`` (training seed S + 1, test seed S + 3; default 0).
--init I: the VDM's initialisation and batch seed (default 0). --config JSON: other VDMConfig values.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import core.tasks.dm_to_galaxies  # noqa: F401  (registers the task's models)
from core.tasks.dm_to_galaxies.data import simulate
from core.tasks.dm_to_galaxies.metrics import pk_summary, transfer_and_correlation
from core.tasks.dm_to_galaxies.oracle import oracle_fields, oracle_samples
from core.tasks.dm_to_galaxies.simulator import FieldSimConfig

CFG = FieldSimConfig(dim=2, n_grid=64)


def _report(name: str, pred: np.ndarray, truth: np.ndarray) -> None:
    pk = transfer_and_correlation(pred, truth, CFG.box_size)
    s = pk_summary(pk)
    print(f"{name}: pk_ratio_mean_abs_dev {s['pk_ratio_mean_abs_dev']:.4f}, r_k_mean {s['r_k_mean']:.4f}; "
          f"T(k) {np.round(pk['T'], 2).tolist()}", flush=True)


def _opt(argv: list[str], name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def _cells(samples: np.ndarray, truth: np.ndarray) -> list[float]:
    """<N_w^2> of samples over truth for counts in w x w cells (periodic), w = 1, 3, 5, 9."""
    from scipy.ndimage import uniform_filter

    s, t = samples.astype(float), truth.astype(float)
    out = []
    for w in (1, 3, 5, 9):
        sw = uniform_filter(s, size=(1, 1, w, w), mode="wrap")
        tw = uniform_filter(t, size=(1, w, w), mode="wrap")
        out.append(round(float((sw**2).mean() / (tw**2).mean()), 3))
    return out


def main(argv: list[str]) -> None:
    seed = int(_opt(argv, "--seed", "0"))
    test = simulate(96, seed + 3, CFG)
    truth = test.galaxies
    if "--noise" in argv:
        samples = oracle_samples(test.dm, CFG, 2, 7)
        for n in (24, 48, 96):
            _report(f"oracle samples, {n} test fields", samples[:n], truth[:n])
    if "--clip" in argv:
        print(f"largest count in the 96 test fields: {truth.max()}")
        for k in (4, 8, 16):
            _report(f"truth clipped at {k}", np.clip(truth, 0, k), truth)
    if "--indep" in argv:
        _, mean = oracle_fields(test.dm, CFG)
        draws = np.random.default_rng(0).poisson(np.repeat(mean[:, None], 2, axis=1))
        _report("independent Poisson from E[N | DM]", draws, truth)
    if "--vdm" in argv:
        import torch

        from core.models import build_model

        i = argv.index("--vdm")
        n_train, steps = int(argv[i + 1]), int(argv[i + 2])
        sample_steps = int(argv[i + 3]) if len(argv) > i + 3 and argv[i + 3].isdigit() else 16
        extra = json.loads(_opt(argv, "--config", "{}"))
        torch.set_num_threads(1)
        train, val = simulate(n_train, seed + 1, CFG), simulate(64, seed + 2, CFG)
        config = {"base": 16, "depth": 2, "steps": steps, "sample_steps": sample_steps,
                  "seed": int(_opt(argv, "--init", "0")), **extra}
        model = build_model("dm_to_galaxies", "vdm", config, ("dm",), ("galaxies",))
        model.fit(train, val, device="cpu")
        post = model.posterior(test, n_samples=2, seed=7, device="cpu")
        name = f"vdm (bench seed {seed}), {n_train} fields, {steps} steps, {sample_steps} sampling steps, {config}"
        _report(name, post.samples, truth)
        print(f"  galaxies, samples / truth: {post.samples.sum() / 2 / truth.sum():.3f}; <N_w^2>, samples / truth, "
              f"w = 1, 3, 5, 9: {_cells(post.samples, truth)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["--noise", "--clip", "--indep"])
