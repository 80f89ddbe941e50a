"""Per-tab session state of the app: current task, data, model and results; error display; read-only caches; the
per-session engine lanes; table frames.

Everything a user does lives in ``st.session_state`` (one per browser tab); the only process-wide objects are
read-only caches (the demo catalogue and bundled checkpoints, via ``st.cache_resource``) and a warm-up thread; heavy
torch/JAX/LightGBM work runs on the session's own engine lane (:func:`engine`, :mod:`app_ui.jobs`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
import streamlit as st

from core.errors import GPSError


def defaults(task: str):
    """The task's :class:`~core.tasks.base.TaskDefaults` (draws, demo size): the one place they are set."""
    from core import api

    return api.task_obj(task).defaults


# --------------------------------------------------------------------------------------------------- state
def ss() -> Any:
    return st.session_state


def app_tasks():
    """Tasks the app has a view for (:mod:`app_ui.views`), in registry order."""
    from app_ui.views import VIEWS
    from core import api

    return [t for t in api.list_tasks() if t.data_kind in VIEWS]


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
    for k in (
        "post",
        "post_key",
        "post_data",
        "galaxy",
        "hmc_result",
        "ppc_result",
        "eval",
        "methods",
        "train_note",
        "export_file",
    ):
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


def demo_count(spec) -> str:
    """The demo's size as the other pages count it: "12 galaxies x 3 projections = 36 objects" for map tasks."""
    n = defaults(spec.name).demo_size
    from core.data.simulators import get_simulator

    proj = getattr(get_simulator(spec.simulator).config_cls(), "n_proj", 1) if spec.simulator else 1
    return f"{n:,} galaxies" if proj == 1 else f"{n:,} galaxies x {proj} projections = {n * proj:,} objects"


def demo_seconds() -> str:
    """The demo banner's timing, as the user waits: from the click to the figure sent to the browser (measured
    when first called after the figure; the browser's drawing adds a fraction of a second), and the engine part."""
    if "demo_seconds" not in ss():
        ss()["demo_seconds"] = time.perf_counter() - ss().get("demo_click", time.perf_counter())
    return f"{ss()['demo_seconds']:.1f} s from the click (engine {ss().get('demo_engine_seconds', 0.0):.1f} s)"


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

    return _warm_lane().submit(api.load_bundled, task, model).result()


def pin_threads() -> None:
    """Pin torch's threads in a lane's worker (:func:`core.device.pin_threads`: ``GPS_THREADS``, else 1 on small
    machines); each session has its own lane, so sessions share the cores instead of fighting over them."""
    with contextlib.suppress(Exception):
        from core.device import pin_threads as pin

        pin()


def _new_lane(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=pin_threads)


def engine() -> ThreadPoolExecutor:
    """This session's engine lane: one long-lived worker thread that runs its torch/JAX/LightGBM work.

    Each browser session has its own lane, so one session's long job (a map posterior, a training run) never
    queues another session's demo. Long-lived workers (not the short-lived script threads) keep the native
    thread pools (OpenMP, XLA) from hanging; the lane's thread exits when the session's state is dropped."""
    lane = ss().get("_engine_lane")
    if lane is None:
        lane = ss()["_engine_lane"] = _new_lane("gps-lane")
    return lane


_WAITING: dict[int, int] = {}  # id(lane) -> short calls a user waits on (on_engine) in that lane
_WAITING_LOCK = threading.Lock()


def on_engine(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on this session's lane and wait for its result (short calls only, e.g. the demo posterior).
    While it runs, the background jobs of other sessions pause between their steps (:func:`yield_to_waiting`), so a
    user waiting on a click shares the cores with nobody's long job."""
    with user_waiting():
        return engine().submit(fn, *args, **kwargs).result()


@contextlib.contextmanager
def user_waiting():
    """Mark this session as waiting on a click (e.g. the whole "Load demo"): other sessions' jobs pause meanwhile."""
    key = id(engine())
    with _WAITING_LOCK:
        _WAITING[key] = _WAITING.get(key, 0) + 1
    try:
        yield
    finally:
        with _WAITING_LOCK:
            _WAITING[key] -= 1


def yield_to_waiting(own_lane: int, max_seconds: float = 20.0) -> None:
    """Pause (at a step boundary of a background job in lane ``own_lane``) while another session waits on a short
    call; never for its own lane's calls (they queue behind this job) and at most ``max_seconds``."""
    end = time.monotonic() + max_seconds
    while time.monotonic() < end and any(n > 0 for lane, n in list(_WAITING.items()) if lane != own_lane):
        time.sleep(0.05)


@st.cache_resource(show_spinner=False)
def _warm_lane() -> ThreadPoolExecutor:
    return _new_lane("gps-warm")


@st.cache_resource(show_spinner=False)
def warm_up(task: str) -> Future:
    """Import torch/JAX and compile the demo sampler in the background, once per server process (its own lane)."""

    def work() -> None:
        with contextlib.suppress(Exception):
            from core import api

            cat = api.demo_data(task).subset(slice(0, 1))
            m = api.load_bundled(task)
            api.posterior(m, cat, n_samples=defaults(task).demo_draws, seed=0)
            api.exact_posterior(cat)

    return _warm_lane().submit(work)


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
