"""Build the shipped photo-z template table (rest-frame SPS spectra per unit formed mass + filter curves).

Usage (needs the optional ``[build]`` extra: ``pip install bagpipes speclite``)::

    python scripts/build_photoz_templates.py [--out core/tasks/photoz/tables]

Writes ``templates_v1.npz`` (float32 arrays, no pickles) and ``templates_v1.json`` (generating config,
provenance, sha256 of the npz). Contents of the npz:

* ``wave`` (W,) rest-frame wavelength [Angstrom], log-spaced 500-12500 A;
* ``spectra`` (S, A, Z, W) dust-free rest-frame L_lambda [erg/s/A] per 1 Msun *formed*, for the star-formation
  histories S = (burst, exponential tau=0.3/1/3 Gyr, delayed tau=0.3/1/3 Gyr), ages A (time since the onset of
  star formation, Gyr) and metallicities Z/Zsun; computed with bagpipes (BC03 MILES stellar grids, no nebular
  emission, no dust; dust (Calzetti) and IGM (Madau 1995) are applied at run time by ``core.tasks.photoz.templates``);
* ``living_frac`` (S, A, Z): living stellar mass / formed mass (bagpipes ``sfh.stellar_mass``);
* ``filt_<band>_wave`` / ``filt_<band>_resp``: speclite ``sdss2010-{u,g,r,i,z}`` and ``hsc2017-{g,r2,i2,z,y}``
  response curves (observed-frame Angstrom, photon-counting response).

Run time: ~1 min on one core after bagpipes' first import.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

AGES_GYR = tuple(float(a) for a in np.round(np.geomspace(0.05, 13.0, 16), 4))
Z_GRID = (0.2, 0.4, 1.0, 2.5)                          # Z / Zsun
SFHS = (("burst", None), ("exponential", 0.3), ("exponential", 1.0), ("exponential", 3.0),
        ("delayed", 0.3), ("delayed", 1.0), ("delayed", 3.0))
WAVE = np.geomspace(500.0, 12500.0, 1200)
SDSS = ("sdss2010-u", "sdss2010-g", "sdss2010-r", "sdss2010-i", "sdss2010-z")
HSC = ("hsc2017-g", "hsc2017-r2", "hsc2017-i2", "hsc2017-z", "hsc2017-y")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "core" / "tasks" / "photoz" / "tables"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    import bagpipes as pipes
    import speclite.filters as sf
    from importlib.metadata import version

    t0 = time.time()
    spectra = np.zeros((len(SFHS), len(AGES_GYR), len(Z_GRID), WAVE.size), dtype=np.float64)
    living = np.zeros((len(SFHS), len(AGES_GYR), len(Z_GRID)))
    for s, (kind, tau) in enumerate(SFHS):
        mg = None
        for a, age in enumerate(AGES_GYR):
            for k, met in enumerate(Z_GRID):
                comp = {"age": age, "massformed": 0.0, "metallicity": met}
                if kind != "burst":
                    comp.update(age=age, tau=tau)
                comps = {"redshift": 0.0, kind: comp}
                if mg is None:
                    mg = pipes.model_galaxy(comps, spec_wavs=WAVE)
                else:
                    mg.update(comps)
                spectra[s, a, k] = mg.spectrum[:, 1]
                living[s, a, k] = 10.0 ** mg.sfh.stellar_mass
    arrays = {"wave": WAVE.astype(np.float32), "spectra": spectra.astype(np.float32),
              "living_frac": living.astype(np.float32)}
    for name in SDSS + HSC:
        f = sf.load_filter(name)
        arrays[f"filt_{name}_wave"] = np.asarray(f.wavelength, dtype=np.float32)
        arrays[f"filt_{name}_resp"] = np.asarray(f.response, dtype=np.float32)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "templates_v1.npz"
    np.savez_compressed(path, **arrays)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {"version": 1, "sha256": sha, "file": path.name,
            "command": "python scripts/build_photoz_templates.py",
            "provenance": f"bagpipes {version('bagpipes')} (BC03 MILES stellar, no nebular), speclite "
                          f"{version('speclite')}; rest-frame L_lambda [erg/s/A] per Msun formed at redshift 0",
            "ages_gyr": list(AGES_GYR), "z_over_zsun": list(Z_GRID),
            "sfhs": [[k, t] for k, t in SFHS], "wave": [float(WAVE[0]), float(WAVE[-1]), int(WAVE.size)],
            "bands": {"sdss": list(SDSS), "hsc": list(HSC)}, "build_seconds": round(time.time() - t0, 1)}
    (args.out / "templates_v1.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
