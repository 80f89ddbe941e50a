"""Streamlit-only helpers for the pages: per-tab session state, error display, config forms, background jobs.

Everything a user does lives in ``st.session_state`` (one per browser tab); the only process-wide objects are
read-only caches (the demo catalogue and bundled checkpoints, via ``st.cache_resource``). Long work runs on one
background engine thread (:class:`Job`) that the page polls with ``st.fragment(run_every=...)``; a Stop button sets the
job's ``threading.Event``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
import streamlit as st

from core.config import Config, field_specs
from core.errors import GPSError

DEMO_SAMPLES = 4000          # draws for the demo galaxy (fixed: the warm-up compiles this shape)
DEMO_MAP_SAMPLES = 50        # posterior maps drawn for the demo object of the ex-situ map task


def demo_samples(task: str) -> int:
    """Posterior draws for the demo object of ``task`` (the warm-up compiles exactly this shape)."""
    return DEMO_MAP_SAMPLES if task == "exsitu_map" else DEMO_SAMPLES
POLL_SECONDS = 0.5


# --------------------------------------------------------------------------------------------------- state
def ss() -> Any:
    return st.session_state


#: Data kinds the pages handle (catalogue tables here; IFU maps through ui_maps).
APP_DATA_KINDS = ("catalog", "maps")


def app_tasks():
    """Tasks the app's pages support, in registry order."""
    from core import api

    return [t for t in api.list_tasks() if t.data_kind in APP_DATA_KINDS]


def task_name() -> str:
    if "task" not in ss():
        ss()["task"] = app_tasks()[0].name
    return ss()["task"]


def task():
    from core.tasks import get_task

    return get_task(task_name())


def data():
    return ss().get("data")


def model():
    return ss().get("model")


def set_data(cat, label: str, report=None) -> None:
    """Make ``cat`` the current catalogue; results that depended on the old one are dropped."""
    ss()["data"], ss()["data_label"], ss()["report"] = cat, label, report
    ss()["data_version"] = ss().get("data_version", 0) + 1
    _clear_results()


def set_model(m, label: str, trained_on: str | None = None) -> None:
    """Make ``m`` the current model (``trained_on``: fingerprint of the catalogue it was trained on here)."""
    ss()["model"], ss()["model_label"], ss()["model_trained_on"] = m, label, trained_on
    ss()["model_version"] = ss().get("model_version", 0) + 1
    ss().pop("ckpt_bytes", None)
    _clear_results()


def _clear_results() -> None:
    for k in ("post", "post_key", "galaxy", "hmc_result", "ppc_result", "eval", "methods", "train_note", "export_file"):
        ss().pop(k, None)


def results_key() -> tuple:
    return (ss().get("data_version", 0), ss().get("model_version", 0))


def eval_data():
    """The catalogue to score on: the held-out test part when the model was trained here on these data."""
    cat, m = data(), model()
    if cat is None:
        return None
    if m is not None and ss().get("model_trained_on") == cat.fingerprint() and ss().get("test_index") is not None:
        return cat.subset(ss()["test_index"])
    return cat


def register_figure(name: str, fig) -> None:
    """Remember the latest version of a figure so the Export page can offer it as HTML."""
    ss().setdefault("figures", {})[name] = fig


def show_figure(fig, name: str, key: str | None = None) -> None:
    register_figure(name, fig)
    st.plotly_chart(fig, key=key or f"fig-{name}", width="stretch")


# --------------------------------------------------------------------------------------------------- errors
@contextlib.contextmanager
def guard(what: str = ""):
    """Show any error raised inside the block as a clear message box, never a traceback."""
    try:
        yield
    except GPSError as e:
        st.error(f"{what + ': ' if what else ''}{e}", icon=":material/error:")
    except Exception as e:  # noqa: BLE001 - the UI must never show a traceback
        st.error(f"{what + ': ' if what else ''}unexpected {type(e).__name__}: {e}", icon=":material/error:")
        with st.expander("Details for a bug report"):
            st.code("".join(traceback.format_exception_only(type(e), e)).strip())


