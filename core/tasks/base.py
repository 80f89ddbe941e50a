"""The shape of a task package: one :class:`Task` object per folder ``core/tasks/<name>/``.

A task package holds everything that is specific to one inference problem, so adding a task is one folder (plus,
for a new data kind, one view in the app). ``core/tasks/<name>/__init__.py`` builds its ``TASK`` and calls
:func:`register_task`; ``core.tasks`` imports every package listed in ``core.tasks.TASK_PACKAGES``.

A :class:`Task` holds:

* ``spec`` — :class:`core.tasks.TaskSpec`: inputs/targets as :class:`core.tasks.Quantity` (units, domains,
  definitions), ``data_kind`` (which app view shows it: "catalog", "maps", "multi_target_maps", "photometry",
  "field"), ``bin_target``.
* ``data`` — the data adapter: ``simulate(n, seed, config)``, ``read(path, **options)``, ``prepare(model, data)``
  (data as the model runs on it, or a GPSError naming what is missing), the container type and a ``unit`` word
  for messages ("galaxy", "map", "field").
* ``models`` — :class:`core.models.ModelSpec` registrations, first = default, each with capability flags
  (:class:`Capabilities`).
* ``defaults`` — :class:`TaskDefaults`: posterior draws and demo size, in ONE place.
* ``bench`` — ``"module:function"`` of the benchmark: ``run(quick, seed, device, methods) -> dict`` and a
  ``markdown(results) -> str`` beside it in the same module.
* ``writer`` — ``write(post, data, path, fmt, *, provenance, save_samples) -> None``: the result writer used by
  predict, the Export page and batch runs.
* ``exact`` — optional ``exact(data) -> posterior | None``: the simulator's Bayes-optimal answer when ``data`` were
  simulated with a known configuration (the yardstick), else None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Capabilities", "TaskDefaults", "Task"]


@dataclass(frozen=True)
class Capabilities:
    """What a registered model can do; the UI and api read these flags instead of probing the model object."""

    modes: tuple[str, ...] = ()          # inference modes (first = default), e.g. ("flow", "prior", "reconstruction")
    exact: bool = False                  # this *is* the simulator's exact posterior (needs simulated data)
    slow: bool = False                   # seconds per object or more (NUTS, diffusion sampling)
    needs_gpu: bool = False              # CPU works but is impractically slow at default sizes
    hmc_refine: bool = False             # supports per-object NUTS refinement
    posterior_predictive: bool = False   # has a generative likelihood for predictive checks
    feature_importance: bool = False     # exposes gain importance
    any_subset: bool = False             # accepts any subset of the inputs it was trained on


@dataclass(frozen=True)
class TaskDefaults:
    draws: int = 1000                    # posterior draws per object
    demo_size: int = 2000                # objects (galaxies / fields) in the bundled demo set
    demo_seed: int = 20261122


@dataclass(frozen=True)
class Task:
    spec: Any                            # core.tasks.TaskSpec
    data: Any                            # data adapter (simulate / read / prepare)
    defaults: TaskDefaults = field(default_factory=TaskDefaults)
    bench: str | None = None             # "module:function"
    writer: Callable[..., Any] | None = None
    exact: Callable[[Any], Any] | None = None

    @property
    def name(self) -> str:
        return self.spec.name
