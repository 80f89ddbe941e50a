"""Regenerate tests/data/fof_subhalo_tab_099.36_trim.hdf5 from the real TNG100-1 chunk (run from the repo root).

Keeps Header/Config/Parameters attributes, the chunk's one Group row, and the first N_SUB subhaloes (all fields),
with Header.Nsubgroups_ThisFile set to N_SUB. Usage: python tests/data/make_tng_fixture.py SRC [DST]
"""

import sys

import h5py

N_SUB = 40


def main(src: str, dst: str = "tests/data/fof_subhalo_tab_099.36_trim.hdf5") -> None:
    with h5py.File(src, "r") as fi, h5py.File(dst, "w") as fo:
        for g in ("Header", "Config", "Parameters"):
            grp = fo.create_group(g)
            for k, v in fi[g].attrs.items():
                grp.attrs[k] = v
        fo["Header"].attrs["Nsubgroups_ThisFile"] = N_SUB
        fo.create_group("IDs")
        for g, n in (("Group", None), ("Subhalo", N_SUB)):
            grp = fo.create_group(g)
            for k, d in fi[g].items():
                grp.create_dataset(k, data=d[()] if n is None else d[:n])


if __name__ == "__main__":
    main(*sys.argv[1:])