def need(value, message: str, page: str | None = None) -> bool:
    """Show an info box (with a link to ``page``) and return False when ``value`` is missing."""
    if value is None:
        st.info(message, icon=":material/info:")
        if page:
            st.page_link(page, label=f"Go to {page.split('/')[-1].split('_', 1)[-1].removesuffix('.py')}")
        return False
    return True


# --------------------------------------------------------------------------------------------------- caches
@st.cache_resource(show_spinner=False)
def demo_data(task: str):
    """The bundled demo catalogue (read-only, shared by all sessions)."""
    from core import api

    return api.demo_data(task)


@st.cache_resource(show_spinner=False)
def bundled_model(task: str, model: str | None = None):
    """A bundled checkpoint loaded once per process (read-only: pages never mutate models)."""
    from core import api

    return on_engine(api.load_bundled, task, model)


@st.cache_resource(show_spinner=False)
def engine() -> ThreadPoolExecutor:
    """The one thread that runs torch/JAX/LightGBM work in this server process.

    Their native thread pools (OpenMP, XLA) hung in tests when entered from many short-lived script threads, so all
    heavy calls are queued here; pages stay responsive because they only poll the queued :class:`Job`.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="gps-engine")


def on_engine(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on the engine thread and wait for its result (short calls only, e.g. the demo posterior)."""
    return engine().submit(fn, *args, **kwargs).result()


@st.cache_resource(show_spinner=False)
def warm_up(task: str) -> Future:
    """Import torch/JAX and compile the demo sampler in the background, once per server process."""

    def work() -> None:
        with contextlib.suppress(Exception):
            from core import api

            cat = api.demo_data(task).subset(slice(0, 1))
            m = api.load_bundled(task)
            api.posterior(m, cat, n_samples=demo_samples(task), seed=0)
            api.exact_posterior(cat)

    return engine().submit(work)


# --------------------------------------------------------------------------------------------------- forms
def config_form(cls: type[Config], key: str, values: dict | None = None, *, show_advanced: bool = False) -> dict:
    """Widgets for every field of ``cls`` (help texts, bounds); returns the values as a dict for ``from_dict``.

    Nested configs become expanders; tuple fields are comma-separated text; advanced fields are shown only when
    ``show_advanced``.
    """
    values = dict(values or {})
    out: dict[str, Any] = {}
    for f in field_specs(cls):
        default = values.get(f.name, f.default)
        k = f"{key}.{f.name}"
        if f.advanced and not show_advanced:
            continue
        if f.kind == "config":
            sub_cls = type(f.default) if isinstance(f.default, Config) else _hint(cls, f.name)
            dv = default.to_dict() if isinstance(default, Config) else dict(default or {})
            with st.expander(f"{f.name}: {f.help or sub_cls.__name__}"):
                out[f.name] = config_form(sub_cls, k, dv, show_advanced=show_advanced)
        elif f.kind == "choice":
            opts = list(f.choices)
            out[f.name] = st.selectbox(f.name, opts, index=opts.index(default) if default in opts else 0,
                                       help=f.help, key=k)
        elif f.kind == "bool":
            out[f.name] = st.checkbox(f.name, value=bool(default), help=f.help, key=k)
        elif f.kind in ("int", "float"):
            cast = int if f.kind == "int" else float
            lo = None if f.min is None else cast(f.min)
            hi = None if f.max is None else cast(f.max)
            step = cast(f.step) if f.step else (1 if f.kind == "int" else None)
            fmt = None if f.kind == "int" else "%g"
            out[f.name] = st.number_input(f.name, min_value=lo, max_value=hi, value=cast(default), step=step,
                                          help=f.help, key=k, format=fmt)
        elif f.kind == "tuple":
            text = st.text_input(f.name, value=", ".join(map(str, default or ())),
                                 help=(f.help + " (comma-separated)").strip(), key=k)
            out[f.name] = _parse_tuple(text, default)
        else:
            out[f.name] = st.text_input(f.name, value="" if default is None else str(default), help=f.help, key=k)
    for name, v in values.items():   # keep values of hidden (advanced) fields
        out.setdefault(name, v)
    return out


def _hint(cls: type, name: str):
    import sys
    import typing

    return typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))[name]


