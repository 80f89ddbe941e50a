"""Simulator registry: name -> SimulatorSpec (task, config class, simulate function, exact posterior factory).

``SIMULATORS.get("catalog").simulate(n, seed, config)`` returns a :class:`~core.data.catalog.CatalogData`;
``exact_posterior_factory(config, features)`` (None where no exact posterior exists) returns an object with
``posterior(x) -> Posterior``. Simulator modules are imported lazily (the spec's callables import on use).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from core.registry import Registry

__all__ = ["SimulatorSpec", "SIMULATORS", "get_simulator", "exact_posterior"]


@dataclass(frozen=True)
class SimulatorSpec:
    """A registered simulator. ``config_cls`` is the frozen :class:`core.config.Config` subclass of its settings."""

    name: str
    task: str
    config_cls: type
    simulate: Callable[..., Any]                       # simulate(n, seed=0, config=None)
    exact_posterior_factory: Callable[..., Any] | None  # factory(config=None, features=None) -> .posterior(x)
    description: str
    prior_correction: Callable[..., Any] | None = None  # prior_correction(config) -> dict | None (see below)


SIMULATORS: Registry[SimulatorSpec] = Registry("simulator")


def get_simulator(name: str) -> SimulatorSpec:
    return SIMULATORS.get(name)


def _simulated_by(data, hook: str):
    """(spec, config) of the registered simulator that made ``data`` when it has the ``hook``, else None."""
    meta = getattr(data, "meta", None) or {}
    if meta.get("source") != "simulator" or meta.get("simulator") not in SIMULATORS:
        return None
    spec = SIMULATORS.get(meta["simulator"])
    if getattr(spec, hook) is None:
        return None
    return spec, spec.config_cls.from_dict(meta.get("config", {}))


def exact_posterior(data):
    """The exact posterior of ``data`` when they were simulated by a simulator that has one, else None."""
    found = _simulated_by(data, "exact_posterior_factory")
    return None if found is None else found[0].exact_posterior_factory(found[1], data.features).posterior(data.x)


def prior_correction(data) -> dict | None:
    """How to turn a posterior learned on ``data`` into one under the simulator's physical prior, when ``data`` were
    drawn from a proposal (e.g. flat in log Mh, so that every mass is trained on): ``{"target": name, "grid": (g,),
    "log_ratio": (g,) log p_physical - log p_proposal on the grid, "physical": simulator overrides that give the
    physical prior}``; the grid spans the physical prior's support (a proposal may reach beyond it: the reweighting
    cuts there). None when ``data`` follow the physical prior or are not simulated."""
    found = _simulated_by(data, "prior_correction")
    return None if found is None else found[0].prior_correction(found[1])


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = attr
    call.__qualname__ = f"{module}.{attr}"
    call.__doc__ = f"Lazy wrapper around {module}.{attr}."
    return call


def _register_catalog() -> None:
    from core.data.simulators.catalog import CatalogSimConfig  # light: numpy + physics (scipy/colossus lazily)

    SIMULATORS.register("catalog", SimulatorSpec(
        name="catalog", task="halo_mass", config_cls=CatalogSimConfig,
        simulate=_lazy("core.data.simulators.catalog", "simulate_catalog"),
        exact_posterior_factory=_lazy("core.data.simulators.catalog_posterior", "exact_posterior_factory"),
        prior_correction=_lazy("core.data.simulators.catalog", "prior_correction"),
        description="Central galaxies from a Tinker08 halo mass function, an SHMR with scatter, quenching, "
                    "Speagle main sequence, bagpipes SPS colours, Petrosian concentration and xGASS gas "
                    "fractions, with an exact quadrature posterior of log M200c (simulators.md section 1)."))


_register_catalog()


def _register_ifu() -> None:
    from core.data.simulators.ifu_config import IFUSimConfig  # light: dataclass only

    SIMULATORS.register("ifu", SimulatorSpec(
        name="ifu", task="exsitu_map", config_cls=IFUSimConfig,
        simulate=_lazy("core.data.simulators.ifu", "simulate_ifu"),
        exact_posterior_factory=None,   # exact posteriors only in reference mode: ifu_reference.reference_grid
        description="MaNGA-like IFU maps (Sigma*, v, sigma, age, [Z/H], mu_r, g-r) of disk + bulge + ex-situ "
                    "galaxies in NFW haloes with Jeans kinematics, PSF, hexagonal bundles, noise and masks; "
                    "targets: intrinsic ex-situ fraction maps and central masses (simulators.md section 2). "
                    "simulate_central gives the r-band image + 48x48 kinematic maps of the same galaxies."))


_register_ifu()
