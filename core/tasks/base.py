"""The shape of a task package: one :class:`Task` object per folder ``core/tasks/<name>/``.

A task package holds everything that is specific to one inference problem, so adding a task is one folder (plus,
for a new data kind, one view in the app). ``core/tasks/<name>/__init__.py`` builds its ``TASK`` and calls
:func:`register_task`; ``core.tasks`` imports every package listed in ``core.tasks.TASK_PACKAGES`` on first use.

A :class:`Task` holds:

* ``spec`` — :class:`TaskSpec`: inputs/targets as :class:`Quantity` (units, domains, definitions), ``data_kind``
  (which app view shows it: "catalog", "maps", "multi_target_maps", "photometry", "field"), ``bin_target``.
* ``data`` — the data adapter (:class:`DataAdapter`): ``simulate(n, seed, config, use_cache)``, ``read(path,
  **options)``, ``prepare(model, data)`` (data as the model runs on it, or a GPSError naming what is missing),
  ``save`` (write a simulated set to a file), the container type and a ``unit`` word for messages.
* ``models`` — :class:`core.models.ModelSpec` registrations, first = default, each with capability flags
  (:class:`Capabilities`). A package may also call ``core.models.register_model`` itself.
* ``defaults`` — :class:`TaskDefaults`: posterior draws and demo size, in ONE place.
* ``bench`` — module path of the benchmark: ``run(quick, seed, device, methods) -> dict`` and
  ``markdown(results) -> str`` in that module.
* ``writer`` — :class:`ResultWriter` (callable as ``write(post, data, path, fmt, *, provenance, save_samples)``):
  the result writer used by predict, the Export page and batch runs.
* ``exact`` — optional ``exact(data) -> posterior | None``: the simulator's Bayes-optimal answer when ``data`` were
  simulated with a known configuration (the yardstick), else None.

This module is light (dataclasses only): importing it never imports numpy, torch or jax.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

from core.registry import Registry

__all__ = [
    "Definition",
    "Quantity",
    "TaskSpec",
    "Capabilities",
    "TaskDefaults",
    "DataAdapter",
    "ResultWriter",
    "Task",
    "TASKS",
    "TASK_OBJECTS",
    "MODELS",
    "register_task",
    "register_model",
    "get_task",
    "get_task_obj",
    "get_model_spec",
    "models_for_task",
    "DATA_KINDS",
]

#: data kinds the app has a view for (``app_ui.views``); a task with a new kind brings one view module
DATA_KINDS = ("catalog", "maps", "multi_target_maps", "photometry", "field")


@dataclass(frozen=True)
class Definition:
    """What a quantity *means*, beyond its unit: the facts that make two columns with the same unit differ.

    Only the fields that apply are set (None = does not apply). Values are short phrases, e.g.
    ``band_system="SDSS ugriz, AB"``, ``frame="observed, z~0.05"`` or ``"rest"``, ``dust="included"`` or
    ``"none"``, ``aperture="Petrosian"`` / ``"total"`` / ``"2 R_half"``, ``gas_phase="HI"``, ``imf="Chabrier"``,
    ``weighting="mass-weighted"``, ``psf="convolved, FWHM 2.5 arcsec"``; ``note`` says where it comes from (the
    simulator that produces the training values). :func:`core.data.column_map.definition_conflict` refuses to
    auto-map a column whose name states another definition (Buser ``U``, ``_rest``, ``_nodust``, total gas ...).
    """

    band_system: str | None = None
    frame: str | None = None
    dust: str | None = None
    aperture: str | None = None
    gas_phase: str | None = None
    imf: str | None = None
    weighting: str | None = None
    psf: str | None = None
    note: str = ""

    def items(self) -> list[tuple[str, str]]:
        """``[(field, value)]`` of the fields that are set, in declaration order (``note`` last)."""
        names = ("band_system", "frame", "dust", "aperture", "gas_phase", "imf", "weighting", "psf", "note")
        return [(k, str(getattr(self, k))) for k in names if getattr(self, k)]

    def summary(self) -> str:
        """One line, e.g. ``"bands: SDSS ugriz, AB; frame: observed, z~0.05; dust: included"`` (no note)."""
        label = {"band_system": "bands", "gas_phase": "gas phase", "imf": "IMF"}
        return "; ".join(f"{label.get(k, k)}: {v}" for k, v in self.items() if k != "note")

    def short(self) -> str:
        """The gist in a few words, e.g. ``"SDSS u and g, AB; observed, z = 0.05; dust included"``."""
        out = []
        for k, v in self.items():
            if k == "note":
                continue
            v = v.split(" (")[0].split(":")[0].split(";")[0].split(", with")[0].strip()
            prefix = {"dust": "dust", "aperture": "aperture", "imf": "IMF", "psf": "PSF", "gas_phase": "gas"}.get(k)
            out.append(f"{prefix} {v}" if prefix and prefix.lower() not in v.lower() else v)
        return "; ".join(out)

    def to_dict(self) -> dict[str, str]:
        return dict(self.items())


@dataclass(frozen=True)
class Quantity:
    """One named input or target.

    ``unit`` is an astropy unit string; logarithmic quantities use ``dex(...)`` units, e.g. ``dex(solMass)``.
    ``domain`` is the range the default simulator covers (values outside are flagged, not refused).
    ``plausible`` is the range the quantity's definition allows (wider than ``domain``): values outside it are
    never used as numbers (sentinels -> missing, unit mistakes named, other rows refused; core.data.schema).
    ``definition`` (:class:`Definition`) says what the values mean beyond the unit (bands, frame, dust,
    aperture, gas phase, IMF, weighting), as the task's default simulator produces them.
    """

    name: str
    unit: str
    label: str
    description: str
    aliases: tuple[str, ...] = ()
    domain: tuple[float, float] | None = None
    kind: Literal["scalar", "map", "image"] = "scalar"
    plausible: tuple[float, float] | None = None
    definition: Definition | None = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    summary: str
    data_kind: Literal["catalog", "maps", "multi_target_maps", "photometry", "field"]
    inputs: tuple[Quantity, ...]
    targets: tuple[Quantity, ...]
    simulator: str
    models: tuple[str, ...]  # first = default
    baselines: tuple[str, ...] = ()
    bin_target: str | None = None  # metrics "per bin" of this target
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def input(self, name: str) -> Quantity:
        for q in self.inputs:
            if q.name == name:
                return q
        from core.errors import GPSError

        raise GPSError(
            f"task {self.name!r} has no input {name!r}", expected=", ".join(q.name for q in self.inputs), found=name
        )

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.inputs)

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.targets)

    @property
    def methods(self) -> tuple[str, ...]:
        return self.models + self.baselines


@dataclass(frozen=True)
class Capabilities:
    """What a registered model can do; the UI and api read these flags instead of probing the model object."""

    modes: tuple[str, ...] = ()  # inference modes (first = default), e.g. ("flow", "prior", "reconstruction")
    exact: bool = False  # this *is* the simulator's exact posterior (needs simulated data)
    slow: bool = False  # seconds per object or more (NUTS, diffusion sampling)
    needs_gpu: bool = False  # CPU works but is impractically slow at default sizes
    hmc_refine: bool = False  # supports per-object NUTS refinement (its posterior() is the NUTS run)
    posterior_predictive: bool = False  # has a generative likelihood for predictive checks
    feature_importance: bool = False  # exposes gain importance (``model.feature_importance(kind="gain")``)
    any_subset: bool = False  # accepts any subset of the inputs it was trained on
    truth_modes: tuple[str, ...] = ()  # inference modes that need the true target (e.g. "reconstruction")


@dataclass(frozen=True)
class TaskDefaults:
    draws: int = 1000  # posterior draws per object (CLI predict/evaluate/train, Evaluation page)
    interactive_draws: int = 1000  # default of the Posterior page's draws slider
    draw_choices: tuple[int, ...] = (200, 500, 1000, 2000, 4000)  # the Posterior page's slider
    demo_draws: int = 4000  # draws for the demo object (the warm-up compiles this shape)
    demo_size: int = 2000  # objects (galaxies / fields) in the bundled demo set
    demo_seed: int = 20261122
    smoke_size: int = 300  # objects simulated by the contract test (tiny fit, round trip)


@dataclass(frozen=True)
class DataAdapter:
    """How a task gets its data: simulate a labelled set, read a user's file, put data on a model's grid.

    ``simulate(n, seed, config, use_cache)``; ``read(path, **options)``; ``prepare(model, data)`` returns the data the
    model runs on (channels selected, regridded onto its grid) or raises GPSError naming what is missing;
    ``save(data, out_path) -> message`` writes a simulated set (``python -m core simulate``). ``table_input``: users
    bring tables whose columns are mapped onto the inputs (``read_table`` + ``table_to_catalog``, chunked predict).
    ``multi_file``: ``read`` also takes several files (a list, a folder or a glob) and combines the files of one object
    (e.g. a SAMI velocity and dispersion file); ``read_options``: keyword options ``read`` understands that the CLI
    and the app offer (e.g. ``reff_arcsec``).
    """

    container: str
    simulate: Callable[..., Any]
    read: Callable[..., Any]
    prepare: Callable[[Any, Any], Any]
    save: Callable[[Any, str], str]
    unit: str  # what one object is, for messages ("galaxy", "map", "map set")
    file_kinds: str  # the files ``read`` accepts, for the upload widget
    table_input: bool = False
    check_save: Callable[[str], None] | None = None  # raises GPSError early when ``save`` cannot write that path
    multi_file: bool = False
    read_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResultWriter:
    """Writes a posterior of ``data`` to ``path`` in ``fmt`` (one of ``formats``); samples in ``sample_formats``."""

    write: Callable[..., Any]
    formats: tuple[str, ...] = ("csv", "fits", "hdf5")
    sample_formats: tuple[str, ...] = ("fits", "hdf5")
    summary: Callable[[Any], dict] | None = None  # JSON-ready summary of a posterior for the CLI
    what: str = "tables (CSV, FITS or HDF5)"  # what the outputs are, for messages

    def __call__(self, post, data, path, fmt: str, *, provenance: dict, save_samples: bool = False, **kw) -> Any:
        return self.write(post, data, path, fmt, provenance=provenance, save_samples=save_samples, **kw)


@dataclass(frozen=True)
class Task:
    spec: Any  # TaskSpec
    data: Any  # DataAdapter
    defaults: TaskDefaults = field(default_factory=TaskDefaults)
    bench: str | None = None  # module with run() and markdown()
    writer: Callable[..., Any] | None = None
    exact: Callable[[Any], Any] | None = None
    models: tuple = ()  # core.models.ModelSpec registrations (first = default)

    @property
    def name(self) -> str:
        return self.spec.name

    def model(self, name: str):
        """The :class:`core.models.ModelSpec` of ``name`` for this task."""
        return get_model_spec(self.name, name)

    def capabilities(self, name: str) -> Capabilities:
        return self.model(name).capabilities


def _load_packages() -> None:
    """Import every package of ``core.tasks.TASK_PACKAGES`` (each registers its Task on import)."""
    from core.tasks import TASK_PACKAGES

    for name in TASK_PACKAGES:
        importlib.import_module(f"core.tasks.{name}")


TASKS: Registry[TaskSpec] = Registry("task", loader=_load_packages)
TASK_OBJECTS: Registry[Task] = Registry("task", loader=lambda: TASKS.names() and None)
#: ``"task/model"`` -> :class:`core.models.ModelSpec` (filled by the task packages; re-exported by core.models)
MODELS: Registry[Any] = Registry("model", loader=lambda: TASKS.names() and None)


def register_task(task: Task) -> Task:
    """Register ``task`` (its spec in :data:`TASKS`, the object in :data:`TASK_OBJECTS`, its model specs).

    A ``data`` adapter that is not a :class:`DataAdapter` (any object with ``simulate``, ``read``, ``prepare``) and
    a ``writer`` that is a plain function are wrapped into the full shapes here, once, so callers never probe."""
    if not isinstance(task.data, DataAdapter):
        task = replace(task, data=_as_adapter(task.data))
    if task.writer is not None and not isinstance(task.writer, ResultWriter):
        task = replace(task, writer=ResultWriter(task.writer))
    TASKS.register(task.name, task.spec)
    TASK_OBJECTS.register(task.name, task)
    for spec in task.models:
        register_model(spec)
    return task


def get_task(name: str) -> TaskSpec:
    return TASKS.get(name)


def get_task_obj(name: str) -> Task:
    return TASK_OBJECTS.get(name)


def register_model(spec):
    """Register a :class:`core.models.ModelSpec` under ``"<task>/<name>"``."""
    return MODELS.register(f"{spec.task}/{spec.name}", spec)


def get_model_spec(task: str, name: str):
    """The :class:`core.models.ModelSpec` of model ``name`` of ``task`` (a GPSError lists the known ones)."""
    key = f"{task}/{name}"
    if key not in MODELS:
        from core.errors import GPSError

        known = [k.split("/", 1)[1] for k in MODELS.names() if k.startswith(task + "/")]
        raise GPSError(f"unknown model {name!r} for task {task!r}", expected=" | ".join(known), found=name)
    return MODELS.get(key)


def models_for_task(task: str) -> list:
    """The model specs registered for ``task``, in registration order."""
    return [s for k, s in MODELS.items() if k.startswith(task + "/")]


def _as_adapter(obj) -> DataAdapter:
    """A :class:`DataAdapter` from an adapter-like object (``simulate(n, seed, config)`` may lack ``use_cache``)."""
    sim = obj.simulate
    if "use_cache" not in inspect.signature(sim).parameters:

        def simulate(n, seed, config, use_cache=True, _sim=sim):
            return _sim(n, seed, config)
    else:
        simulate = sim

    def no_save(data, out_path):
        from core.errors import GPSError

        raise GPSError("this task has no file format for simulated sets", field="--out", found=str(out_path))

    return DataAdapter(
        container=getattr(obj, "container", type(obj).__name__),
        simulate=simulate,
        read=obj.read,
        prepare=obj.prepare,
        save=getattr(obj, "save", None) or no_save,
        unit=getattr(obj, "unit", "object"),
        file_kinds=getattr(obj, "file_kinds", "files"),
        table_input=bool(getattr(obj, "table_input", False)),
        check_save=getattr(obj, "check_save", None),
    )