def _parse_tuple(text: str, default) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    kind = type(default[0]) if default else str
    out = []
    for t in items:
        if kind in (int, float):
            try:
                out.append(kind(float(t)) if kind is int else float(t))
            except ValueError:
                raise GPSError("not a number in a list setting", expected="comma-separated numbers",
                               found=t) from None
        else:
            out.append(t)
    return out


# --------------------------------------------------------------------------------------------------- jobs
@dataclasses.dataclass
class Job:
    """Work running in a background thread: progress, epoch reports, result or error, and a stop event."""

    label: str
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    message: str = ""
    reports: list = dataclasses.field(default_factory=list)
    result: Any = None
    error: str | None = None
    finished: bool = False
    started: float = dataclasses.field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = int(done), int(total)

    def epoch(self, report) -> None:
        self.reports.append(dataclasses.asdict(report))
        self.progress(report.epoch + 1, report.epochs)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


def start_job(key: str, label: str, fn: Callable[[Job], Any]) -> Job:
    """Queue ``fn(job)`` on the engine thread; the job is stored in this tab's session state under ``key``."""
    job = Job(label, message="queued behind other work in this server")

    def run() -> None:
        job.message = ""
        job.started = time.perf_counter()
        try:
            job.result = fn(job)
        except GPSError as e:
            job.error = str(e)
        except Exception as e:  # noqa: BLE001
            job.error = f"unexpected {type(e).__name__}: {e}"
        finally:
            job.seconds = time.perf_counter() - job.started
            job.finished = True

    ss().setdefault("jobs", {})[key] = job
    engine().submit(run)
    return job


def job(key: str) -> Job | None:
    return ss().get("jobs", {}).get(key)


def running(key: str) -> bool:
    j = job(key)
    return j is not None and not j.finished


def take_result(key: str) -> Job | None:
    """The finished job under ``key`` (removed from the state), or None while it runs / when there is none."""
    j = job(key)
    if j is None or not j.finished:
        return None
    ss()["jobs"].pop(key)
    return j


def job_panel(key: str, live: Callable[[Job], None] | None = None, stoppable: bool = True) -> None:
    """Progress bar, live content and a Stop button for a running job, refreshed without blocking the page."""

    @st.fragment(run_every=POLL_SECONDS)
    def panel() -> None:
        j = job(key)
        if j is None:
            return
        if j.finished:
            st.rerun(scope="app")
        elapsed = time.perf_counter() - j.started
        text = f"{j.label} — {j.done}/{j.total}" if j.total else f"{j.label} …"
        st.progress(j.fraction, text=f"{text} ({elapsed:.0f} s)")
        if live is not None:
            live(j)
        if stoppable and st.button("Stop", key=f"stop-{key}", icon=":material/stop_circle:",
                                   disabled=j.stop.is_set()):
            j.stop.set()
            j.message = "stopping after this step (best weights are kept)"
        if j.message:
            st.caption(j.message)

    panel()


def keyed_job(name: str, key: tuple, label: str, work: Callable[[Job], dict]) -> dict | None:
    """The result dict of ``work(job)`` (which must carry ``"key": key``) computed once per ``key`` as a background
    job stored under ``name``; None while it runs. A failure stays on screen until ``key`` changes."""
    done = take_result(name)
    if done is not None:
        ss()[name] = {"key": key, "failed": True, "error": done.error} if done.error else done.result
    if (ss().get(name) or {}).get("key") != key and not running(name):
        start_job(name, label, work)
    if running(name):
        job_panel(name, stoppable=False)
    res = ss().get(name) or {}
    if res.get("key") != key:
        return None
    if res.get("failed"):
        st.error(f"{label} failed: {res['error']}", icon=":material/error:")
        return None
    return res


