"""SDSS K-corrections of galaxy colours: Chilingarian, Melchior & Zolotukhin (2010, MNRAS 405, 1409) polynomials, as
updated in Chilingarian & Zolotukhin (2012, MNRAS 419, 1727) (the "K-corrections calculator").

``K_band(z, c) = sum_ij a_ij z^i c^j`` with ``c`` the galaxy's *observed* colour (g - r for g and r, g - i for i,
r - z for z), so that ``m_obs = M_rest + DM(z) + K``. The polynomials are fitted to PEGASE.2 / GALEV synthetic
spectra of galaxies (with their own dust) at 0 < z < 0.5 and observed colours of normal galaxies; outside that
they extrapolate. Used by :func:`core.data.io.tng.read_tng_groupcat` (``colours="observed_z0.05"``) to turn
rest-frame colours into observed-frame colours at the redshift the ``halo_mass`` task's colours are defined at.
"""

from __future__ import annotations

import numpy as np

__all__ = ["k_correction", "rest_to_observed_sdss", "REFERENCE"]

REFERENCE = "Chilingarian, Melchior & Zolotukhin 2010, MNRAS 405, 1409; Chilingarian & Zolotukhin 2012, MNRAS 419, 1727"

#: (band, colour) -> a[i][j], coefficient of z^i colour^j (published coefficient tables of the calculator)
_COEFF = {
    ("g", "g-r"): (
        (0, 0, 0, 0),
        (-2.45204, 4.10188, 10.5258, -13.5889),
        (56.7969, -140.913, 144.572, 57.2155),
        (-466.949, 222.789, -917.46, -78.0591),
        (2906.77, 1500.8, 1689.97, 30.889),
        (-10453.7, -4419.56, -1011.01, 0),
        (17568, 3236.68, 0, 0),
        (-10820.7, 0, 0, 0),
    ),
    ("r", "g-r"): (
        (0, 0, 0, 0),
        (1.83285, -2.71446, 4.97336, -3.66864),
        (-19.7595, 10.5033, 18.8196, 6.07785),
        (33.6059, -120.713, -49.299, 0),
        (144.371, 216.453, 0, 0),
        (-295.39, 0, 0, 0),
    ),
    ("i", "g-i"): (
        (0, 0, 0, 0),
        (-2.21853, 3.94007, 0.678402, -1.24751),
        (-15.7929, -19.3587, 15.0137, 2.27779),
        (118.791, -40.0709, -30.6727, 0),
        (-134.571, 125.799, 0, 0),
        (-55.4483, 0, 0, 0),
    ),
    ("z", "r-z"): (
        (0, 0, 0, 0),
        (0.669031, -3.08016, 9.87081, -7.07135),
        (-18.6165, 8.24314, -14.2716, 13.8663),
        (94.1113, 11.2971, -11.9588, 0),
        (-225.428, -17.8509, 0, 0),
        (197.505, 0, 0, 0),
    ),
}


def k_correction(band: str, z, colour_name: str, colour) -> np.ndarray:
    """K-correction [mag] of SDSS ``band`` at redshift ``z`` given the observed colour ``colour_name`` (one of
    g-r for g and r, g-i for i, r-z for z)."""
    a = np.asarray(_COEFF[(band, colour_name.replace(" ", ""))], dtype=float)
    z = np.asarray(z, dtype=float)
    c = np.asarray(colour, dtype=float)
    out = np.zeros(np.broadcast(z, c).shape)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if a[i, j]:
                out = out + a[i, j] * z**i * c**j
    return out


def rest_to_observed_sdss(g_r, r_i, i_z, z: float = 0.05, iterations: int = 20):
    """Observed-frame SDSS (g - r, r - i, i - z) at redshift ``z`` of galaxies with rest-frame colours
    (``g_r``, ``r_i``, ``i_z``): solves ``obs = rest + K_a(z, obs) - K_b(z, obs)`` by fixed-point iteration (the
    polynomials take the observed colour; the K-terms change by < 0.01 mag per 0.1 mag of colour at z = 0.05, so
    it converges in a few steps). NaN in, NaN out."""
    rest = [np.asarray(v, dtype=float) for v in (g_r, r_i, i_z)]
    gr, ri, iz = (v.copy() for v in rest)
    for _ in range(iterations):
        kg = k_correction("g", z, "g-r", gr)
        kr = k_correction("r", z, "g-r", gr)
        ki = k_correction("i", z, "g-i", gr + ri)
        kz = k_correction("z", z, "r-z", ri + iz)
        gr, ri, iz = rest[0] + kg - kr, rest[1] + kr - ki, rest[2] + ki - kz
    return gr, ri, iz
