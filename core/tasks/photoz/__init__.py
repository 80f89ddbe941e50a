"""Task ``photoz``: photometric redshifts and stellar-population posteriors from broadband photometry.

Engine pieces: :mod:`templates` (shipped bagpipes template table), :mod:`simulator`, :mod:`exact` (template
posterior), :mod:`io` (catalogue readers), :mod:`metrics`, :mod:`models` (mmvae, flow, lightgbm, knn),
:mod:`bench`, :mod:`writer`, :mod:`viz`. Importing this package registers the TaskSpec in ``core.tasks.TASKS``
and the models in ``core.models.MODELS``; ``TASK`` is the :class:`core.tasks.base.Task`.
"""

from __future__ import annotations

from dataclasses import replace

from core.models.base import ModelSpec
from core.tasks.base import Capabilities, ResultWriter, Task, TaskDefaults, register_task
from core.tasks.photoz.spec import SPEC, PhotozData

__all__ = ["TASK", "SPEC", "CAPABILITIES", "exact"]

_M = "core.tasks.photoz.models"
_MODELS = (
    ModelSpec(
        "mmvae",
        "photoz",
        "Multi-modal VAE (staged: spectra -> photometry encoder -> parameter decoder)",
        f"{_M}.mmvae:MmvaeModel",
        f"{_M}.mmvae:MmvaeConfig",
        "The seed's multi-modal VAE: a spectral VAE (latent 16), a photometry encoder trained into its latent, "
        "a Gaussian parameter decoder; joint posterior of (z, age, log M*, [Z/H], A_V) by sampling the latent; "
        "calibration temperature. Trains on mock photometry.",
        smoke_config={
            "hidden": 16,
            "n_spec_bands": 8,
            "latent": 4,
            "latent_draws": 4,
            "spectral": {"epochs": 1},
            "photometry": {"epochs": 1},
            "parameters": {"epochs": 1},
        },
    ),
    ModelSpec(
        "flow",
        "photoz",
        "Amortized normalizing flow q(z | photometry) (zuko)",
        f"{_M}.baselines:PhotozFlow",
        f"{_M}.baselines:PhotozFlowConfig",
        "Neural spline flow on r, colours and log errors; trains on mocks or on a spec-z table.",
        smoke_config={"hidden": [16], "transforms": 1, "bins": 4, "train": {"epochs": 2}},
    ),
    ModelSpec(
        "exact",
        "photoz",
        "Template posterior (simulator's exact p(z))",
        "core.tasks.photoz.exact:ExactModel",
        "core.tasks.photoz.exact:ExactConfig",
        "Marginalizes the shipped template grid with the analytic amplitude integral: the Bayes-optimal p(z) on "
        "mocks, a template-fitting photo-z on real data.",
        kind="baseline",
        needs_simulator=True,
    ),
    ModelSpec(
        "lightgbm",
        "photoz",
        "LightGBM quantile regression",
        f"{_M}.baselines:PhotozLightGBM",
        f"{_M}.baselines:PhotozLightGBMConfig",
        "Point + quantile gradient-boosted trees on r and colours.",
        kind="baseline",
        smoke_config={"n_estimators": 20},
    ),
    ModelSpec(
        "knn",
        "photoz",
        "k nearest neighbours",
        f"{_M}.baselines:KnnModel",
        f"{_M}.baselines:KnnConfig",
        "Median and Gaussian mixture of the k nearest training galaxies in (r, colours).",
        kind="baseline",
        smoke_config={"k": 5},
    ),
)
CAPABILITIES = {
    "mmvae": Capabilities(),
    "flow": Capabilities(),
    "exact": Capabilities(exact=True, slow=True),
    "lightgbm": Capabilities(feature_importance=True),
    "knn": Capabilities(),
}
_MODELS = tuple(replace(m, capabilities=CAPABILITIES[m.name]) for m in _MODELS)


def exact(data):
    """The simulator's exact p(z) when ``data`` were simulated (their meta holds the config), else None."""
    if data.meta.get("simulator") != "photometry":
        return None
    from core.tasks.photoz.exact import exact_posterior

    return exact_posterior(data, data.meta.get("config"))


def _writer(post, data, path, fmt=None, *, provenance=None, save_samples=False, **_):
    """The task's result writer (``n_samples`` and other generic options do not apply: p(z) is on a grid)."""
    from core.tasks.photoz.writer import write

    write(post, data, path, fmt, provenance=provenance, save_samples=save_samples)


def _summary(post) -> dict:
    """JSON-ready summary for the CLI: galaxies and how many have a posterior (flagged photometry has none)."""
    return {"objects": int(post.n), "valid": int(post.valid.sum())}


WRITER = ResultWriter(
    _writer,
    formats=("csv", "fits", "hdf5", "qp"),
    sample_formats=("fits", "hdf5"),
    summary=_summary,
    what="per-galaxy summaries + p(z) on a grid (CSV, FITS or HDF5; LSST qp with qp-prob installed)",
)


def _register_simulator() -> None:
    """The photometry simulator in ``core.data.simulators.SIMULATORS`` (api.simulate / api.exact_posterior)."""
    from core.data.simulators import SIMULATORS, SimulatorSpec, _lazy
    from core.tasks.photoz.simulator import PhotozSimConfig

    if "photometry" not in SIMULATORS:
        SIMULATORS.register(
            "photometry",
            SimulatorSpec(
                name="photometry",
                task="photoz",
                config_cls=PhotozSimConfig,
                simulate=_lazy("core.tasks.photoz.simulator", "simulate"),
                exact_posterior_factory=_lazy("core.tasks.photoz.exact", "exact_posterior_factory"),
                description="Template photometry (bagpipes grid, SDSS ugriz or HSC grizy): n(z), burst / "
                "exponential / delayed SFHs, Calzetti dust, flux noise from 5-sigma depths plus a calibration "
                "floor, asinh magnitudes, a magnitude selection; exact p(z) by marginalising the template grid "
                "(simulators.md section 3).",
            ),
        )


_register_simulator()

TASK = register_task(
    Task(
        spec=SPEC,
        data=PhotozData(),
        models=_MODELS,
        defaults=TaskDefaults(draws=500, interactive_draws=500, demo_draws=1000, demo_size=2000, smoke_size=300),
        bench="core.tasks.photoz.bench",
        writer=WRITER,
        exact=exact,
    )
)