def simulate_tab(spec, prefix: str, n_label: str, default_n: int, max_n: int, step: int) -> None:
    """Simulator description, size, seed and settings form, and a Simulate button that runs in the background and
    makes the result the current data."""
    from core.data.simulators import SIMULATORS

    sim = SIMULATORS.get(spec.simulator)
    st.caption(sim.description)
    c1, c2 = st.columns(2)
    n = c1.number_input(n_label, 1, max_n, default_n, step=step, key=f"{prefix}_n")
    seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key=f"{prefix}_seed")
    adv = st.toggle("Show advanced simulator settings", key=f"{prefix}_adv")
    with st.expander("Simulator settings", expanded=False):
        values = config_form(sim.config_cls, prefix, show_advanced=adv)
    if st.button("Simulate", type="primary", key="simulate", disabled=running("simulate")):
        from core import api

        cfg = sim.config_cls.from_dict(values)
        start_job("simulate", f"Simulating {int(n):,} galaxies",
                  lambda j: api.simulate(spec.name, int(n), int(seed), cfg))
    if running("simulate"):
        job_panel("simulate", stoppable=False)
    done = take_result("simulate")
    if done is not None:
        if done.error:
            st.error(done.error)
        else:
            set_data(done.result, f"simulated ({int(n):,} galaxies, seed {int(seed)})")
            st.rerun()


# --------------------------------------------------------------------------------------------------- tables
def frame(columns: dict[str, np.ndarray]):
    import pandas as pd

    return pd.DataFrame({k: np.asarray(v) for k, v in columns.items()})


def rows_frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


def catalog_frame(cat, rows: int | None = None):
    """Preview DataFrame of a catalogue: id, features, targets (canonical units in the column names)."""
    sl = slice(None) if rows is None else slice(0, rows)
    cols: dict[str, Any] = {"id": cat.ids[sl]}
    for j, f in enumerate(cat.features):
        cols[_with_unit(f, cat.units.get(f, ""))] = cat.x[sl, j]
    if cat.y is not None:
        for j, t in enumerate(cat.targets):
            cols[_with_unit(t, cat.units.get(t, "")) + " (truth)"] = cat.y[sl, j]
    return frame(cols)


def _with_unit(name: str, unit: str) -> str:
    return f"{name} [{unit}]" if unit else name


def model_card(card: dict) -> None:
    """Render a checkpoint's metadata: what it is, the data it was trained on, its metrics and settings."""
    c1, c2, c3 = st.columns(3)
    c1.metric("model", str(card.get("model", "?")))
    c2.metric("task", str(card.get("task", "?")))
    c3.metric("created", str(card.get("created", "—"))[:10])
    st.write("**Inputs:** " + ", ".join(card.get("features", [])) + " → **targets:** "
             + ", ".join(card.get("targets", [])))
    prov = card.get("provenance") or {}
    if prov:
        src = prov.get("source", "?")
        extra = f"simulator `{prov.get('simulator')}`, seed {prov.get('seed')}" if src == "simulator" else \
            prov.get("file", prov.get("source_file", ""))
        st.write(f"**Training data:** {src} — {extra}; {prov.get('n_objects', '?')} objects, "
                 f"fingerprint `{prov.get('fingerprint', '—')}`")
    metrics = card.get("test_metrics") or {}
    if metrics:
        st.write("**Test metrics**")
        flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        st.dataframe(frame({"metric": list(flat), "value": [str(v) for v in flat.values()]}), hide_index=True)
    if card.get("notes"):
        st.write("**Notes / reproduce:**")
        st.code(str(card["notes"]), language="bash")
    with st.expander("Full settings and history"):
        st.json({k: card.get(k) for k in ("config", "units", "device", "versions", "package_version",
                                           "format_version") if k in card}, expanded=False)
        hist = card.get("history") or {}
        if isinstance(hist, dict) and hist.get("epochs"):
            from core.viz.training import loss_curves_figure

            st.plotly_chart(loss_curves_figure(hist["epochs"], best_epoch=hist.get("best_epoch")),
                            key=f"card-loss-{card.get('weights_sha256', '')[:8]}")


# --------------------------------------------------------------------------------------------------- comparison
def compare_methods(task, cat, ev, current, j: Job) -> dict:
    """Every method of ``task`` scored on the same galaxies (core.api.compare_methods) as a background job."""
    from core import api

    def progress(k: int, n: int, message: str = "") -> None:
        j.progress(k, n)
        j.message = message

    return api.compare_methods(task.name, cat, ev, current, progress=progress, stop=j.stop)
