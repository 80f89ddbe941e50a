"""A batch run in a background thread, for the app: start, poll the latest status, stop (keeps what finished)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from core.batch.config import BatchConfig

__all__ = ["BatchJob", "poll_job", "default_first"]


@dataclass
class BatchJob:
    """``BatchJob(config).start()``; read :func:`poll_job` while it runs; ``stop()`` asks it to stop."""

    config: BatchConfig
    status: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str = ""
    started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "BatchJob":
        self.started = time.time()
        self._thread = threading.Thread(target=self._main, name="gps-batch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    def _main(self) -> None:
        from core.batch.engine import run_batch
        from core.errors import GPSError

        try:
            self.summary = run_batch(self.config, progress=self._update, stop=self._stop,
                                     log=lambda s: self.status.update(message=s))
        except GPSError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - shown on the page, never a traceback
            self.error = f"{type(e).__name__}: {e}"

    def _update(self, status: dict[str, Any]) -> None:
        self.status = {**self.status, **status}


def poll_job(job: BatchJob | None) -> dict[str, Any]:
    """What the Batch page shows: ``state`` (idle | running | stopping | done | failed | stopped), parts done/total,
    rows/s, failures with their messages, the dashboard link, the output directory and the summary when finished."""
    if job is None:
        return {"state": "idle"}
    st = dict(job.status)
    out = {"state": "running", "done": st.get("done", 0), "total": st.get("total", 0), "failed": st.get("failed", 0),
           "rows": st.get("rows", 0), "rows_per_second": st.get("rows_per_second", 0.0),
           "errors": st.get("errors", []), "dashboard": st.get("dashboard", ""), "message": st.get("message", ""),
           "out": job.config.out, "seconds": round(time.time() - job.started, 1) if job.started else 0.0}
    if job._stop.is_set() and not job.finished:
        out["state"] = "stopping"
    if job.finished:
        if job.error:
            out.update(state="failed", error=job.error)
        elif job.summary is not None:
            s = job.summary
            out.update(state="stopped" if s["stopped"] else ("done" if s["ok"] else "failed"), summary=s,
                       done=s["done"], total=s["parts"], failed=s["failed"], rows=s["rows"],
                       rows_per_second=s["rows_per_second"], dashboard=s["dashboard"] or out["dashboard"],
                       errors=[f"{f['id']} ({f['path']}): {f['error']}" for f in s["failures"]])
    out["fraction"] = (out["done"] / out["total"]) if out["total"] else 0.0
    return out


def default_first(checkpoints: list[dict], task: str) -> list[dict]:
    """Bundled checkpoint entries (:func:`core.api.bundled_checkpoints`) ordered for a menu: ``task`` first, then
    the other tasks; within a task its default model first (the task's method order)."""
    from core.tasks import TASKS, get_task

    tasks = [task, *TASKS.names()]

    def key(b: dict) -> tuple:
        methods = get_task(b["task"]).methods
        return (tasks.index(b["task"]) if b["task"] in tasks else len(tasks),
                methods.index(b["model"]) if b["model"] in methods else len(methods), b["file"])

    return sorted(checkpoints, key=key)
