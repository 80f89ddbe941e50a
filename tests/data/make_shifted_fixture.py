"""Writes tests/data/halo_mass_shifted_b13.csv: a labelled halo_mass catalogue from a simulator configuration the
bundled models were not trained on (Behroozi13 SHMR, 0.25 dex scatter, quenching mass 10^12.6), 2000 rows, the
model inputs and the truth only, 3 decimals. Run: .venv/bin/python tests/data/make_shifted_fixture.py"""

from pathlib import Path

import numpy as np

from core import api

CONFIG = {"shmr": "behroozi13", "sigma_shmr": 0.25, "fq_log_mq": 12.6}

if __name__ == "__main__":
    d = api.simulate("halo_mass", 2000, seed=41, config=CONFIG, use_cache=False)
    cols = ["id", *d.features, "log_mh"]
    rows = np.column_stack([d.ids, d.x, d.y[:, 0]])
    out = Path(__file__).with_name("halo_mass_shifted_b13.csv")
    with open(out, "w") as fh:
        fh.write(f"# simulated: catalog simulator, seed 41, n 2000, config {CONFIG}\n")
        fh.write(",".join(cols) + "\n")
        for r in rows:
            fh.write(f"{int(r[0])}," + ",".join(f"{v:.3f}" for v in r[1:]) + "\n")
    print(out)
