"""Engine lanes and jobs: a session's lane pins torch threads; leaving a page cancels its jobs (training runs on)."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("streamlit")
from app_ui import jobs, state  # noqa: E402


@pytest.fixture
def session(monkeypatch):
    store: dict = {"_page": "posterior"}
    monkeypatch.setattr(jobs, "ss", lambda: store)
    monkeypatch.setattr(state, "ss", lambda: store)
    yield store
    if "_engine_lane" in store:
        store["_engine_lane"].shutdown(wait=True)


def test_leaving_a_page_cancels_its_jobs_and_detaches_training(session):
    gate = threading.Event()
    seen = []

    def work(j):
        gate.wait(10)
        for k in range(3):
            j.progress(k, 3)
            seen.append(k)
        return "done"

    post = jobs.start_job("post", "posteriors", work)
    train = jobs.start_job("train", "training", lambda j: "trained", cancel_on_leave=False)
    jobs.leave_pages("home")
    assert "post" not in session["jobs"] and post.cancelled.is_set()  # dropped: the page restarts it on return
    assert session["jobs"]["train"] is train and not train.cancelled.is_set()
    gate.set()
    session["_engine_lane"].submit(lambda: None).result(10)  # the lane has run both jobs
    assert seen == [] and post.result is None and train.result == "trained"


def test_each_session_has_its_own_lane_with_pinned_threads(session, monkeypatch):
    import torch

    monkeypatch.setenv("GPS_THREADS", "1")
    lane = state.engine()
    assert state.engine() is lane
    assert lane.submit(torch.get_num_threads).result(30) == 1
    other: dict = {}
    monkeypatch.setattr(state, "ss", lambda: other)
    assert state.engine() is not lane
    other["_engine_lane"].shutdown(wait=True)


def test_jobs_pause_while_another_session_waits_on_a_click(monkeypatch):
    import time

    monkeypatch.setattr(state, "_WAITING", {1: 1})  # session lane 1 waits on a click
    t0 = time.monotonic()
    state.yield_to_waiting(own_lane=1, max_seconds=0.5)  # its own calls queue behind its jobs: no pause
    assert time.monotonic() - t0 < 0.1
    state.yield_to_waiting(own_lane=2, max_seconds=0.3)  # another session's job pauses (bounded)
    assert time.monotonic() - t0 >= 0.3
