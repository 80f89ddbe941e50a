"""Task package ``dm_to_galaxies`` (seed 003): DM density field -> galaxy field (science/simulators.md section 4).

Modules: ``simulator`` (lognormal DM, Poisson halos, Zheng+07 HOD), ``oracle`` (exact P(N>=1 | DM), E[N | DM]),
``data`` (FieldData, FieldPosterior, adapter), ``io`` (readers), ``export`` (writers), ``metrics``, ``unet``
(R2U-Net / Inception), ``two_phase``, ``vdm``, ``baselines`` (oracle, hod, threshold), ``tng_hod`` (TNG halo
occupation check), ``bench``, ``viz`` (plotly figures). Importing this package registers the Task (spec, data
adapter, models, writer, bench) through :func:`core.tasks.base.register_task`.
"""

from __future__ import annotations

from core.models.base import ModelSpec
from core.tasks.base import Capabilities, ResultWriter, Task, TaskDefaults, register_task
from core.tasks.dm_to_galaxies.adapter import FieldDataAdapter
from core.tasks.dm_to_galaxies.data import FieldData, FieldPosterior
from core.tasks.dm_to_galaxies.export import write_fields
from core.tasks.dm_to_galaxies.spec import SPEC

__all__ = ["TASK", "SPEC", "CAPABILITIES", "FieldData", "FieldPosterior", "exact"]

_P = "core.tasks.dm_to_galaxies"
CAPABILITIES = {
    "two_phase": Capabilities(),
    "vdm": Capabilities(slow=True, posterior_predictive=True),
    "oracle": Capabilities(exact=True, posterior_predictive=True),
    "hod": Capabilities(posterior_predictive=True),
    "threshold": Capabilities(),
}
_MODELS = (
    ModelSpec(
        "two_phase",
        "dm_to_galaxies",
        "Two-phase R2U-Net (classifier + regressor)",
        f"{_P}.two_phase:TwoPhaseModel",
        f"{_P}.two_phase:TwoPhaseConfig",
        "Weighted-CE R2U-Net (or Inception) occupancy classifier at recall 0.95, then an R2U-Net Poisson "
        "regressor of counts on the voxels it keeps.",
        capabilities=CAPABILITIES["two_phase"],
        smoke_config={"base": 4, "depth": 1, "steps": 3, "reg_steps": 2, "batch": 2},
    ),
    ModelSpec(
        "vdm",
        "dm_to_galaxies",
        "Variational diffusion model",
        f"{_P}.vdm:VDMModel",
        f"{_P}.vdm:VDMConfig",
        "Kingma+21 VDM (learned noise schedule, continuous-time VLB) of galaxy count fields conditioned on the DM "
        "field; samples whole galaxy fields.",
        capabilities=CAPABILITIES["vdm"],
        smoke_config={"base": 4, "depth": 1, "emb": 8, "steps": 3, "batch": 2, "sample_steps": 2},
    ),
    ModelSpec(
        "oracle",
        "dm_to_galaxies",
        "Exact oracle (simulator)",
        f"{_P}.baselines:OracleModel",
        f"{_P}.baselines:OracleConfig",
        "Exact P(N>=1 | DM) = 1 - exp(-Lambda) and E[N | DM] of the Poisson-halo simulator (simulated data only).",
        kind="baseline",
        needs_simulator=True,
        capabilities=CAPABILITIES["oracle"],
    ),
    ModelSpec(
        "hod",
        "dm_to_galaxies",
        "3-parameter HOD on DM peaks",
        f"{_P}.baselines:HodModel",
        f"{_P}.baselines:HodConfig",
        "Halos found as DM density peaks, populated with the seed's 3-parameter HOD fitted on the training fields.",
        kind="baseline",
        capabilities=CAPABILITIES["hod"],
        smoke_config={"n_grid_mmin": 5},
    ),
    ModelSpec(
        "threshold",
        "dm_to_galaxies",
        "Density threshold",
        f"{_P}.baselines:ThresholdModel",
        f"{_P}.baselines:ThresholdConfig",
        "Occupied where rho/rho_bar exceeds a threshold tuned for F1 on validation fields.",
        kind="baseline",
        capabilities=CAPABILITIES["threshold"],
        smoke_config={"n_bins": 8},
    ),
)


def exact(data: FieldData) -> FieldPosterior | None:
    """The simulator's exact answer for simulated fields, else None."""
    if not isinstance(data, FieldData) or data.sim_config is None:
        return None
    from core.tasks.dm_to_galaxies.baselines import OracleConfig, OracleModel

    return OracleModel(OracleConfig(), ("dm",), ("galaxies",)).posterior(data, n_samples=1)


def _summary(post: FieldPosterior) -> dict:
    """JSON-ready summary for the CLI: fields, grid and the mean predicted galaxies per field."""
    return {
        "fields": int(len(post.prob)),
        "grid": list(post.prob.shape[1:]),
        "galaxies_per_field": float(post.expected.reshape(len(post.expected), -1).sum(1).mean()),
    }


WRITER = ResultWriter(
    write_fields,
    formats=("hdf5", "fits", "npy"),  # HDF5 first: the Export page offers the first one
    sample_formats=("npy", "hdf5", "fits"),
    summary=_summary,
    what="predicted fields: P(N>=1), E[N], occupied map, optional sampled fields (npy, HDF5 or FITS)",
)


def _register_simulator() -> None:
    """The field simulator in ``core.data.simulators.SIMULATORS`` (``api.simulate``); its exact answer is the
    ``oracle`` model (a field posterior, not a per-object factory)."""
    from core.data.simulators import SIMULATORS, SimulatorSpec, _lazy
    from core.tasks.dm_to_galaxies.simulator import FieldSimConfig

    if "field" not in SIMULATORS:
        SIMULATORS.register(
            "field",
            SimulatorSpec(
                name="field",
                task="dm_to_galaxies",
                config_cls=FieldSimConfig,
                simulate=_lazy(f"{_P}.data", "simulate"),
                exact_posterior_factory=None,
                description="Lognormal DM density from the linear P(k), Poisson halos per mass bin with Tinker "
                "bias, Zheng+07 HOD centrals and NFW satellites; 2-D slabs or 3-D boxes of galaxy counts; exact "
                "P(N>=1 | DM) and E[N | DM] (simulators.md section 4).",
            ),
        )


_register_simulator()

TASK = register_task(
    Task(
        spec=SPEC,
        data=FieldDataAdapter(),
        models=_MODELS,
        defaults=TaskDefaults(
            draws=4, interactive_draws=4, draw_choices=(1, 2, 4, 8), demo_draws=4, demo_size=16, smoke_size=6
        ),
        bench=f"{_P}.bench",
        writer=WRITER,
        exact=exact,
    )
)
