"""Background jobs for the pages: long work runs on the session's engine lane (:func:`app_ui.state.engine`); the
page polls the :class:`Job` with ``st.fragment(run_every=...)``; a Stop button sets the job's ``threading.Event``.

A job belongs to the page that started it: when the user goes to another page, :func:`leave_pages` cancels the
page's cancellable jobs (their next progress report raises :class:`JobCancelled` and the job is dropped, so the
page starts it afresh when the user comes back) and leaves the others (training) running, detached. A job may
publish a ``partial`` result (e.g. the first object's posterior) that the page shows while the rest runs."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable

import streamlit as st

from app_ui.state import engine, ss, yield_to_waiting
from core.errors import GPSError

POLL_SECONDS = 0.5


class JobCancelled(Exception):
    """Raised inside a job's work by :meth:`Job.progress` once the job was cancelled."""


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
    page: str = ""
    cancel_on_leave: bool = True
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)
    partial: Any = None
    partial_shown: bool = False
    lane: int = 0

    def progress(self, done: int, total: int) -> None:
        """A step done: cancelled jobs stop here, and the job pauses while another session waits on a click."""
        if self.cancelled.is_set():
            raise JobCancelled(self.label)
        self.done, self.total = int(done), int(total)
        yield_to_waiting(self.lane)

    def epoch(self, report) -> None:
        self.reports.append(dataclasses.asdict(report))
        self.progress(report.epoch + 1, report.epochs)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


def start_job(key: str, label: str, fn: Callable[[Job], Any], cancel_on_leave: bool = True) -> Job:
    """Queue ``fn(job)`` on this session's engine lane; the job is stored in this tab's session state under ``key``.
    ``cancel_on_leave``: cancel it when the user leaves the page that started it (else it runs on, detached)."""
    job = Job(
        label,
        message="queued behind this session's other work",
        page=ss().get("_page", ""),
        cancel_on_leave=cancel_on_leave,
    )
    jobs = ss().setdefault("jobs", {})

    def run() -> None:
        if job.cancelled.is_set():  # cancelled while queued (already dropped from the state)
            return
        job.message = ""
        job.started = time.perf_counter()
        try:
            job.result = fn(job)
        except JobCancelled:
            if jobs.get(key) is job:
                jobs.pop(key, None)
        except GPSError as e:
            job.error = str(e)
        except Exception as e:  # noqa: BLE001
            job.error = f"unexpected {type(e).__name__}: {e}"
        finally:
            job.seconds = time.perf_counter() - job.started
            job.finished = True

    jobs[key] = job
    lane = engine()
    job.lane = id(lane)
    lane.submit(run)
    return job


def leave_pages(page: str) -> None:
    """Cancel the unfinished cancellable jobs started by pages other than ``page`` (the one now shown)."""
    ss()["_page"] = page
    for key, j in list(ss().get("jobs", {}).items()):
        if not j.finished and j.cancel_on_leave and j.page and j.page != page:
            j.cancelled.set()
            ss()["jobs"].pop(key, None)


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


def job_panel(
    key: str, live: Callable[[Job], None] | None = None, stoppable: bool = True, every: float = POLL_SECONDS
) -> None:
    """Progress bar, live content and a Stop button for a running job, refreshed every ``every`` seconds without
    blocking the page; the whole page reruns when the job finishes or publishes its partial result."""

    @st.fragment(run_every=every)
    def panel() -> None:
        j = job(key)
        if j is None:
            return
        if j.finished or (j.partial is not None and not j.partial_shown):
            j.partial_shown = j.partial is not None
            st.rerun(scope="app")
        elapsed = time.perf_counter() - j.started
        text = f"{j.label} — {j.done}/{j.total}" if j.total else f"{j.label} …"
        st.progress(j.fraction, text=f"{text} ({elapsed:.0f} s)")
        if live is not None:
            live(j)
        if stoppable and st.button("Stop", key=f"stop-{key}", icon=":material/stop_circle:", disabled=j.stop.is_set()):
            j.stop.set()
            j.message = "stopping after this step (best weights are kept)"
        if j.message:
            st.caption(j.message)

    panel()


def watch(key: str, **panel) -> bool:
    """For pages that take a job's result before starting it: the job's panel while it runs, and a rerun when it
    has already finished (a job that fails at once, e.g. a file lacking the model's channels, shows its message
    straight away instead of leaving the page blank). True while the job runs."""
    j = job(key)
    if j is None:
        return False
    if j.finished:
        st.rerun()
    job_panel(key, **panel)
    return True


def keyed_job(name: str, key: tuple, label: str, work: Callable[[Job], dict]) -> dict | None:
    """The result dict of ``work(job)`` (which must carry ``"key": key``) computed once per ``key`` as a background
    job stored under ``name``; None while it runs. A failure stays on screen until ``key`` changes."""
    done = take_result(name)
    if done is not None:
        ss()[name] = {"key": key, "failed": True, "error": done.error} if done.error else done.result
    if (ss().get(name) or {}).get("key") != key and not running(name):
        start_job(name, label, work)
    watch(name, stoppable=False)
    res = ss().get(name) or {}
    if res.get("key") != key:
        return None
    if res.get("failed"):
        st.error(f"{label} failed: {res['error']}", icon=":material/error:")
        return None
    return res


def compare_methods(task, cat, ev, current, j: Job) -> dict:
    """Every method of ``task`` scored on the same galaxies (core.compare.compare_methods) as a background job."""
    from core.compare import compare_methods as compare

    def progress(k: int, n: int, message: str = "") -> None:
        j.progress(k, n)
        j.message = message

    return compare(task.name, cat, ev, current, progress=progress, stop=j.stop)
