"""The contract every registered (task, model) keeps: build -> tiny fit -> posterior (shape, finite) -> save ->
load -> the same posterior. Parametrized over the registries, so a new task or model is covered by registering it
(its ``ModelSpec.smoke_config`` sets the seconds-long fit, ``TaskDefaults.smoke_size`` the data size)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from core import api
from core.inference.posterior import Posterior
from core.models import models_for_task
from core.tasks import TASKS

CASES = [
    pytest.param(t, s.name, id=f"{t}-{s.name}", marks=[pytest.mark.slow] if s.capabilities.slow else [])
    for t in TASKS.names()
    for s in models_for_task(t)
]  # slow (NUTS) models: with -m slow


@pytest.fixture(scope="module")
def smoke_data():
    """One small simulated set per task (train / test split by galaxy; maps with no unmasked pixel dropped)."""
    cache: dict = {}

    def get(task: str):
        if task not in cache:
            data = api.simulate(task, api.task_obj(task).defaults.smoke_size, seed=5)
            mask = getattr(data, "mask", None)
            if isinstance(mask, np.ndarray) and mask.ndim == 3:
                data = data.subset(np.flatnonzero(~mask.reshape(len(mask), -1).all(axis=1)))
            cache[task] = api.split(data, (0.67, 0.33), seed=0)
        return cache[task]

    return get


def test_every_task_has_models_a_view_and_defaults():
    from app_ui.views import VIEWS

    for name in TASKS.names():
        t = api.task_obj(name)
        assert t.spec.data_kind in VIEWS, name
        assert [s.name for s in models_for_task(name)], name
        assert set(t.spec.methods) == {s.name for s in models_for_task(name)}, name
        assert t.writer is not None and t.writer.formats and t.bench, name
        assert t.defaults.draws > 0 and t.defaults.interactive_draws in t.defaults.draw_choices, name


@pytest.mark.parametrize("task,model", CASES)
def test_fit_posterior_save_load_round_trip(task, model, smoke_data, tmp_path):
    import torch

    torch.set_num_threads(1)
    spec = api.task_obj(task).model(model)
    train, test = smoke_data(task)
    m = api.train(task, model, train, spec.smoke_config, val=test)
    assert m.task_name == task and m.name == model and m.features
    post = api.posterior(m, test, n_samples=8, seed=3)
    # a model infers the task's targets or a leading subset of them (photoz: flow/knn/lightgbm give p(z) only)
    targets = api.get_task(task).target_names
    assert m.targets and tuple(m.targets) == targets[: len(m.targets)], (m.targets, targets)
    _check_posterior(post, len(test), tuple(m.targets))

    path = api.save_checkpoint(m, tmp_path / f"{task}_{model}.gps")
    members = zipfile.ZipFile(path).namelist()
    assert "metadata.json" in members and not any(n.endswith((".pkl", ".pickle", ".pt")) for n in members)
    back = api.load_checkpoint(path, expected_task=task)
    assert (back.task_name, back.name, back.features, back.targets) == (task, model, m.features, m.targets)
    again = api.posterior(back, test, n_samples=8, seed=3)
    assert api.feature_importance(back) == api.feature_importance(m)
    if isinstance(post, Posterior):
        np.testing.assert_array_equal(again.valid, post.valid)
        np.testing.assert_allclose(again.mean()[post.valid], post.mean()[post.valid], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            again.quantiles([0.16, 0.84])[post.valid], post.quantiles([0.16, 0.84])[post.valid], rtol=1e-5, atol=1e-6
        )
    else:
        np.testing.assert_allclose(again.mean, post.mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(again.q84, post.q84, rtol=1e-5, atol=1e-6)


def _check_posterior(post, n: int, targets: tuple[str, ...]) -> None:
    if isinstance(post, Posterior):
        assert post.n == n and tuple(post.params) == targets and post.mean().shape == (n, len(targets))
        q = post.quantiles([0.16, 0.84])
        assert post.valid.any() and np.isfinite(post.mean()[post.valid]).all() and np.isfinite(q[post.valid]).all()
        assert (q[post.valid][:, 0] <= q[post.valid][:, 1] + 1e-9).all()
    else:  # a MapPosterior of the one target map
        assert post.n == n and post.target == targets[0] and post.mean.shape[0] == n
        on = ~post.mask
        assert on.any() and np.isfinite(post.mean[on]).all() and np.isfinite(post.std[on]).all()
        assert (post.q16[on] <= post.q84[on] + 1e-6).all()
