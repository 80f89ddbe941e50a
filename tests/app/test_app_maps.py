"""AppTest flows of the map tasks: demo, Posterior, Evaluation, Data for exsitu_map and central_mass; real files."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import api  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
# trimmed copies of the real files (provenance in tests/data/README.md): a fresh clone runs these tests too
CALIFA = ROOT / "tests" / "data" / "NGC4047_cut.pipe3d.hdf5"
DAP = ROOT / "tests" / "data" / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.cut.fits.gz"
TINY = {
    ("exsitu_map", "cvae_flow"): {"widths": [4, 8, 16, 16], "latent": 4, "embed": 8, "flow_hidden": [16],
                                  "flow_transforms": 1, "train": {"epochs": 2}, "flow_train": {"epochs": 2}},
    ("central_mass", "resnet"): {"width": 4, "hidden": 16, "train": {"epochs": 2}},
    ("central_mass", "lightgbm"): {"n_estimators": 20},
}


@pytest.fixture(scope="module", autouse=True)
def checkpoints(tmp_path_factory):
    """The bundled map checkpoints when shipped; otherwise tiny ones trained here (seconds) in a private dir."""
    if api.bundled_checkpoints("exsitu_map") and api.bundled_checkpoints("central_mass"):
        yield api.CHECKPOINT_DIR
        return
    import torch

    torch.set_num_threads(2)
    d = tmp_path_factory.mktemp("ckpt_maps")
    for (task, model), cfg in TINY.items():
        data = api.simulate(task, 8, seed=5)
        tr, va = api.split(data, (0.75, 0.25), seed=0)
        api.save_checkpoint(api.train(task, model, tr, cfg, val=va), d / f"{task}_{model}.gps")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "CHECKPOINT_DIR", d)
        yield d


def new_app(task: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.selectbox(key="task_picker").set_value(task).run()
    return at


def settle(at: AppTest) -> AppTest:
    from tests.app.test_app import settle as _settle

    return _settle(at, 240)


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


@pytest.mark.parametrize("task", ["exsitu_map", "central_mass"])
def test_map_task_demo_then_every_page(task):
    at = new_app(task)
    clean(at)
    at.button(key="load_demo").click().run()
    clean(at)
    assert charts(at) == 1 and "First posterior on screen" in at.success[0].value
    at.switch_page("pages/1_data.py").run()
    clean(at)
    assert charts(at) >= 1                                  # the first object's input maps
    at.switch_page("pages/3_posterior.py")
    settle(at)
    clean(at)
    post = at.session_state["post"]
    assert post.n == len(at.session_state["data"]) and charts(at) >= 2
    at.switch_page("pages/4_evaluation.py")
    settle(at)
    clean(at)
    ev = at.session_state["eval"]
    assert ev["n"] == len(at.session_state["data"])
    assert charts(at) >= 3
    at.switch_page("pages/2_model.py").run()
    clean(at)
    at.switch_page("pages/5_export.py").run()
    fmt = "fits"
    at.selectbox(key="export_fmt").set_value(fmt).run()
    at.button(key="export_prepare").click().run()
    clean(at)
    got, raw = at.session_state["export_file"]
    assert got == fmt and raw[:6] == b"SIMPLE"
    from astropy.io import fits
    import io

    with fits.open(io.BytesIO(raw)) as hdul:
        names = [h.name for h in hdul]
    assert ("MEAN" in names or any("MEAN" in n for n in names)) if task == "exsitu_map" else len(hdul) >= 2


def test_exsitu_modes_side_by_side():
    at = new_app("exsitu_map")
    at.button(key="load_demo").click().run()
    at.switch_page("pages/3_posterior.py")
    settle(at)
    n0 = charts(at)
    at.button(key="modes_btn").click().run()
    clean(at)
    assert charts(at) == n0 + 1


def test_real_califa_file_gives_posterior_maps():
    at = new_app("exsitu_map")
    at.session_state["data"] = api.read_data(CALIFA, "exsitu_map")      # what the uploader stores
    post = _posterior_page(at, CALIFA.name, api.load_bundled("exsitu_map", "cvae_flow"))
    assert post.n == 1 and post.truth is None
    assert any("regridded onto the model grid" in c.value for c in at.caption)


def test_dap_file_with_a_model_that_needs_more_channels_says_which():
    at = new_app("exsitu_map")
    full = [b for b in api.bundled_checkpoints("exsitu_map") if "log_age" in (b["metadata"].get("features") or ())]
    if not full:
        pytest.skip("no bundled all-channel ex-situ model")
    at.session_state["data"] = api.read_data(DAP, "exsitu_map")
    at.session_state["data_label"] = DAP.name
    at.session_state["model"] = api.load_checkpoint(full[0]["path"])
    at.session_state["model_label"] = "bundled"
    at.switch_page("pages/3_posterior.py")
    settle(at)
    assert not at.exception
    assert at.error and "lacks channels" in at.error[0].value and "log_age" in at.error[0].value


def test_sami_pair_upload_path_gives_posterior_maps(tmp_path):
    from tests.core.data.test_maps_sami import write_sami_pair

    at = new_app("exsitu_map")
    at.switch_page("pages/1_data.py").run()
    clean(at)
    up = at.get("file_uploader")[0].proto
    assert up.multiple_files and "SAMI" in up.label                    # several files (a galaxy's pair) at once
    assert at.number_input(key="map_reff").value == 0.0                 # the R_e box for files that carry none
    vel, sig = write_sami_pair(tmp_path)
    kin = [b for b in api.bundled_checkpoints("exsitu_map") if b["metadata"].get("features") == ["vel", "sigma"]]
    if not kin:
        pytest.skip("no bundled kinematics-only ex-situ model")
    data = api.read_data([vel.read_bytes(), sig.read_bytes()], "exsitu_map", filename=[vel.name, sig.name],
                         reff_arcsec=4.0)                               # what the uploader stores
    at.session_state["data"] = data
    post = _posterior_page(at, data.meta["file"], api.load_checkpoint(kin[0]["path"]))
    assert post.n == 1 and post.truth is None
    at2 = new_app("central_mass")
    at2.switch_page("pages/1_data.py").run()
    assert not at2.get("file_uploader")[0].proto.multiple_files
    assert "map_reff" not in [w.key for w in at2.number_input]         # central_mass reads R_e from the DAP file


def _posterior_page(at, label: str, model):
    """Open the Posterior page on the data already in ``at``'s state (labelled ``label``) with ``model``; the
    posterior it computed."""
    at.session_state["data_label"] = label
    at.session_state["model"] = model
    at.session_state["model_label"] = "bundled"
    at.switch_page("pages/3_posterior.py")
    settle(at)
    clean(at)
    return at.session_state["post"]
