"""Literature numbers (science/simulators.md section 6, [V]/[V-run]/[D] only) reproduced by physics.py."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.simulators import physics as P


def _peak(model: str, z: float) -> tuple[float, float]:
    h = np.linspace(10.5, 14.0, 35001)
    r = 10.0 ** (P.shmr_logmstar(h, z, model) - h)
    i = int(np.argmax(r))
    return float(r[i]), float(h[i])


@pytest.mark.parametrize("model,z,peak,logmh", [("moster13", 0.0, 0.038, 11.77),      # T1
                                                  ("behroozi13", 0.0, 0.027, 11.97),    # T2
                                                  ("moster18", 0.1, 0.025, 12.01)])     # T3
def test_shmr_peaks(model, z, peak, logmh):
    r, h = _peak(model, z)
    assert r == pytest.approx(peak, abs=0.0006)
    assert h == pytest.approx(logmh, abs=0.02)


def test_shmr_at_1e12():  # T4
    assert P.shmr_logmstar(12.0, 0.0, "moster13") == pytest.approx(10.53, abs=0.01)
    assert P.shmr_logmstar(12.0, 0.0, "behroozi13") == pytest.approx(10.43, abs=0.01)


def test_shmr_scatter():
    assert np.allclose(P.shmr_scatter([11.0, 13.0], "moster13", 0.18), 0.18)
    s = P.shmr_scatter([10.5, 12.0, 14.0], "moster18")
    assert s[0] > s[1] > s[2] > 0.16 and s[2] == pytest.approx(0.16, abs=0.01)


def test_quenched_fraction():  # T6
    fq = P.quenched_fraction([11.0, 12.0, 13.0, 14.0])
    assert fq == pytest.approx([0.30, 0.57, 0.87, 0.99], abs=0.01)


def test_speagle_main_sequence():  # T9
    assert P.cosmic_age_gyr(0.0) == pytest.approx(13.8, abs=0.05)
    assert P.ms_logsfr([10.0, 11.0]) == pytest.approx([-0.18, 0.30], abs=0.01)


def test_xgass_and_gallazzi():  # T10, T22
    assert P.xgass_logfhi_mstar([9.14, 10.07, 10.95]) == pytest.approx([-0.09, -0.85, -1.71], abs=1e-9)
    assert P.xgass_logfhi(-11.97) == pytest.approx(-1.69) and P.xgass_logfhi(-9.72) == pytest.approx(0.0)
    assert P.mzr_logz([10.11, 11.11]) == pytest.approx([-0.23, 0.10])
    assert P.gallazzi_logage([10.11, 10.91]) == pytest.approx([9.46, 9.87])
    assert P.gallazzi_logage(11.11) == pytest.approx(9.90, abs=0.02)


def test_petrosian_and_bt():  # T11 and the section-1.4 composite table
    assert P.petrosian_c([0.0, 1.0]) == pytest.approx([2.29, 3.35], abs=0.005)
    assert P.petrosian_c([0.1, 0.3, 0.5, 0.7]) == pytest.approx([2.39, 2.66, 3.06, 3.46], abs=0.005)
    for bt in (0.0, 0.45, 1.0):                                     # shipped table == reference computation
        assert P.petrosian_concentration(bt) == pytest.approx(float(P.petrosian_c(bt)), abs=0.002)
    assert P.petrosian_concentration(1.0, re_ratio=1.0, n_bulge=2.0) == pytest.approx(2.88, abs=0.01)
    assert P.bt_mean(10.5, 1) > P.bt_mean(10.5, 0)
    assert P.bt_mean(11.5, 0) > P.bt_mean(9.5, 0)


def test_concentration_dm14():  # T17 and the colossus implementation
    from colossus.halo import concentration

    logm = np.log10(np.array([1e11, 1e12, 1e13, 1e14]) / P.H_PLANCK18)      # Msun/h -> Msun
    c = P.concentration_dm14(logm)
    assert c == pytest.approx([10.1, 8.04, 6.4, 5.0], abs=0.06)
    P.get_cosmology("planck18")
    ref = concentration.concentration(1e12, "200c", 0.0, model="dutton14")
    assert c[1] == pytest.approx(ref, rel=1e-3)


def test_tinker08_hmf_sanity():  # T29 (dn/dlog10 M in h^3 Mpc^-3 at M in Msun/h, 200m)
    logm_h = np.array([10.5, 11.5, 12.5, 13.5, 14.5])
    dn = P.hmf_dndlnm(logm_h - np.log10(P.H_PLANCK18), 0.0, mdef="200m") * np.log(10.0)
    assert np.log10(dn) == pytest.approx([-0.69, -1.57, -2.46, -3.40, -4.68], abs=0.02)
    grid = np.linspace(10.5, 15.0, 281)
    p = P.hmf_prior(grid)
    assert np.trapezoid(p, grid) == pytest.approx(1.0) and np.all(np.diff(p) < 0)


def test_sps_tables_checksums():
    ok = P.verify_tables()
    assert set(ok) == {"sps_tau.csv", "sps_ssp.csv"} and all(ok.values())


@pytest.mark.parametrize("ssfr,logz,av,ref", [
    (-13.0, 0.0, 0.0, (1.83, 0.90, 0.38, 0.31, 0.44)),        # tau = 1 Gyr, solar  (T12 red sequence)
    (-11.1, 0.0, 0.0, (1.54, 0.79, 0.35, 0.29, 0.35)),        # tau = 2
    (-10.3, 0.0, 0.0, (1.11, 0.57, 0.28, 0.24, 0.18)),        # tau = 4
    (-9.8, 0.0, 0.0, (0.86, 0.37, 0.20, 0.19, -0.04)),        # tau = 20
    (-13.0, np.log10(0.4), 0.0, (1.57, 0.79, 0.33, 0.25, 0.32)),
    (-13.0, np.log10(2.5), 0.0, (2.12, 1.03, 0.44, 0.35, 0.56)),
    (-10.0, 0.0, 0.6, (1.13, 0.61, 0.34, 0.30, 0.27)),        # tau = 8, A_V = 0.6
])
def test_sps_tau_table_reference_values(ssfr, logz, av, ref):  # section 1.4 [V-run]
    out = P.sps_colours(ssfr, logz, av)
    got = [float(out[k]) for k in ("u_g", "g_r", "r_i", "i_z", "log_ml_r")]
    assert got == pytest.approx(list(ref), abs=0.03)


def test_sps_monotonic_and_clipped():
    s = np.linspace(-13, -9, 41)
    gr = P.sps_colours(s, 0.0, 0.0)["g_r"]
    assert np.all(np.diff(gr) < 0)                                   # bluer with more star formation
    assert P.sps_colours(-20.0, 0.0, 0.0)["g_r"] == pytest.approx(P.sps_colours(-13.0, 0.0, 0.0)["g_r"])
    assert P.sps_colours(-11, 0.0, 0.6)["g_r"] - P.sps_colours(-11, 0.0, 0.0)["g_r"] > 0.1   # dust reddens


def test_ssp_table_and_bell03():  # T24: colour-M/L of composite (tau) models near Bell+03 (Kroupa), +-0.15 dex
    gr, ml = P.ssp_colour_ml(np.array([8.5, 9.0, 9.5, 10.0]), 0.0)
    assert np.all(np.diff(gr) > 0) and np.all(np.diff(ml) > 0)      # SSPs redden and brighten in M/L with age
    assert 0.85 < float(gr[-1]) < 1.0 and abs(float(ml[-1] - P.bell03_log_ml_r(gr[-1]))) < 0.15
    tau = P.sps_colours(np.linspace(-13, -9.5, 15), 0.0, 0.0)
    assert np.abs(tau["log_ml_r"] - P.bell03_log_ml_r(tau["g_r"])).max() < 0.15


def test_baldry_divide_separates_red_and_blue():  # T13 sanity
    assert P.baldry04_ur_divide(-20.07) == pytest.approx(2.06)
    red = P.sps_colours(-13.0, 0.0, 0.0)
    blue = P.sps_colours(-9.8, 0.0, 0.0)
    for mr in (-19.0, -21.0, -22.5):
        div = P.baldry04_ur_divide(mr)
        assert red["u_g"] + red["g_r"] > div > blue["u_g"] + blue["g_r"]
