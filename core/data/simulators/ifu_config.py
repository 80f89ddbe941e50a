"""Settings of the IFU map simulator (science/simulators.md section 7.0 ``ifu`` defaults; CPU map size 64)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config import Config, param
from core.errors import GPSError

__all__ = ["IFUSimConfig", "MAP_CHANNELS", "CHANNEL_UNITS"]

#: Every observable channel the simulator can render, with its unit: the same table real-file readers use.
from core.data.maps import CHANNEL_UNITS  # noqa: E402
MAP_CHANNELS = tuple(CHANNEL_UNITS)


@dataclass(frozen=True)
class IFUSimConfig(Config):
    """IFU simulator settings. Sizes are in units of the 3-D stellar half-mass radius r_1/2 (``*_rhalf``)."""

    # -- sample --------------------------------------------------------------------------------------
    logms_min: float = param(9.0, help="Lower edge of the flat log M* distribution [dex Msun]", min=8.0, max=12.0)
    logms_max: float = param(11.7, help="Upper edge of the flat log M* distribution [dex Msun]", min=8.5, max=12.5)
    n_proj: int = param(3, help="Projections per galaxy (views along the x, y, z axes of a random rotation)",
                        min=1, max=3)
    # -- maps ------------------------------------------------------------------------------------------
    map_size: int = param(64, help="Pixels per side of the ML grid (64 on CPU; 128 is the seed/GPU setting)",
                          min=16, max=256, step=16)
    fov_rhalf: float = param(4.0, help="Full width of the map in units of r_1/2 (seed: 4)", min=1.0, max=12.0)
    channels: tuple[str, ...] = param(MAP_CHANNELS, help="Input map channels to return")
    psf_fwhm: float = param(2.5, help="Gaussian PSF FWHM [arcsec] (MaNGA median 2.54)", min=0.0, max=6.0)
    spaxel: float = param(0.5, help="Spaxel size [arcsec] (MaNGA 0.5)", min=0.1, max=2.0)
    survey_mode: Literal["mixed", "primary", "secondary", "ideal"] = param(
        "mixed", help="Bundle coverage: primary 1.5 R_e, secondary 2.5 R_e, mixed (primary_fraction), "
                      "ideal (no bundle footprint)")
    primary_fraction: float = param(0.67, help="Fraction of Primary-sample galaxies in mixed mode", min=0.0, max=1.0)
    noise: bool = param(True, help="Add Gaussian noise (ivar is always returned)")
    sn_ref: float = param(6.0, help="Continuum S/N per spaxel at mu_r = 23 mag/arcsec^2", min=0.5, max=100.0)
    mask_sn: float = param(3.0, help="Mask spaxels below this S/N", min=0.0, max=20.0)
    sigma_inst: float = param(72.0, help="Instrumental dispersion entering the velocity errors [km/s]",
                              min=0.0, max=200.0)
    star_rate: float = param(0.3, help="Mean number of masked foreground-star discs per map", min=0.0, max=5.0)
    z_min: float = param(0.01, help="Lowest redshift", min=0.001, max=0.5)
    z_max: float = param(0.15, help="Highest redshift", min=0.005, max=1.0)
    galaxy_logsigma_min: float = param(6.0, help="Galaxy pixels: intrinsic log Sigma* above this [dex Msun/kpc2]",
                                       min=3.0, max=9.0)
    # -- galaxy population (sections 2.3, 1.4) ---------------------------------------------------------
    shmr: Literal["moster13", "behroozi13", "moster18"] = param("moster13", help="Stellar-to-halo mass relation")
    sigma_shmr: float = param(0.18, help="SHMR scatter [dex]", min=0.02, max=0.6)
    delta_q: float = param(0.15, help="Quenched-SHMR offset [dex]", min=0.0, max=0.6)
    fq_log_mq: float = param(12.2, help="Zu & Mandelbaum quenching mass log Mq", min=10.5, max=14.0)
    fq_mu: float = param(0.38, help="Zu & Mandelbaum quenching slope", min=0.05, max=3.0)
    bt_sigma_logit: float = param(0.8, help="Scatter of logit(B/T) about its mean", min=0.0, max=3.0)
    size_model: Literal["vdw14", "shen03", "kravtsov13"] = param(
        "vdw14", help="Size relation: vdw14 = whole-galaxy r-band R_e (circular aperture) through the van der Wel+14 "
                      "medians (docs/science/ifu_calibration.md); shen03 / kravtsov13 = the earlier disk-size options")
    bulge_re_min: float = param(0.2, help="Bulge R_e / disk R_e, lower edge", min=0.05, max=1.0)
    bulge_re_max: float = param(0.5, help="Bulge R_e / disk R_e, upper edge", min=0.05, max=1.5)
    bulge_kappa_max: float = param(0.3, help="Bulge rotation kappa ~ U(0, this) x V_c", min=0.0, max=1.0)
    c_scatter: float = param(0.11, help="Scatter of log c200c about Dutton & Maccio [dex]", min=0.0, max=0.4)
    q0: float = param(0.15, help="Intrinsic disk thickness (Hubble formula)", min=0.02, max=0.6)
    z0_over_rd: float = param(0.15, help="Disk scale height / scale length", min=0.02, max=1.0)
    sigr_over_sigz: float = param(1.67, help="sigma_R / sigma_z of the disk", min=0.5, max=3.0)
    fex_floor: float = param(0.03, help="Ex-situ fraction floor of the median curve (Celiz+25 TNG50: 2-3% at low mass)", min=0.0, max=0.5)
    fex_logm50: float = param(11.5, help="log M* where the median f_ex is 0.5 (TNG100 ~11.4-11.5, EAGLE higher; RG16 Illustris: >0.8 at 12)", min=9.0, max=13.0)
    fex_width: float = param(0.45, help="Width of the median f_ex sigmoid [dex] (0.13 at 10.5, 0.27 at 11: between TNG100 and EAGLE)", min=0.05, max=2.0)
    fex_sigma_logit: float = param(0.55, help="Scatter of logit f_ex about the median curve (with the assembly and B/T terms ~0.3 dex in log f_ex, TNG100/EAGLE-like)", min=0.0, max=3.0)
    fex_assembly: float = param(-0.4, help="d logit f_ex / d(assembly latent a)", min=-3.0, max=3.0)
    fex_bt: float = param(0.5, help="d logit f_ex / d(B/T)", min=-3.0, max=3.0)
    kex_min: float = param(1.5, help="Ex-situ R_e / galaxy R_e, lower edge", min=0.3, max=10.0)
    kex_max: float = param(4.0, help="Ex-situ R_e / galaxy R_e, upper edge", min=0.3, max=10.0)
    age_q_offset: float = param(0.15, help="Quenched galaxies are older by this [dex] at log M* <= 10, fading to 0 at 11 [design]", min=0.0, max=0.6)
    age_sigma: float = param(0.1, help="Scatter of the central log age [dex]", min=0.0, max=0.5)
    z_sigma: float = param(0.1, help="Scatter of the central [Z/H] [dex]", min=0.0, max=0.5)
    age_grad_ltg: float = param(-0.11, help="Age gradient of late types [dex / R_e] (Goddard+17 light-weighted -0.11)", min=-1.0, max=1.0)
    age_grad_etg: float = param(0.09, help="Age gradient of early types [dex / R_e] (Goddard+17 MaNGA mass-weighted +0.09; rendered ~+0.08)", min=-1.0, max=1.0)
    age_grad_sigma: float = param(0.1, help="Scatter of age gradients [dex / R_e]", min=0.0, max=0.5)
    z_grad_ltg: float = param(-0.2, help="[Z/H] gradient of late types [dex / R_e]", min=-1.0, max=1.0)
    z_grad_etg: float = param(-0.1, help="[Z/H] gradient of early types [dex / R_e]", min=-1.0, max=1.0)
    z_grad_sigma: float = param(0.05, help="Scatter of [Z/H] gradients [dex / R_e]", min=0.0, max=0.5)
    ex_logage_min: float = param(10.0, help="Ex-situ log age lower edge [dex yr]", min=8.0, max=10.1)
    ex_logage_max: float = param(10.1, help="Ex-situ log age upper edge [dex yr]", min=8.0, max=10.1)
    dlogm_sat_min: float = param(0.5, help="Satellites are this much less massive (lower edge) [dex]", min=0.0, max=3.0)
    dlogm_sat_max: float = param(1.5, help="Satellites are this much less massive (upper edge) [dex]", min=0.0, max=3.0)
    # -- mass in the dynamics (docs/science/ifu_calibration.md: sigma_e of quiescent galaxies) -----------------
    imf_model: Literal["posacki15", "none"] = param(
        "posacki15", help="Stellar mass in the dynamics of quenched galaxies: posacki15 = heavier-than-Kroupa IMF, "
                          "log alpha = imf_slope log(sigma_ref / 200) + imf_norm (>= 0) with sigma_ref the Zahid+16 "
                          "quiescent sigma at M* (Posacki+15 / Cappellari+13 ATLAS3D XX); none = nominal (Kroupa) "
                          "masses. Maps and log_mstar_re stay nominal")
    imf_slope: float = param(0.38, help="d log alpha / d log sigma_e (Posacki+15 ATLAS3D + SLACS: 0.38)",
                             min=0.0, max=2.0)
    imf_norm: float = param(0.13, help="log alpha (true / Kroupa stellar mass) at sigma_e = 200 km/s (Posacki+15: "
                                       "log alpha_Salp = -0.06, Kroupa = Salpeter - 0.19 dex)", min=-0.3, max=0.5)
    imf_scatter: float = param(0.08, help="Scatter of log alpha at fixed M* [dex] (quenched galaxies)",
                               min=0.0, max=0.5)
    contraction: Literal["gnedin04", "none"] = param(
        "gnedin04", help="Dark-halo response to the galaxy: gnedin04 = modified adiabatic contraction (Gnedin+04, "
                         "A = 0.85, w = 0.8); none = the unperturbed NFW halo")
    # -- central-mass products (issue 5) ---------------------------------------------------------------
    image_size: int = param(64, help="r-band image / g-r map pixels per side", min=16, max=320, step=16)
    image_fov_rhalf: float = param(8.0, help="Image full width in units of r_1/2", min=1.0, max=20.0)
    image_psf_fwhm: float = param(1.3, help="Imaging PSF FWHM [arcsec] (SDSS-like)", min=0.0, max=5.0)
    image_sn_ref: float = param(20.0, help="Imaging S/N per pixel at mu_r = 23", min=0.5, max=500.0)
    kin_size: int = param(48, help="Kinematic map pixels per side (seed: 48)", min=16, max=256, step=16)
    kin_fov_rhalf: float = param(2.0, help="Kinematic map full width in units of r_1/2 (seed: 2)", min=0.5, max=12.0)
    chunk: int = param(64, help="Galaxies rendered together (memory only; outputs do not depend on it)",
                       min=1, max=4096, advanced=True)

    def validate(self) -> None:
        name = type(self).__name__
        for lo, hi in (("logms_min", "logms_max"), ("bulge_re_min", "bulge_re_max"), ("kex_min", "kex_max"),
                       ("z_min", "z_max"), ("ex_logage_min", "ex_logage_max"), ("dlogm_sat_min", "dlogm_sat_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise GPSError("lower edge above upper edge", source=name, field=lo,
                               expected=f"<= {hi} = {getattr(self, hi)}", found=repr(getattr(self, lo)))
        bad = [c for c in self.channels if c not in CHANNEL_UNITS]
        if bad or not self.channels:
            raise GPSError("unknown map channel", source=name, field="channels",
                           expected=" | ".join(CHANNEL_UNITS), found=repr(bad or self.channels))
