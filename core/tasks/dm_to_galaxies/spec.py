"""TaskSpec of dm_to_galaxies: a DM density field (2-D map or 3-D grid) -> the galaxy count / occupancy field."""

from __future__ import annotations

from core.tasks import Definition, Quantity, TaskSpec

__all__ = ["SPEC"]

SPEC = TaskSpec(
    name="dm_to_galaxies",
    title="Galaxy field from a dark-matter field",
    summary="From a dark-matter density field (a 2-D map or a 3-D grid of an N-body run) infer, per voxel, the "
    "probability of hosting a galaxy and the expected count, and sample whole galaxy fields.",
    data_kind="field",
    inputs=(
        Quantity(
            "dm",
            "",
            "rho/rho_bar",
            "Dark-matter density in units of the field's mean, on a periodic grid (2-D slab or 3-D box)",
            ("dm", "rho", "density", "mtot", "delta_dm", "Mtot"),
            (0.0, 1e4),
            kind="map",
            definition=Definition(
                weighting="mass density on the grid, divided by the field's own mean (1 + delta)",
                note="the simulator's field is lognormal dark matter from the linear P(k) (colossus, z of the "
                "config), Gaussian-smoothed by R_s = 1 Mpc/h, in 25 Mpc/h boxes (2-D slabs 5 Mpc/h thick, comoving); "
                "CAMELS Maps_Mtot are projected total matter (DM + gas + stars): close on these scales",
            ),
        ),
    ),
    targets=(
        Quantity(
            "galaxies",
            "",
            "N_gal",
            "Galaxy count per voxel (occupancy = N >= 1)",
            ("galaxies", "ngal", "counts", "n_gal"),
            (0.0, 100.0),
            kind="map",
        ),
    ),
    simulator="field",
    models=("two_phase", "vdm"),
    baselines=("oracle", "hod", "threshold"),
    notes="Fields are 64^2 slabs (25 x 25 x 5 (Mpc/h)^3) by default, 3-D 32^3 boxes configurable; the exact "
    "oracle needs simulated data. Readers: CAMELS Maps_*.npy stacks, HDF5 and FITS images/cubes.",
    extra={"grid_2d": 64, "grid_3d": 32, "box_size": 25.0},
)
