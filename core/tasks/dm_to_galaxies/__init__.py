"""Task package ``dm_to_galaxies`` (seed 003): DM density field -> galaxy field (science/simulators.md section 4).

Modules: ``simulator`` (lognormal DM, Poisson halos, Zheng+07 HOD), ``oracle`` (exact P(N>=1 | DM), E[N | DM]),
``data`` (FieldData, FieldPosterior, adapter), ``io`` (readers), ``export`` (writers), ``metrics``, ``unet``
(R2U-Net / Inception), ``two_phase``, ``vdm``, ``baselines`` (oracle, hod, threshold), ``tng_hod`` (TNG halo
occupation check), ``bench``, ``viz`` (plotly figures). Importing this package registers the TaskSpec and models.
"""

from __future__ import annotations

from core.models.base import ModelSpec, register_model
from core.tasks import TASKS
from core.tasks.base import Capabilities, Task, TaskDefaults
from core.tasks.dm_to_galaxies.data import FieldDataAdapter, FieldData, FieldPosterior
from core.tasks.dm_to_galaxies.export import write_fields
from core.tasks.dm_to_galaxies.spec import SPEC

__all__ = ["TASK", "SPEC", "CAPABILITIES", "FieldData", "FieldPosterior", "exact"]

_P = "core.tasks.dm_to_galaxies"
_MODELS = (
    ("two_phase", "Two-phase R2U-Net (classifier + regressor)", "two_phase:TwoPhaseModel", "two_phase:TwoPhaseConfig",
     "model", "Weighted-CE R2U-Net (or Inception) occupancy classifier at recall 0.95, then an R2U-Net Poisson "
     "regressor of counts on the voxels it keeps.", Capabilities()),
    ("vdm", "Variational diffusion model", "vdm:VDMModel", "vdm:VDMConfig", "model",
     "Kingma+21 VDM (learned noise schedule, continuous-time VLB) of galaxy count fields conditioned on the DM "
     "field; samples whole galaxy fields.", Capabilities(slow=True, posterior_predictive=True)),
    ("oracle", "Exact oracle (simulator)", "baselines:OracleModel", "baselines:OracleConfig", "baseline",
     "Exact P(N>=1 | DM) = 1 - exp(-Lambda) and E[N | DM] of the Poisson-halo simulator (simulated data only).",
     Capabilities(exact=True, posterior_predictive=True)),
    ("hod", "3-parameter HOD on DM peaks", "baselines:HodModel", "baselines:HodConfig", "baseline",
     "Halos found as DM density peaks, populated with the seed's 3-parameter HOD fitted on the training fields.",
     Capabilities(posterior_predictive=True)),
    ("threshold", "Density threshold", "baselines:ThresholdModel", "baselines:ThresholdConfig", "baseline",
     "Occupied where rho/rho_bar exceeds a threshold tuned for F1 on validation fields.", Capabilities()),
)
CAPABILITIES = {name: caps for name, *_, caps in _MODELS}
for name, title, factory, config, kind, desc, _caps in _MODELS:
    register_model(ModelSpec(name, "dm_to_galaxies", title, f"{_P}.{factory}", f"{_P}.{config}", desc, kind=kind,
                             needs_simulator=(name == "oracle")))


def exact(data: FieldData) -> FieldPosterior | None:
    """The simulator's exact answer for simulated fields, else None."""
    if not isinstance(data, FieldData) or data.sim_config is None:
        return None
    from core.tasks.dm_to_galaxies.baselines import OracleConfig, OracleModel

    return OracleModel(OracleConfig(), ("dm",), ("galaxies",)).posterior(data, n_samples=1)


if "dm_to_galaxies" not in TASKS:
    TASKS.register("dm_to_galaxies", SPEC)

TASK = Task(spec=SPEC, data=FieldDataAdapter(), defaults=TaskDefaults(draws=4, demo_size=64),
            bench=f"{_P}.bench:run", writer=write_fields, exact=exact)
