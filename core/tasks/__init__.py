"""Task registry: what is inferred from what (schemas with units), the default simulator and the models.

A task's *inputs* and *targets* are :class:`Quantity` specs. Readers map a file's columns onto these names
(``aliases`` help the automatic mapping; ``unit`` is the canonical unit every value is converted to).
The UI menus, the checkpoint loader and parametrized tests all read :data:`TASKS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.registry import Registry

__all__ = ["Quantity", "TaskSpec", "TASKS", "get_task"]


@dataclass(frozen=True)
class Quantity:
    """One named input or target.

    ``unit`` is an astropy unit string; logarithmic quantities use ``dex(...)`` units, e.g. ``dex(solMass)``.
    ``domain`` is the range the default simulator covers (values outside are flagged, not refused).
    """

    name: str
    unit: str
    label: str
    description: str
    aliases: tuple[str, ...] = ()
    domain: tuple[float, float] | None = None
    kind: Literal["scalar", "map", "image"] = "scalar"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    summary: str
    data_kind: Literal["catalog", "maps", "photometry", "field"]
    inputs: tuple[Quantity, ...]
    targets: tuple[Quantity, ...]
    simulator: str
    models: tuple[str, ...]             # first = default
    baselines: tuple[str, ...] = ()
    bin_target: str | None = None       # metrics "per bin" of this target
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def input(self, name: str) -> Quantity:
        for q in self.inputs:
            if q.name == name:
                return q
        from core.errors import GPSError
        raise GPSError(f"task {self.name!r} has no input {name!r}",
                       expected=", ".join(q.name for q in self.inputs), found=name)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.inputs)

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.targets)

    @property
    def methods(self) -> tuple[str, ...]:
        return self.models + self.baselines


TASKS: Registry[TaskSpec] = Registry("task")


def get_task(name: str) -> TaskSpec:
    return TASKS.get(name)


# -------------------------------------------------------------------------------------------------
# halo_mass: integrated catalogue properties of central galaxies -> log M200c
# -------------------------------------------------------------------------------------------------
HALO_MASS_INPUTS = (
    Quantity("log_mstar", "dex(solMass)", "log M*", "Stellar mass, log10(M*/Msun)",
             ("logmstar", "log_mstar", "mstar", "stellar_mass", "log_stellar_mass", "logm", "lgm_tot_p50",
              "m_star", "mass_star"), (6.5, 12.5)),
    Quantity("log_sfr", "dex(solMass / yr)", "log SFR", "Star-formation rate, log10(SFR/(Msun/yr))",
             ("logsfr", "sfr", "log_sfr", "star_formation_rate", "sfr_tot_p50"), (-7.0, 3.0)),
    Quantity("u_g", "mag", "u-g", "u-g colour (SDSS bands, z~0.05 observed frame)",
             ("u-g", "ug", "u_minus_g", "color_ug", "colour_ug"), (0.0, 3.0)),
    Quantity("g_r", "mag", "g-r", "g-r colour", ("g-r", "gr", "g_minus_r", "color_gr", "colour_gr"), (-0.4, 1.5)),
    Quantity("r_i", "mag", "r-i", "r-i colour", ("r-i", "ri", "r_minus_i", "color_ri", "colour_ri"), (-0.5, 1.0)),
    Quantity("i_z", "mag", "i-z", "i-z colour", ("i-z", "iz", "i_minus_z", "color_iz", "colour_iz"), (-0.5, 1.0)),
    Quantity("conc", "", "C", "Petrosian concentration index R90/R50",
             ("c", "conc", "concentration", "r90_r50", "c_index", "concentration_index"), (0.5, 5.0)),
    Quantity("log_fgas", "dex", "log f_gas", "Atomic gas fraction log10(M_HI/M*)",
             ("logfgas", "log_fgas", "fgas", "gas_fraction", "log_mhi_mstar", "log_fhi", "fhi"), (-4.0, 2.0)),
)

TASKS.register("halo_mass", TaskSpec(
    name="halo_mass",
    title="Halo mass from catalogue properties",
    summary="Infer the dark-matter halo mass log M200c of central galaxies from stellar mass, SFR, colours, "
            "concentration and gas fraction (any subset).",
    data_kind="catalog",
    inputs=HALO_MASS_INPUTS,
    targets=(Quantity("log_mh", "dex(solMass)", "log Mh", "Halo mass log10(M200c/Msun)",
                      ("logmh", "log_mh", "mh", "halo_mass", "log_m200c", "m200c", "log_mhalo", "group_m_crit200"),
                      (10.5, 15.0)),),
    simulator="catalog",
    # The amortized flow is the default (a posterior in milliseconds, so the app stays interactive); vae_hmc is the
    # seed's method and backs "Refine with HMC" (NUTS per galaxy, seconds to minutes).
    models=("flow", "vae_hmc"),
    baselines=("exact", "shmr", "lightgbm"),
    bin_target="log_mh",
))


# -------------------------------------------------------------------------------------------------
# exsitu_map: observable IFU maps -> ex-situ stellar mass fraction map (seed 001, Angeloudi et al.)
# -------------------------------------------------------------------------------------------------
EXSITU_MAP_INPUTS = (
    Quantity("log_sigma_star", "dex(solMass / kpc2)", "log Sigma*", "Stellar mass surface density map",
             ("log_sigma_star", "logsigmastar", "sigma_star", "mass_density", "log_mass_density"), (5.0, 11.5),
             kind="map"),
    Quantity("vel", "km / s", "v_los", "Line-of-sight stellar velocity map (systemic velocity removed)",
             ("vel", "stellar_vel", "velocity", "v_los", "v"), (-500.0, 500.0), kind="map"),
    Quantity("sigma", "km / s", "sigma_los", "Line-of-sight stellar velocity dispersion map (instrument-corrected)",
             ("sigma", "stellar_sigma", "dispersion", "sigma_los", "veldisp"), (0.0, 500.0), kind="map"),
    Quantity("log_age", "dex(yr)", "log age", "Mass-weighted stellar age map, log10(age/yr)",
             ("log_age", "logage", "age", "log_age_mw"), (8.0, 10.2), kind="map"),
    Quantity("metallicity", "dex", "[Z/H]", "Mass-weighted stellar metallicity map [Z/H]",
             ("metallicity", "z_h", "zh", "met", "log_z", "feh"), (-2.0, 0.6), kind="map"),
)

TASKS.register("exsitu_map", TaskSpec(
    name="exsitu_map",
    title="Ex-situ fraction map from IFU maps",
    summary="Infer the resolved ex-situ stellar mass fraction map f_ex(x, y) from observable maps of stellar "
            "mass density, kinematics, age and metallicity (any subset of channels).",
    data_kind="maps",
    inputs=EXSITU_MAP_INPUTS,
    targets=(Quantity("f_ex", "", "f_ex", "Ex-situ stellar mass fraction per pixel (intrinsic, no PSF)",
                      ("f_ex", "fex", "exsitu_fraction", "ex_situ_fraction", "accreted_fraction"), (0.0, 1.0),
                      kind="map"),),
    simulator="ifu",
    # One trained model (cVAE + latent flow) answers three inference modes: "flow" (default), "prior"
    # (z ~ N(0, I)) and "reconstruction" (encoder on the true map: a lower bound, needs the truth), chosen with
    # ``posterior(..., mode=)``. "mean_map" is a separately trained baseline (per-radius training distribution).
    models=("cvae_flow",),
    baselines=("mean_map",),
    notes="Maps are regridded onto the model grid (map_size pixels over fov_rhalf half-mass radii) before "
          "inference; metrics use galaxy pixels only.",
    extra={"inference_modes": ("flow", "prior", "reconstruction"), "default_mode": "flow"},
))


# -------------------------------------------------------------------------------------------------
# central_mass: r-band image (+ g-r map) and v / sigma maps -> central stellar, total mass and M/L (seed 004)
# -------------------------------------------------------------------------------------------------
CENTRAL_MASS_INPUTS = (
    Quantity("image", "mag / arcsec2", "mu_r", "r-band surface-brightness image (own size and field of view)",
             ("image", "mu_r", "sb_r", "r_band", "spx_mflux", "flux"), (16.0, 28.0), kind="image"),
    Quantity("g_r", "mag", "g-r", "g-r colour map on the image grid", ("g_r", "gr", "g-r", "colour_map"),
             (-0.2, 1.5), kind="image"),
    Quantity("vel", "km / s", "v_los", "Line-of-sight stellar velocity map (systemic removed; 48x48 over 2 r_1/2)",
             ("vel", "stellar_vel", "velocity", "v_los", "v"), (-500.0, 500.0), kind="map"),
    Quantity("sigma", "km / s", "sigma_los", "Line-of-sight stellar velocity dispersion map (instrument-corrected)",
             ("sigma", "stellar_sigma", "dispersion", "sigma_los", "veldisp"), (0.0, 500.0), kind="map"),
)

TASKS.register("central_mass", TaskSpec(
    name="central_mass",
    title="Central stellar mass, total mass and M/L from images and kinematic maps",
    summary="Infer log M*(<R_e), log M_tot(<R_e) and log M/L_r(<R_e) inside the projected r-band half-light "
            "radius from an r-band image (+ g-r map) and stellar v / sigma maps, each at its own size "
            "(any subset of inputs).",
    data_kind="maps",
    inputs=CENTRAL_MASS_INPUTS,
    targets=(Quantity("log_mstar_re", "dex(solMass)", "log M*(<Re)", "Stellar mass inside the projected R_e",
                      ("log_mstar_re", "logmstar_re", "mstar_re"), (8.0, 12.0)),
             Quantity("log_mtot_re", "dex(solMass)", "log Mtot(<Re)", "Total (stars + dark matter) mass inside the "
                      "projected R_e (cylinder)", ("log_mtot_re", "logmtot_re", "mtot_re", "mdyn_re"), (8.0, 13.5)),
             Quantity("log_ml_r", "dex(solMass / solLum)", "log M/L_r", "Stellar r-band mass-to-light ratio inside "
                      "R_e (light-weighted aperture)", ("log_ml_r", "ml_r", "log_ml"), (-0.6, 0.7))),
    simulator="ifu",
    models=("resnet",),
    baselines=("lightgbm", "powerlaw"),
    bin_target="log_mstar_re",
    notes="Inputs are CentralMassData (core.data.central_data); the ResNet needs the pixel size in kpc and the "
          "redshift of every object; LightGBM and the power law use the summary statistics of "
          "core.data.summary_stats.",
))


import core.tasks.dm_to_galaxies  # noqa: E402,F401  (registers the dm_to_galaxies task and its models)
