"""halo_mass: integrated catalogue properties of central galaxies -> log M200c (the catalogue simulator's task)."""

from __future__ import annotations

from core.tasks.base import Quantity, ResultWriter, Task, TaskDefaults, TaskSpec, register_task
from core.tasks.halo_mass.data import DATA, exact_posterior
from core.tasks.halo_mass.models import MODELS

__all__ = ["SPEC", "TASK", "INPUTS"]

INPUTS = (
    Quantity(
        "log_mstar",
        "dex(solMass)",
        "log M*",
        "Stellar mass, log10(M*/Msun)",
        (
            "logmstar",
            "log_mstar",
            "mstar",
            "stellar_mass",
            "log_stellar_mass",
            "logm",
            "lgm_tot_p50",
            "m_star",
            "mass_star",
        ),
        (6.5, 12.5),
        plausible=(5.0, 13.0),
    ),
    Quantity(
        "log_sfr",
        "dex(solMass / yr)",
        "log SFR",
        "Star-formation rate, log10(SFR/(Msun/yr))",
        ("logsfr", "sfr", "log_sfr", "star_formation_rate", "sfr_tot_p50"),
        (-7.0, 3.0),
        plausible=(-8.0, 4.0),
    ),
    Quantity(
        "u_g",
        "mag",
        "u-g",
        "u-g colour (SDSS bands, z~0.05 observed frame)",
        ("u-g", "ug", "u_minus_g", "color_ug", "colour_ug"),
        (0.0, 3.0),
        plausible=(-1.5, 5.0),
    ),
    Quantity(
        "g_r",
        "mag",
        "g-r",
        "g-r colour",
        ("g-r", "gr", "g_minus_r", "color_gr", "colour_gr"),
        (-0.4, 1.5),
        plausible=(-1.5, 3.0),
    ),
    Quantity(
        "r_i",
        "mag",
        "r-i",
        "r-i colour",
        ("r-i", "ri", "r_minus_i", "color_ri", "colour_ri"),
        (-0.5, 1.0),
        plausible=(-1.5, 2.5),
    ),
    Quantity(
        "i_z",
        "mag",
        "i-z",
        "i-z colour",
        ("i-z", "iz", "i_minus_z", "color_iz", "colour_iz"),
        (-0.5, 1.0),
        plausible=(-1.5, 2.5),
    ),
    Quantity(
        "conc",
        "",
        "C",
        "Petrosian concentration index R90/R50",
        ("c", "conc", "concentration", "r90_r50", "c_index", "concentration_index"),
        (0.5, 5.0),
        plausible=(1.0, 10.0),
    ),
    Quantity(
        "log_fgas",
        "dex",
        "log f_gas",
        "Atomic gas fraction log10(M_HI/M*)",
        ("logfgas", "log_fgas", "fgas", "gas_fraction", "log_mhi_mstar", "log_fhi", "fhi"),
        (-4.0, 2.0),
        plausible=(-7.0, 3.0),
    ),
)

SPEC = TaskSpec(
    name="halo_mass",
    title="Halo mass from catalogue properties",
    summary="Infer the dark-matter halo mass log M200c of central galaxies from stellar mass, SFR, colours, "
    "concentration and gas fraction (any subset).",
    data_kind="catalog",
    inputs=INPUTS,
    targets=(
        Quantity(
            "log_mh",
            "dex(solMass)",
            "log Mh",
            "Halo mass log10(M200c/Msun)",
            ("logmh", "log_mh", "mh", "halo_mass", "log_m200c", "m200c", "log_mhalo", "group_m_crit200"),
            (10.5, 15.0),
            plausible=(8.0, 16.5),
        ),
    ),
    simulator="catalog",
    # The amortized flow is the default (a posterior in milliseconds, so the app stays interactive); vae_hmc is the
    # seed's method and backs "Refine with HMC" (NUTS per galaxy, seconds to minutes).
    models=("flow", "vae_hmc"),
    baselines=("exact", "shmr", "lightgbm"),
    bin_target="log_mh",
)


def _write(post, data, path, fmt, *, provenance: dict, save_samples: bool = False, n_samples: int = 1000):
    from core.data.export import write_posterior

    write_posterior(post, data, path, fmt, include_samples=save_samples, n_samples=n_samples, provenance=provenance)


TASK = register_task(
    Task(
        spec=SPEC,
        data=DATA,
        models=MODELS,
        defaults=TaskDefaults(draws=1000, interactive_draws=1000, demo_draws=4000, demo_size=2000),
        bench="core.tasks.halo_mass.bench",
        writer=ResultWriter(_write, formats=("csv", "fits", "hdf5"), sample_formats=("fits", "hdf5")),
        exact=exact_posterior,
    )
)
