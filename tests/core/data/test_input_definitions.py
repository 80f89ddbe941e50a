"""Inputs that mean one thing (issue 11, part 3): definitions, readers that map only what matches, the automatic
mapping refusing look-alike columns, per-column out-of-distribution warnings, definitions in the model card."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.table import Table

from core.data.column_map import definition_conflict, refused_columns
from core.data.io.kcorrect import k_correction, rest_to_observed_sdss
from core.data.io.tng import read_tng_groupcat
from core.data.ood import distribution_of, ood_check, ood_messages, reference_for, simulated_reference
from core.data.schema import suggest_mapping, to_catalog, validate
from core.errors import GPSError
from core.tasks import TASKS, get_task, get_task_obj

DATA = Path(__file__).resolve().parents[2] / "data"
TNG = DATA / "fof_subhalo_tab_099.36_trim.hdf5"
PIPE3D = DATA / "NGC4047_cut.pipe3d.hdf5"


def _sim(n, seed):
    from core.data.simulators.catalog import CatalogSimConfig

    return get_task_obj("halo_mass").data.simulate(n, seed, CatalogSimConfig(), False)


# --------------------------------------------------------------------------------------------- definitions
@pytest.mark.parametrize("task", sorted(TASKS.names()))
def test_every_input_of_every_task_has_a_definition(task):
    for q in get_task(task).inputs:
        d = q.definition
        assert d is not None, f"{task}/{q.name} has no definition"
        assert d.summary() or d.note, f"{task}/{q.name}: empty definition"
        assert d.short() or d.note


def test_halo_mass_definitions_state_what_the_simulator_produces():
    s = get_task("halo_mass")
    for c in ("u_g", "g_r", "r_i", "i_z"):
        d = s.input(c).definition
        assert "SDSS" in d.band_system and d.frame.startswith("observed, z = 0.05") and d.dust.startswith("included")
    assert s.input("log_fgas").definition.gas_phase.startswith("HI")
    assert "Chabrier" in s.input("log_mstar").definition.imf
    assert "Petrosian" in s.input("conc").definition.aperture
    # the SPS table the colours come from says the same (observed frame z=0.05, Calzetti dust)
    head = (Path(__file__).resolve().parents[3] / "core/data/simulators/tables/sps_tau.csv").read_text()[:400]
    assert "observed frame z=0.05" in head and "Calzetti dust" in head


# --------------------------------------------------------------------------------------------- TNG reader
def test_tng_reader_no_total_gas_as_hi_and_no_rest_frame_colours_by_default():
    t = read_tng_groupcat(TNG)
    assert not {"log_fgas", "u_g", "g_r", "r_i", "i_z"} & set(t.colnames)
    assert {"log_mgas_total_over_mstar", "g_r_rest_nodust", "r_i_rest_nodust", "i_z_rest_nodust"} <= set(t.colnames)
    notes = t.meta["notes"]
    assert "log_fgas (HI fraction) not provided" in notes and "rest-frame and dust-free" in notes
    assert t.meta["colours"] == "none" and "colour_conversion" not in t.meta
    # and the automatic mapping takes none of them
    m = suggest_mapping(Table(t), "halo_mass")
    assert m["log_fgas"] is None and m["g_r"] is None and m["u_g"] is None and m["log_mstar"] == "log_mstar"


def test_tng_reader_k_corrects_colours_only_on_request():
    t = read_tng_groupcat(TNG, colours="observed_z0.05")
    with h5py.File(TNG, "r") as f:
        s = f["Group/GroupFirstSub"][0] - 83280
        phot = f["Subhalo/SubhaloStellarPhotometrics"][s].astype(np.float64)
    rest_gr = phot[4] - phot[5]
    assert t["g_r_rest_nodust"][0].value == pytest.approx(rest_gr, abs=1e-6)
    obs = t["g_r"][0].value
    # observed = rest + K_g - K_r, the K-terms evaluated at the observed colour (Chilingarian+10/12)
    kg, kr = k_correction("g", 0.05, "g-r", obs), k_correction("r", 0.05, "g-r", obs)
    assert obs == pytest.approx(rest_gr + kg - kr, abs=1e-4)
    assert 0.03 < obs - rest_gr < 0.12  # a red central at z=0.05 reddens by a few hundredths of a mag in g-r
    assert "Chilingarian" in t.meta["colour_conversion"] and "dust NOT added" in t.meta["colour_conversion"]
    m = suggest_mapping(Table(t), "halo_mass")
    assert (m["g_r"], m["r_i"], m["i_z"]) == ("g_r", "r_i", "i_z")
    with pytest.raises(GPSError, match="colour conversion"):
        read_tng_groupcat(TNG, colours="rest")


def test_k_correction_polynomials_and_inversion():
    # the published polynomial at a hand-evaluated point: K_r(z=0.1, g-r=0.5)
    a = [(1.83285, -2.71446, 4.97336, -3.66864), (-19.7595, 10.5033, 18.8196, 6.07785), (33.6059, -120.713, -49.299, 0),
         (144.371, 216.453, 0, 0), (-295.39, 0, 0, 0)]
    want = sum(c * 0.1 ** (i + 1) * 0.5**j for i, row in enumerate(a) for j, c in enumerate(row))
    assert k_correction("r", 0.1, "g-r", 0.5) == pytest.approx(want, rel=1e-12)
    assert k_correction("g", 0.0, "g-r", 0.9) == 0.0  # no K-correction at z = 0
    gr, ri, iz = np.array([0.75, 0.4]), np.array([0.35, 0.2]), np.array([0.2, 0.1])
    ogr, ori, oiz = rest_to_observed_sdss(gr, ri, iz, z=0.05)
    kg, kr = k_correction("g", 0.05, "g-r", ogr), k_correction("r", 0.05, "g-r", ogr)
    ki, kz = k_correction("i", 0.05, "g-i", ogr + ori), k_correction("z", 0.05, "r-z", ori + oiz)
    np.testing.assert_allclose([ogr - (kg - kr), ori - (kr - ki), oiz - (ki - kz)], [gr, ri, iz], atol=1e-6)


def test_pipe3d_salpeter_mass_density_converted_to_kroupa():
    from core.data.io.maps_pipe3d import SALPETER_TO_KROUPA_DEX, read_pipe3d

    a, b = read_pipe3d(PIPE3D), read_pipe3d(PIPE3D, imf="salpeter")
    i = a.channels.index("log_sigma_star")
    ok = ~a.mask[0]
    np.testing.assert_allclose(a.data[0, i][ok] - b.data[0, i][ok], SALPETER_TO_KROUPA_DEX, atol=1e-5)
    assert "Salpeter IMF -> Kroupa" in a.meta["imf_conversion"] and b.meta["imf"] == "salpeter"
    with pytest.raises(GPSError, match="imf"):
        read_pipe3d(PIPE3D, imf="chabrier")


# --------------------------------------------------------------------------------------------- column mapping
@pytest.mark.parametrize(
    "column, name",
    [
        ("U_g", "u_g"),  # Buser/Johnson U - g
        ("U-g", "u_g"),
        ("u_g_rest", "u_g"),
        ("g_r_rest_nodust", "g_r"),
        ("gr_nodust", "g_r"),
        ("absmag_g", "g_r"),
        ("log_mgas_total_over_mstar", "log_fgas"),
        ("log_fh2", "log_fgas"),
        ("logmstar_salpeter", "log_mstar"),
    ],
)
def test_definition_conflict_names_the_mismatch(column, name):
    assert definition_conflict(column, get_task("halo_mass").input(name))


@pytest.mark.parametrize(
    "column, name", [("u_g", "u_g"), ("U_G", "u_g"), ("ug", "u_g"), ("g_r", "g_r"), ("fgas", "log_fgas"),
                     ("log_mhi_mstar", "log_fgas"), ("logmstar", "log_mstar"), ("lgm_tot_p50", "log_mstar")]
)
def test_definition_conflict_leaves_matching_columns_alone(column, name):
    assert definition_conflict(column, get_task("halo_mass").input(name)) is None


def test_automatic_mapping_refuses_mismatched_columns_with_a_note():
    t = Table({"logmstar": [10.0, 11.0], "U": [19.0, 18.5], "g": [17.5, 17.0], "r": [17.0, 16.4],
               "U_g": [1.2, 1.3], "u_g_rest": [1.5, 1.6], "log_mgas_total_over_mstar": [-0.5, -1.0]})
    m = suggest_mapping(t, "halo_mass")
    assert m["u_g"] is None and m["log_fgas"] is None and m["g_r"] == "g - r" and m["log_mstar"] == "logmstar"
    notes = refused_columns(t, get_task("halo_mass"))
    assert any("'U_g'" in n and "Johnson/Buser U" in n for n in notes["u_g"])
    assert any("'U'" in n for n in notes["u_g"]) and any("'u_g_rest'" in n for n in notes["u_g"])
    rep = validate(t, "halo_mass")
    assert any("u_g not mapped automatically" in w and "Buser" in w for w in rep.warnings)
    # mapped by hand it is used, with a warning that says what it is
    rep = validate(t, "halo_mass", mapping={"log_mstar": "logmstar", "u_g": "U_g"})
    assert rep.ok and any("[U_g]: mapped to u_g by hand" in w for w in rep.warnings)
    # an SDSS u column next to it is taken (the refusal is about the definition, not the letters)
    t["u"] = [18.6, 18.1]
    assert suggest_mapping(t, "halo_mass")["u_g"] == "u - g"


# --------------------------------------------------------------------------------------------- OOD warnings
def test_ood_warning_fires_on_a_shifted_column_and_not_on_a_simulated_sample():
    ref = simulated_reference("halo_mass")
    assert ref is not None and set(ref["features"]) == set(get_task("halo_mass").input_names)
    same = _sim(2000, 11)
    assert not any(e["flagged"] for e in ood_check(same, ref))
    shifted = _sim(2000, 12)
    j = shifted.features.index("g_r")
    shifted.x[:, j] += 0.6
    entries = ood_check(shifted, ref)
    assert [e["name"] for e in entries if e["flagged"]] == ["g_r"]
    msg = ood_messages(entries, "f.csv")
    assert len(msg) == 1 and msg[0].startswith("f.csv [g_r]: far from") and "training sd" in msg[0]


def test_ood_in_the_validation_report():
    from core.data.ood import check_report

    sim = _sim(500, 13)
    t = Table({f: v for f, v in zip(sim.features, sim.x.T)})
    t["log_fgas"] = t["log_fgas"] - 2.5
    cat, rep = to_catalog(t, "halo_mass")
    msgs = check_report(rep, cat, "halo_mass")
    assert len(msgs) == 1 and "[log_fgas]" in msgs[0] and msgs[0] in rep.warnings
    row = {r["name"]: r for r in rep.rows()}
    assert row["log_fgas"]["status"] == "outside the training distribution" and row["g_r"]["status"] == "ok"
    assert "simulated" in rep.ood_reference and rep.to_dict()["ood"]
    check_report(rep, cat, "halo_mass")  # a second check replaces the first
    assert sum("[log_fgas]: far from" in w for w in rep.warnings) == 1


def test_training_distribution_stored_in_checkpoint_used_by_predict(tmp_path, capsys):
    from core import api
    from core.inference.checkpoints import read_metadata, save_checkpoint
    from core.inference.model_card import model_card_markdown
    from core.predict import predict_file

    train = _sim(400, 14)
    m = api.train("halo_mass", "lightgbm", train, {"n_estimators": 20}, features=("log_mstar", "g_r", "log_fgas"))
    path = save_checkpoint(m, tmp_path / "lgb.gps")
    meta = read_metadata(path)
    dist = meta["input_distribution"]
    assert set(dist["features"]) == {"log_mstar", "g_r", "log_fgas"}
    np.testing.assert_allclose(dist["features"]["g_r"]["quantiles"][4], np.median(train.column("g_r")), atol=1e-5)
    assert dist == distribution_of(train, ("log_mstar", "g_r", "log_fgas"))
    assert reference_for("halo_mass", meta)[1] == "the model's training data"
    schema = {f["name"]: f for f in meta["input_schema"]}
    assert schema["log_fgas"]["definition"]["gas_phase"].startswith("HI")
    card = model_card_markdown(meta)
    assert "| definition |" in card and "gas phase: HI" in card and "Training distribution of the inputs" in card
    # CLI predict: a warning on stderr per shifted column, none for the others
    test = _sim(300, 15)
    t = Table({f: test.column(f) for f in ("log_mstar", "g_r", "log_fgas")})
    t["log_fgas"] = t["log_fgas"] - 2.5
    t.write(tmp_path / "in.csv")
    out = predict_file(str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), checkpoint=str(path), progress=False)
    err = capsys.readouterr().err
    assert "[log_fgas]: far from the training data of model lightgbm" in err and "[g_r]: far from" not in err
    assert out is not None


def test_model_card_shows_definitions_for_older_checkpoints():
    from core.inference.model_card import input_rows, model_card_markdown

    meta = {"task": "halo_mass", "model": "flow", "features": ["u_g", "log_fgas"],
            "input_schema": [{"name": "u_g", "unit": "mag", "description": "u-g"},
                             {"name": "log_fgas", "unit": "dex", "description": "HI"}], "targets": ["log_mh"]}
    rows = {r["name"]: r for r in input_rows(meta)}
    assert "SDSS u and g" in rows["u_g"]["definition"] and "Buser" in rows["u_g"]["note"]
    md = model_card_markdown(meta)
    assert "frame: observed, z = 0.05" in md and "No training distribution stored" in md
