"""Photon-noise chain of the PFS medium-resolution red arm and the observing conditions of the paper's Table 2.

A spectrum f_lambda scaled to its i-band AB magnitude becomes photo-electrons per detector pixel,

    N_obj = f_lambda * lambda / (h c) * A_eff * dlambda * t * T(lambda) * EE(seeing, fiber) * atm(X, lambda) * V(fa)

on top of a sky N_sky (continuum + OH lines, scaled with airmass, plus Krisciunas & Schaefer 1991 moonlight) and
detector noise N_det (read noise and dark current over the trace). The per-exposure variance is the paper's eq. G.4,
sigma^2 = N_obj + N_sky + N_det, and N exposures are co-added, so that sigma_F = F * sqrt(sigma^2) / (sqrt(N) *
N_obj). The observed spectrum is then divided by its median (:func:`median_normalize`, paper eq. 2), and a noisy
realization is drawn from its sigma (:func:`noisy_spectrum`, paper eq. 3).

Where the constants come from. From the paper's equation: the variance is the plain sum above, with no scale
factor and nothing fitted to the paper's SNR (its Table 13, ``paper.SNR_BY_MAG``, is shown beside ours as a
comparison only). Fitted by us to two outputs of the official PFS exposure-time calculator (pfsspecsim, MR red
arm, 900 s, AB = 18 flat source, new moon, field centre, seeing 1.0"/zenith 22.5 deg and 0.8"/45 deg): the
instrument throughput T(lambda), the Gaussian blur added to the seeing, the telluric absorption (water lines,
and a per-pixel O2 A-band table measured from the ETC, see :func:`telluric_depth`), and the sky (B-spline
continuum absorbing the weakest lines, the 200 strongest OH lines, an airmass power). The median model/ETC ratio
per pixel is within 0.5% for the object counts (68% of pixels within +-1%; 0.986 in the O2 A band at both
airmasses) and the sky counts. The ETC's variance also holds sky-subtraction residuals, stray light and a
systematic floor, which eq. G.4 does not: they are kept, fitted, as ``EXTRA_VARIANCE`` and used only by
:func:`etc_extra_variance`, so that the model can still be compared with the ETC's noise column (sky + detector +
extra: median ratio 0.99 in both; the eq. G.4 background alone is 0.67-0.69 of the ETC's). Line positions and
strengths are measured facts of that sky, stored below as compact tables. Telescope, fiber and extinction
constants are physical values.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from astropy import constants as const
from scipy.interpolate import BSpline

from .instrument import MR_WAVE_MAX, MR_WAVE_MIN, lsf_sigma, mr_wavelength
from .spectra.synthesis import planck

# --------------------------------------------------------------------------------------------------------------
# Observing conditions (paper Table 2)

TABLE2 = {  # uniform ranges of the simulated observing conditions
    "seeing": (0.5, 1.5),  # arcsec, FWHM
    "zenith_angle": (0.0, 45.0),  # deg
    "field_angle": (0.0, 0.65),  # deg from the field centre
    "moon_zenith": (30.0, 90.0),  # deg
    "moon_target": (60.0, 180.0),  # deg, moon-target separation
    "moon_phase": (0.0, 0.0),  # lunation fraction: 0 new, 0.25 first quarter, 0.5 full
}
#: Fixed observing conditions where one set is needed (the Fisher ceiling, example spectra): the midpoint of every
#: range of Table 2 (new moon).
MEDIAN_CONDITIONS = {key: 0.5 * (lo + hi) for key, (lo, hi) in TABLE2.items()}
PHYSICAL_BOUNDS = {  # what the model accepts
    "seeing": (0.1, 5.0),
    "zenith_angle": (0.0, 70.0),
    "field_angle": (0.0, 0.7),
    "moon_zenith": (0.0, 180.0),
    "moon_target": (0.0, 180.0),
    "moon_phase": (0.0, 1.0),
}
N_EXPOSURES = 12
EXPOSURE_TIME = 900.0  # s per exposure


def draw_conditions(rng: np.random.Generator, n: int, moon_phase: float = 0.0) -> dict[str, np.ndarray]:
    """Draw ``n`` observing conditions uniformly within the ranges of Table 2.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the uniform draws.
    n : int
        Number of draws.
    moon_phase : float
        Fixed lunation fraction (0 = new moon, the paper's choice; 0.5 = full moon).

    Returns
    -------
    dict of str -> ndarray, shape (n,)
        Keys ``seeing`` (arcsec FWHM), ``zenith_angle``, ``field_angle``, ``moon_zenith``, ``moon_target`` (deg) and
        ``moon_phase`` (float64).

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer or ``moon_phase`` lies outside [0, 1].
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n, {n!r}, must be a positive integer")
    lo, hi = PHYSICAL_BOUNDS["moon_phase"]
    if not lo <= moon_phase <= hi:
        raise ValueError(f"moon_phase, {moon_phase!r}, must lie in [{lo}, {hi}]")
    out = {key: rng.uniform(a, b, int(n)) for key, (a, b) in TABLE2.items() if key != "moon_phase"}
    out["moon_phase"] = np.full(int(n), float(moon_phase))
    return out


# --------------------------------------------------------------------------------------------------------------
# Telescope, fiber and atmosphere (physical constants)

HC = (const.h * const.c).to("erg Angstrom").value  # photon energy times wavelength
C_ANGSTROM = const.c.to("Angstrom/s").value
COLLECTING_AREA = np.pi / 4.0 * (820.0**2 - 300.0**2)  # cm^2: 8.2 m primary, ~3 m central obstruction (PFI + WFC)
FIBER_DIAMETER_CENTRE, FIBER_DIAMETER_EDGE = 1.13, 1.03  # arcsec: 127 um core, plate scale falls to the edge
FIELD_RADIUS = 0.675  # deg, edge of the PFS field
VIGNETTING_EDGE = 0.10  # assumed fractional light loss at the field edge, growing as field_angle^2
PRESSURE_RATIO = 616.0 / 1013.25  # Mauna Kea summit pressure / sea level (Rayleigh optical depth scales with it)
AEROSOL_K1UM, AEROSOL_ALPHA = 0.010, 1.3  # aerosol extinction (mag/airmass) at 1 um and its power law
K_V = 0.172  # V-band extinction (mag/airmass) used in the moonlight model (Krisciunas & Schaefer 1991)
T_SUN = 5778.0  # K, colour of the scattered sunlight

# Detector (per 900 s exposure): read noise over the spatial extent of the trace, and dark current
READ_NOISE, TRACE_PIXELS, DARK_RATE = 3.0, 5, 3.0 / 3600.0  # e-/pix/read, pixels across the trace, e-/pix/s
MOON_SOLID_ANGLE = np.pi / 4.0 * FIBER_DIAMETER_CENTRE**2  # arcsec^2 of the central fiber

# --------------------------------------------------------------------------------------------------------------
# Constants fitted to the PFS ETC reference (see the module docstring)

PSF_BLUR = 0.180  # arcsec FWHM added in quadrature to the seeing
# T(x), x = (lambda - 7975 A) / 875 A, polynomial coefficients low to high
THROUGHPUT_POLY = (0.20448, -0.01405, -0.02785, 0.00698, 0.01276)
TELLURIC_LINES = np.array([
    7166.57, 0.0210, 7169.74, 0.1258, 7172.51, 0.1173, 7175.33, 0.2243, 7179.33, 0.2515, 7183.64, 0.1665,
    7188.77, 0.4187, 7193.87, 0.2378, 7195.29, 0.2091, 7199.99, 0.1467, 7202.91, 0.3158, 7206.39, 0.1838,
    7208.23, 0.1717, 7211.67, 0.0485, 7218.65, 0.0313, 7225.63, 0.0617, 7229.61, 0.0469, 7236.66, 0.2784,
    7242.65, 0.2323, 7245.76, 0.1839, 7254.99, 0.2963, 7259.75, 0.0845, 7263.69, 0.0612, 7267.23, 0.2263,
    7271.98, 0.0334, 7275.07, 0.1465, 7279.15, 0.2779, 7284.01, 0.0178, 7289.74, 0.1150, 7292.66, 0.1955,
    7296.88, 0.0686, 7302.00, 0.0513, 7305.70, 0.1943, 7311.64, 0.1189, 7314.55, 0.0506, 7320.21, 0.1258,
    7329.39, 0.0209, 7335.60, 0.0467, 7346.40, 0.0219, 7351.51, 0.0368, 7362.83, 0.0269, 7365.97, 0.0209,
    7371.12, 0.0361, 7385.39, 0.0314, 7393.10, 0.0298, 7398.61, 0.0274, 7412.78, 0.0159, 7427.25, 0.0161,
    7800.51, 0.0165, 7804.91, 0.0163, 7809.50, 0.0157, 7814.76, 0.0153, 7868.13, 0.0164, 7878.55, 0.0190,
    7897.88, 0.0403, 7903.97, 0.0365, 7911.18, 0.0317, 7922.89, 0.0177, 7930.97, 0.0248, 7961.16, 0.0171,
    7963.33, 0.0278, 7965.15, 0.0336, 8002.42, 0.0196, 8009.73, 0.0330, 8015.36, 0.0248, 8025.58, 0.0155,
    8030.60, 0.0147, 8046.11, 0.0194, 8098.93, 0.0165, 8110.28, 0.0259, 8115.94, 0.0576, 8121.17, 0.0267,
    8124.76, 0.0564, 8127.90, 0.0398, 8132.82, 0.1043, 8136.45, 0.2107, 8143.49, 0.1843, 8151.12, 0.2420,
    8156.57, 0.2742, 8160.28, 0.1495, 8164.30, 0.4394, 8166.64, 0.3463, 8171.85, 0.3728, 8179.97, 0.4540,
    8184.20, 0.1673, 8188.76, 0.1294, 8191.53, 0.2347, 8195.40, 0.1853, 8200.15, 0.2432, 8202.31, 0.1634,
    8214.30, 0.0506, 8220.42, 0.0938, 8224.02, 0.0635, 8230.45, 0.7353, 8233.44, 0.4171, 8236.05, 0.1745,
    8239.40, 0.0417, 8242.21, 0.0212, 8245.71, 0.1710, 8255.04, 0.0291, 8258.87, 0.1701, 8261.97, 0.0752,
    8265.77, 0.0479, 8276.68, 0.2025, 8282.07, 0.1117, 8284.25, 0.1641, 8290.50, 0.2340, 8296.70, 0.1856,
    8302.71, 0.0830, 8307.19, 0.1925, 8314.27, 0.0484, 8320.31, 0.1072, 8323.74, 0.2158, 8331.98, 0.0600,
    8335.93, 0.0350, 8341.30, 0.0935, 8351.58, 0.0195, 8356.08, 0.0172, 8359.48, 0.0349, 8364.52, 0.0321,
    8378.83, 0.0209, 8411.15, 0.0174, 8438.90, 0.0153, 8501.31, 0.0265, 8514.67, 0.0253, 8543.23, 0.0324,
    8664.76, 0.0167, 8848.75, 0.0180,
]).reshape(-1, 2)  # (wavelength A, optical depth x A at airmass 1) rendered with the MR LSF; water
# O2 A band (b-X 0-0, 7592-7707 A): optical depth per MR pixel at airmass 1, from the first pixel O2A_FIRST_PIXEL of
# instrument.mr_wavelength() on; tools/derive_o2a_band.py measures it (see telluric_depth)
O2A_FIRST_PIXEL = 1152
O2A_DEPTH = np.array([
    0.001, 0.001, 0.003, 0.008, 0.021, 0.051, 0.111, 0.206, 0.332, 0.474, 0.615, 0.741, 0.845, 0.914, 0.941, 0.934,
    0.914, 0.905, 0.921, 0.961, 1.015, 1.078, 1.150, 1.222, 1.275, 1.310, 1.348, 1.390, 1.411, 1.406, 1.401, 1.419,
    1.442, 1.444, 1.420, 1.394, 1.380, 1.375, 1.366, 1.343, 1.307, 1.265, 1.231, 1.219, 1.224, 1.222, 1.185, 1.110,
    1.030, 0.983, 0.984, 1.005, 0.996, 0.921, 0.803, 0.697, 0.645, 0.650, 0.672, 0.655, 0.570, 0.436, 0.295, 0.181,
    0.106, 0.068, 0.058, 0.071, 0.110, 0.180, 0.278, 0.379, 0.439, 0.444, 0.432, 0.458, 0.547, 0.679, 0.799, 0.844,
    0.788, 0.667, 0.551, 0.501, 0.542, 0.666, 0.827, 0.947, 0.954, 0.841, 0.674, 0.534, 0.473, 0.510, 0.635, 0.807,
    0.953, 0.989, 0.887, 0.707, 0.534, 0.426, 0.409, 0.485, 0.636, 0.815, 0.943, 0.943, 0.810, 0.619, 0.448, 0.343,
    0.323, 0.388, 0.526, 0.703, 0.850, 0.888, 0.788, 0.607, 0.426, 0.295, 0.236, 0.251, 0.336, 0.478, 0.639, 0.754,
    0.760, 0.650, 0.483, 0.325, 0.214, 0.162, 0.170, 0.236, 0.351, 0.490, 0.605, 0.639, 0.572, 0.439, 0.296, 0.183,
    0.117, 0.097, 0.120, 0.187, 0.289, 0.402, 0.485, 0.499, 0.435, 0.324, 0.209, 0.121, 0.070, 0.052, 0.066, 0.110,
    0.184, 0.272, 0.348, 0.378, 0.349, 0.274, 0.183, 0.105, 0.054, 0.029, 0.026, 0.043, 0.083, 0.144, 0.214, 0.268,
    0.285, 0.255, 0.194, 0.124, 0.067, 0.030, 0.012, 0.008, 0.016, 0.038, 0.075, 0.122, 0.166, 0.190, 0.184, 0.151,
    0.104, 0.058, 0.026, 0.008, 0.000, 0.000, 0.007, 0.023, 0.049, 0.082, 0.112, 0.128, 0.123, 0.100, 0.067, 0.035,
    0.013, 0.001, 0.000, 0.000, 0.000, 0.005, 0.020, 0.040, 0.062, 0.078, 0.081, 0.071, 0.052, 0.030, 0.012, 0.002,
    0.000, 0.000, 0.000, 0.000, 0.002, 0.010, 0.023, 0.037, 0.047, 0.050, 0.044, 0.032, 0.019, 0.008, 0.001, 0.000,
    0.000, 0.000, 0.000, 0.000, 0.002, 0.008, 0.015, 0.022, 0.026, 0.025, 0.020, 0.013, 0.006, 0.000, 0.000, 0.000,
    0.000, 0.000, 0.000, 0.000, 0.000, 0.001, 0.004, 0.008, 0.010, 0.010, 0.008, 0.004,
])
O2A_AIRMASS_POWER = 0.0  # tau(X) = tau(1) X^p, measured from the two ETC outputs (see telluric_depth)
SKY_CONTINUUM = np.array([
    0.1251, 0.1209, 0.1188, 0.1445, 0.1416, 0.1103, 0.1225, 0.1556, 0.1507, 0.1321, 0.0922, 0.1653,
    0.1641, 0.1114, 0.1351, 0.1002, 0.1772, 0.0885, 0.1495, 0.1123, 0.1911, 0.0506, 0.2794, 0.1365,
    0.1224, 0.2032, 0.1049, 0.2119, 0.1123, 0.1800, 0.1647, 0.1132, 0.1252, 0.1925, 0.1350, 0.1713,
    0.0904, 0.2031, 0.1329, 0.1572, 0.1269, 0.1396, 0.1420, 0.1458, 0.0888, 0.1549, 0.1004, 0.1406,
    0.1132, 0.1512, 0.1167, 0.1389, 0.1396, 0.1399, 0.1176, 0.1469, 0.1108, 0.1382, 0.1208, 0.1125,
    0.1349, 0.0926, 0.2404, 0.1253, 0.1056, 0.1561, 0.1195, 0.1369, 0.1304, 0.1202, 0.1184, 0.1360,
    0.1259,
])  # cubic B-spline coefficients on 71 uniform knots over the arm, e-/pix/s ([19:28]: refitted with O2A_DEPTH)
SKY_LINES = np.array([
    7241.07, 2.96, 7242.56, 4.93, 7243.76, 2.33, 7247.12, 6.94, 7248.88, 1.179, 7255.28, 1.555,
    7257.94, 0.5943, 7277.23, 0.9396, 7278.54, 11.53, 7283.70, 0.5544, 7286.79, 4.697, 7298.16, 1.358,
    7305.95, 2.732, 7313.28, 0.5391, 7318.52, 8.991, 7331.49, 4.149, 7343.15, 10.29, 7360.95, 3.52,
    7371.65, 9.321, 7394.48, 2.714, 7404.10, 5.348, 7432.07, 3.465, 7440.79, 3.22, 7468.85, 0.8868,
    7473.66, 1.532, 7475.94, 1.578, 7481.45, 1.123, 7482.38, 0.968, 7485.78, 2.244, 7495.98, 0.8621,
    7519.63, 0.6681, 7525.00, 0.7059, 7526.31, 7.32, 7532.98, 2.773, 7542.69, 0.6388, 7559.84, 1.497,
    7574.13, 4.77, 7588.41, 2.102, 7600.66, 1.874, 7620.44, 1.37, 7630.97, 2.315, 7655.61, 0.8975,
    7664.73, 1.865, 7686.55, 0.7011, 7694.20, 1.098, 7702.17, 0.8919, 7714.78, 10.86, 7717.02, 0.6562,
    7717.78, 2.9, 7719.15, 8.477, 7720.36, 3.163, 7726.10, 1.707, 7728.43, 2.582, 7736.12, 0.5603,
    7738.11, 0.6686, 7751.69, 1.32, 7753.02, 16.12, 7754.85, 0.3002, 7759.16, 1.106, 7762.37, 6.62,
    7771.44, 0.4163, 7774.44, 0.6048, 7775.76, 2.931, 7782.76, 4.622, 7787.72, 0.5519, 7793.77, 0.5759,
    7796.46, 12.78, 7810.85, 5.126, 7821.54, 0.3216, 7823.86, 16.53, 7843.64, 4.983, 7851.88, 1.533,
    7852.51, 0.6978, 7854.20, 0.5415, 7855.76, 18.14, 7860.42, 1.798, 7863.07, 5.638, 7870.10, 2.544,
    7873.07, 6.442, 7881.14, 3.879, 7884.08, 2.955, 7892.07, 4.198, 7900.81, 0.3163, 7914.53, 1.84,
    7916.06, 20.87, 7920.86, 0.6959, 7923.46, 8.947, 7930.85, 0.4695, 7933.50, 4.445, 7934.13, 2.206,
    7951.61, 4.327, 7967.08, 15.84, 7970.57, 1.695, 7979.84, 2.163, 7982.19, 5.476, 7995.73, 17.29,
    8016.55, 4.575, 8022.66, 0.9293, 8028.26, 13.55, 8030.84, 1.106, 8052.39, 0.3952, 8054.41, 2.782,
    8064.62, 6.017, 8096.17, 1.405, 8104.92, 2.828, 8141.76, 0.8675, 8149.03, 0.9237, 8149.90, 0.4374,
    8190.86, 0.482, 8280.89, 4.541, 8283.61, 1.876, 8284.21, 7.23, 8285.54, 1.037, 8288.86, 3.072,
    8291.08, 11.57, 8293.12, 0.7017, 8298.78, 4.424, 8301.39, 13.51, 8304.77, 0.7624, 8313.19, 4.892,
    8345.49, 3.882, 8347.07, 35.52, 8352.25, 1.179, 8355.40, 11.43, 8363.11, 0.8341, 8367.10, 2.646,
    8367.58, 1.934, 8382.82, 1.039, 8384.89, 8.286, 8401.74, 55.29, 8417.73, 10.1, 8429.95, 0.7189,
    8432.70, 53.51, 8436.93, 0.597, 8449.07, 0.5204, 8454.83, 9.525, 8467.89, 23.93, 8477.15, 0.6689,
    8496.01, 6.938, 8507.06, 4.03, 8507.51, 8.206, 8541.25, 9.714, 8551.03, 2.586, 8551.52, 2.046,
    8576.19, 0.7963, 8590.76, 1.274, 8599.33, 0.9384, 8599.93, 0.874, 8623.96, 0.2814, 8627.07, 0.5683,
    8628.67, 0.4211, 8630.49, 0.8437, 8631.97, 0.7132, 8634.10, 1.044, 8635.57, 0.8824, 8637.91, 1.123,
    8639.29, 0.7094, 8641.82, 0.7997, 8649.50, 0.9111, 8652.38, 1.814, 8653.86, 4.419, 8656.97, 4.529,
    8658.48, 5.732, 8661.68, 4.752, 8663.17, 5.504, 8666.71, 4.512, 8668.17, 5.55, 8671.89, 4.44,
    8673.27, 4.848, 8677.21, 3.176, 8678.68, 3.228, 8682.82, 2.198, 8684.19, 2.216, 8688.52, 1.267,
    8689.89, 1.384, 8694.41, 0.5982, 8695.78, 0.7369, 8702.07, 0.5986, 8703.10, 0.656, 8709.57, 0.6517,
    8710.54, 0.4537, 8761.36, 5.886, 8763.10, 3.196, 8764.02, 17.13, 8765.76, 0.8731, 8769.03, 6.946,
    8770.53, 20.33, 8772.33, 0.8189, 8778.81, 9.916, 8780.91, 21.46, 8793.79, 9.983, 8811.86, 0.6739,
    8812.93, 0.9937, 8828.11, 6.164, 8829.72, 55.29, 8833.41, 1.294, 8835.63, 3.725, 8836.78, 0.8801,
    8839.04, 22.55, 8848.11, 0.837,
]).reshape(-1, 2)  # (wavelength A, e-/s per line at zenith, centre fiber)
SKY_AIRMASS_POWER = 0.861  # sky ~ X^p
# The ETC's per-exposure variance beyond sky + detector: a S + b S^2 + c + e (dS/dpixel)^2 (sky-subtraction
# residuals, stray light, systematic floor; S = sky counts per pixel). Not part of the simulated variance (the paper's
# eq. G.4 has no such term): only etc_extra_variance, for comparisons with the ETC, uses it.
EXTRA_VARIANCE = (0.1717, 1.069e-03, 24.92, 5.941e-03)


def airmass(zenith_angle):
    """Plane-parallel airmass sec(z).

    Parameters
    ----------
    zenith_angle : float or array_like
        Zenith angle, deg.

    Returns
    -------
    float or ndarray, same shape
        Airmass X >= 1.
    """
    return 1.0 / np.cos(np.radians(zenith_angle))


def extinction_mag(wave):
    """Continuum extinction at Mauna Kea: Rayleigh (Hansen & Travis 1974) plus aerosols.

    Parameters
    ----------
    wave : float or array_like
        Wavelength, Angstrom.

    Returns
    -------
    float or ndarray, same shape
        Extinction, mag per airmass.
    """
    um = np.asarray(wave, dtype=float) / 1e4
    tau_rayleigh = 0.008569 * um**-4 * (1.0 + 0.0113 * um**-2 + 0.00013 * um**-4) * PRESSURE_RATIO
    return 2.5 / np.log(10.0) * tau_rayleigh + AEROSOL_K1UM * um**-AEROSOL_ALPHA


def fiber_diameter(field_angle):
    """Fiber diameter on the sky; the plate scale shrinks it quadratically towards the field edge.

    Parameters
    ----------
    field_angle : float or array_like
        Distance from the field centre, deg.

    Returns
    -------
    float or ndarray, same shape
        Diameter, arcsec (1.13 at the centre, 1.03 at 0.675 deg).
    """
    frac = (np.asarray(field_angle, dtype=float) / FIELD_RADIUS) ** 2
    return FIBER_DIAMETER_CENTRE + (FIBER_DIAMETER_EDGE - FIBER_DIAMETER_CENTRE) * frac


def vignetting(field_angle):
    """Fraction of the light the wide-field corrector passes at a field angle.

    Parameters
    ----------
    field_angle : float or array_like
        Distance from the field centre, deg.

    Returns
    -------
    float or ndarray, same shape
        Transmitted fraction: 1 at the centre, 0.9 at the field edge (0.675 deg).
    """
    return 1.0 - VIGNETTING_EDGE * (np.asarray(field_angle, dtype=float) / FIELD_RADIUS) ** 2


def fiber_fraction(seeing, field_angle=0.0):
    """Fraction of a point source's light entering the fiber: a Gaussian PSF of FWHM sqrt(seeing^2 + blur^2).

    Parameters
    ----------
    seeing : float or array_like
        Seeing FWHM, arcsec.
    field_angle : float or array_like
        Distance from the field centre, deg (sets the fiber diameter).

    Returns
    -------
    float or ndarray, broadcast shape
        Fiber aperture fraction in (0, 1).
    """
    sigma = np.sqrt(np.asarray(seeing, dtype=float) ** 2 + PSF_BLUR**2) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return 1.0 - np.exp(-(fiber_diameter(field_angle) ** 2) / (8.0 * sigma**2))


def moon_brightness(moon_zenith, moon_target, moon_phase, zenith_angle):
    """Moonlit sky brightness (nanoLamberts, V band) of Krisciunas & Schaefer (1991), split into scattering terms.

    Parameters
    ----------
    moon_zenith : float or array_like
        Zenith angle of the moon, deg (>= 90: the moon is set).
    moon_target : float or array_like
        Moon-target separation rho, deg.
    moon_phase : float or array_like
        Lunation fraction: 0 new moon, 0.5 full moon.
    zenith_angle : float or array_like
        Zenith angle of the target, deg.

    Returns
    -------
    rayleigh, mie : ndarray, broadcast shape
        The two terms of their scattering function f(rho), nL; their sum is B_moon. Zero when the moon is set.
    """
    alpha = 360.0 * np.abs(0.5 - np.asarray(moon_phase, dtype=float))  # phase angle: 180 new moon, 0 full moon
    rho = np.radians(moon_target)
    illum = 10.0 ** (-0.4 * (3.84 + 0.026 * alpha + 4e-9 * alpha**4))

    def ks_airmass(z):
        return 1.0 / np.sqrt(1.0 - 0.96 * np.sin(np.radians(z)) ** 2)

    moon_zenith = np.asarray(moon_zenith, dtype=float)
    path = 10.0 ** (-0.4 * K_V * ks_airmass(np.minimum(moon_zenith, 90.0))) * (
        1.0 - 10.0 ** (-0.4 * K_V * ks_airmass(zenith_angle)))
    scale = illum * path * (moon_zenith < 90.0)
    return scale * 10.0**5.36 * (1.06 + np.cos(rho) ** 2), scale * 10.0 ** (6.15 - np.degrees(rho) / 40.0)


def render_lines(wave, lines):
    """Sum of unit-area Gaussians of the MR LSF width at ``lines[:, 0]`` with weights ``lines[:, 1]``.

    Parameters
    ----------
    wave : array_like, shape (L,)
        Wavelengths, Angstrom.
    lines : ndarray, shape (K, 2)
        Line centres (Angstrom) and weights (line integral over wavelength).

    Returns
    -------
    ndarray, shape (L,)
        The rendered lines, weight units per Angstrom.
    """
    wave = np.asarray(wave, dtype=float)
    centre, weight = lines[:, 0], lines[:, 1]
    sig = lsf_sigma(centre)
    prof = np.exp(-0.5 * ((wave[:, None] - centre) / sig) ** 2) / (np.sqrt(2.0 * np.pi) * sig)
    return prof @ weight


def _x(wave):
    return (np.asarray(wave, dtype=float) - 7975.0) / 875.0


def throughput(wave):
    """End-to-end instrument throughput (telescope to detector, before fiber aperture losses), fitted to the ETC.

    Parameters
    ----------
    wave : float or array_like
        Wavelength, Angstrom (the fit is valid over the MR arm).

    Returns
    -------
    float or ndarray, same shape
        Throughput fraction.
    """
    return np.polynomial.polynomial.polyval(_x(wave), THROUGHPUT_POLY)


def o2a_depth(wave):
    """Optical depth of the O2 A band at airmass 1, interpolated in the per-pixel table ``O2A_DEPTH``.

    Parameters
    ----------
    wave : array_like, shape (L,)
        Wavelengths, Angstrom.

    Returns
    -------
    ndarray, shape (L,)
        Optical depth at the MR resolution (0 outside the table, 7592-7707 A).
    """
    table_wave = mr_wavelength()[O2A_FIRST_PIXEL:O2A_FIRST_PIXEL + O2A_DEPTH.size]
    return np.interp(np.asarray(wave, dtype=float), table_wave, O2A_DEPTH, left=0.0, right=0.0)


def telluric_depth(wave, x_air=1.0):
    """Telluric optical depth at the MR resolution: water lines times X, plus the O2 A band times X^p.

    Water lines (``TELLURIC_LINES``, Gaussians of the MR LSF width) were fitted to the ETC outputs with a
    transmission ``exp(-X tau)`` (the ETC does not scale them with airmass: where tau > 0.1 the model/ETC object
    counts are 0.98 at X = 1.08 and 0.94 at X = 1.41). The O2 A band, saturated at this resolution, is a table
    instead: ``O2A_DEPTH`` is ``-ln`` of the ratio of the ETC object counts to the model's without the band, each
    normalized by a straight continuum through 7578-7592 and 7735-7760 A, on every MR pixel of 7592-7707 A (the
    mean of the two ETC outputs, which agree to 1e-4). Its airmass power ``O2A_AIRMASS_POWER`` is
    ``ln(tau_2 / tau_1) / ln(X_2 / X_1)`` between the two outputs (X = 1.082 and 1.414): it measures 0.0001
    (|p| < 0.001 wherever tau > 0.1). The ETC applies one fixed (Kitt Peak) line-transmission spectrum at every
    zenith angle (``gsAtmTrans`` of its ``gsetc.c``); the real band deepens with airmass (the equivalent width of
    saturated, pressure-broadened lines grows about as X^0.5), so here the model follows the ETC, not the
    atmosphere. The sky continuum B-spline coefficients under the band were refitted with this table
    (``SKY_CONTINUUM[19:28]``, tools/derive_o2a_band.py).

    Parameters
    ----------
    wave : array_like, shape (L,)
        Wavelengths, Angstrom.
    x_air : float
        Airmass X >= 1.

    Returns
    -------
    ndarray, shape (L,)
        Optical depth along the line of sight (transmission ``exp(-tau)``).
    """
    return x_air * render_lines(wave, TELLURIC_LINES) + x_air**O2A_AIRMASS_POWER * o2a_depth(wave)


def sky_rate(wave):
    """Dark-sky counts at zenith in the central fiber: continuum x telluric + OH lines.

    Parameters
    ----------
    wave : array_like, shape (L,)
        Pixel centres, Angstrom, within the MR arm (7100-8850 A); the pixel widths are taken from their spacing.

    Returns
    -------
    ndarray, shape (L,)
        Sky counts, e-/s per pixel (NaN outside the MR arm).
    """
    wave = np.asarray(wave, dtype=float)
    inner = np.linspace(MR_WAVE_MIN, MR_WAVE_MAX, SKY_CONTINUUM.size - 2)
    knots = np.r_[[MR_WAVE_MIN] * 3, inner, [MR_WAVE_MAX] * 3]
    continuum = BSpline(knots, SKY_CONTINUUM, 3, extrapolate=False)(wave) * np.exp(-telluric_depth(wave))
    return continuum + render_lines(wave, SKY_LINES) * np.gradient(wave)


# --------------------------------------------------------------------------------------------------------------
# The noise model

I_BAND = (7100.0, 8450.0)  # A: top-hat over the part of the HSC/SDSS i band that the MR arm covers


def _i_band_weights(wave):
    """Trapezoid weights w_j with sum_j w_j f_j = int f_lambda lambda dlambda over the band, and int c/lambda."""
    band = (wave >= I_BAND[0]) & (wave <= I_BAND[1])
    w = wave[band]
    weights = np.zeros_like(wave)
    weights[band] = np.gradient(w) * w  # trapezoid rule on the band samples (ends get half a step less)
    weights[np.flatnonzero(band)[[0, -1]]] *= 0.5
    return weights, np.trapezoid(C_ANGSTROM / w, w)


def i_band_ab_mag(wave, flux_lambda):
    """Synthetic AB magnitude in the i band approximated by a photon-counting top-hat over 7100-8450 A.

    The i band (half power ~6950-8450 A for HSC-i2 and SDSS i) extends blueward of the MR arm, which starts at
    7100 A; we use the part of it covered by the arm, so the magnitude depends only on the observed pixels.

    Parameters
    ----------
    wave : array (L,)
        Increasing wavelengths in Angstrom covering 7100-8450 A.
    flux_lambda : array (..., L)
        Flux density f_lambda in erg/s/cm2/A.

    Returns
    -------
    array (...)
        m_AB = -2.5 log10( int f_lambda lambda dlambda / int c / lambda dlambda ) - 48.6.

    Raises
    ------
    ValueError
        If the grid does not cover the band, shapes disagree or the band flux is not positive and finite.
    """
    wave = np.asarray(wave, dtype=float)
    flux = np.asarray(flux_lambda, dtype=float)
    if wave.ndim != 1 or flux.shape[-1:] != wave.shape:
        raise ValueError(f"flux_lambda shape {flux.shape} must end with the length of wave {wave.shape}")
    if np.any(np.diff(wave) <= 0) or wave[0] > I_BAND[0] + 1.0 or wave[-1] < I_BAND[1]:
        raise ValueError(f"wave ({wave[0]:.1f}-{wave[-1]:.1f} A) must increase and cover the i band {I_BAND} A")
    weights, norm = _i_band_weights(wave)
    num = flux @ weights
    if not np.all(np.isfinite(num) & (num > 0)):
        raise ValueError("flux_lambda must have a positive, finite integral over the i band")
    return -2.5 * np.log10(num / norm) - 48.6


@lru_cache(maxsize=1)
def _mr_tables():
    """Per-pixel vectors of the model on the MR grid (computed once)."""
    wave = mr_wavelength()
    photons = COLLECTING_AREA * np.gradient(wave) * wave / HC * throughput(wave)  # e-/s per f_lambda, before fiber
    kappa = 0.4 * np.log(10.0) * extinction_mag(wave) + render_lines(wave, TELLURIC_LINES)  # depth per airmass
    # moonlight: B_moon = 1 nL in V is f_nu = 10^(-0.4 (V + 48.6)) per arcsec^2 with V = (20.7233 - ln(B / 34.08))
    # / 0.92104 (Krisciunas & Schaefer 1991); sunlight colour times lambda^-4 (Rayleigh) or lambda^-1.3 (Mie)
    flam_v = 10.0 ** (-0.4 * 48.6) * np.exp(-20.7233) / 34.08 * C_ANGSTROM / 5500.0**2
    sun_colour = planck(wave, [T_SUN])[0] / planck([5500.0], [T_SUN])[0, 0]  # B_lambda relative to V
    moon = [flam_v * sun_colour * (wave / 5500.0) ** -p * photons for p in (4.0, 1.3)]  # e-/s per nL arcsec^2
    sky = np.stack([sky_rate(wave), *moon])  # (3, L): dark sky, Rayleigh and Mie moonlight
    return dict(wave=wave, photons=photons, kappa=kappa, o2a=o2a_depth(wave), sky=sky)


def etc_extra_variance(sky):
    """The ETC's per-exposure variance beyond sky photon noise and detector, for comparisons with the ETC only.

    ``a S + b S^2 + c + e (dS/dpixel)^2`` with ``EXTRA_VARIANCE`` = (a, b, c, e), fitted to the ETC's noise column
    (sky-subtraction residuals, stray light, systematic floor). The simulated spectra do not carry it: their
    variance is the paper's eq. G.4 (:func:`photon_budget`).

    Parameters
    ----------
    sky : array_like, shape (..., L)
        Sky counts per pixel and exposure on consecutive pixels (the ``sky`` of :func:`photon_budget`).

    Returns
    -------
    ndarray, shape (..., L)
        Extra variance, e-^2 per pixel and exposure.
    """
    a, b, c, e = EXTRA_VARIANCE
    sky = np.asarray(sky, dtype=float)
    return a * sky + b * sky**2 + c + e * np.gradient(sky, axis=-1) ** 2


def _validate(wave, flux_lambda, mag_i, conditions):
    wave = np.asarray(wave, dtype=float)
    if wave.shape != (4096,) or not np.allclose(wave, mr_wavelength(), rtol=0, atol=1e-3):
        raise ValueError(f"wave (shape {wave.shape}) must be the 4096-pixel MR grid of instrument.mr_wavelength()")
    flux = np.asarray(flux_lambda, dtype=float)
    if flux.ndim != 2 or flux.shape[1] != wave.size:
        raise ValueError(f"flux_lambda shape {flux.shape} must be (B, {wave.size})")
    if not ((flux > 0).all() and np.isfinite(flux.max())):  # NaN fails the first test, inf the second
        bad = ~(np.isfinite(flux) & (flux > 0))
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"flux_lambda must be finite and > 0; {bad.sum()} pixels are not "
                         f"(first: spectrum {i}, pixel {j}, value {flux[i, j]})")
    mag = np.asarray(mag_i, dtype=float)
    if mag.shape != (flux.shape[0],) or not np.all(np.isfinite(mag)):
        raise ValueError(f"mag_i must be {flux.shape[0]} finite magnitudes, got shape {mag.shape}")
    cond = {}
    for key, (lo, hi) in PHYSICAL_BOUNDS.items():
        if key not in conditions:
            raise ValueError(f"conditions lack {key!r}; required keys are {list(PHYSICAL_BOUNDS)}")
        value = np.asarray(conditions[key], dtype=float)
        try:
            value = np.broadcast_to(value, flux.shape[:1])
        except ValueError:
            raise ValueError(
                f"conditions[{key!r}] shape {value.shape} does not match {flux.shape[0]} spectra") from None
        outside = ~((value >= lo) & (value <= hi))
        if outside.any():
            raise ValueError(f"conditions[{key!r}] = {value[outside][0]} outside the physical range [{lo}, {hi}]")
        cond[key] = value
    return flux, mag, cond


def photon_budget(wave, flux_lambda, mag_i, conditions, n_exposures=N_EXPOSURES, exposure_time=EXPOSURE_TIME):
    """Photo-electron budget per pixel of spectra scaled to an i-band magnitude and observed in given conditions.

    Parameters
    ----------
    wave : array (4096,)
        The MR grid (``instrument.mr_wavelength()``), Angstrom.
    flux_lambda : array (B, 4096)
        Positive flux densities in any units; only their shape matters.
    mag_i : array (B,)
        i-band AB magnitude each spectrum is scaled to.
    conditions : dict of str -> array (B,) or scalar
        Keys of ``TABLE2`` (see ``draw_conditions``).
    n_exposures : int
        Number of co-added exposures.
    exposure_time : float
        Seconds per exposure.

    Returns
    -------
    dict of str -> array (B, 4096)
        ``flux`` (scaled, erg/s/cm2/A), ``object`` and ``sky`` (e- per exposure), ``detector`` (read + dark) and
        ``variance`` (``object + sky + detector``, the paper's eq. G.4; e-^2 per exposure), ``sigma``
        (erg/s/cm2/A after co-adding the exposures).

    Raises
    ------
    ValueError
        For a wrong grid, shapes that disagree, non-positive or non-finite flux, conditions outside
        ``PHYSICAL_BOUNDS``, a bad exposure setup, or non-positive counts.
    """
    flux, mag, cond = _validate(wave, flux_lambda, mag_i, conditions)
    if not (n_exposures >= 1 and exposure_time > 0):
        raise ValueError(f"n_exposures ({n_exposures}) must be >= 1 and exposure_time ({exposure_time}) > 0")
    tab = _mr_tables()
    fa, za = cond["field_angle"], cond["zenith_angle"]
    x_air = airmass(za)
    flux = flux * (10.0 ** (-0.4 * (mag - i_band_ab_mag(tab["wave"], flux))))[:, None]
    optics = exposure_time * vignetting(fa)  # (B,)
    tau = np.multiply.outer(x_air, tab["kappa"])  # (B, L) optical depth along the line of sight ...
    tau += np.multiply.outer(x_air**O2A_AIRMASS_POWER, tab["o2a"])
    gain = np.exp(-tau, out=tau)  # ... atmospheric transmission ...
    gain *= tab["photons"]
    gain *= (optics * fiber_fraction(cond["seeing"], fa))[:, None]  # ... times e- per unit f_lambda
    obj = flux * gain
    if not (obj > 0).all():
        raise ValueError("object counts must be > 0 in every pixel; check flux_lambda and the exposure")
    area = optics * (fiber_diameter(fa) / FIBER_DIAMETER_CENTRE) ** 2
    rayleigh, mie = moon_brightness(cond["moon_zenith"], cond["moon_target"], cond["moon_phase"], za)
    lin = np.stack([x_air**SKY_AIRMASS_POWER, rayleigh * MOON_SOLID_ANGLE, mie * MOON_SOLID_ANGLE], 1) * area[:, None]
    sky = lin @ tab["sky"]  # (B, L)
    detector = TRACE_PIXELS * (READ_NOISE**2 + DARK_RATE * exposure_time)
    variance = obj + sky + detector  # the paper's eq. G.4: N_obj + N_sky + sigma_read^2 (+ dark)
    sigma = np.sqrt(variance / n_exposures) / gain  # = flux * sqrt(variance / N) / obj
    return dict(flux=flux, object=obj, sky=sky, detector=np.full_like(obj, detector), variance=variance, sigma=sigma)


def observe(wave, flux_lambda, mag_i, conditions, n_exposures=N_EXPOSURES, exposure_time=EXPOSURE_TIME):
    """Scale spectra to their i-band magnitudes and return them with the per-pixel flux uncertainty.

    Parameters
    ----------
    wave, flux_lambda, mag_i, conditions, n_exposures, exposure_time
        As :func:`photon_budget`.

    Returns
    -------
    flux, sigma : arrays (B, 4096)
        Noiseless flux scaled to ``mag_i`` and its 1-sigma uncertainty after ``n_exposures``, erg/s/cm2/A.

    Raises
    ------
    ValueError
        As :func:`photon_budget`.
    """
    budget = photon_budget(wave, flux_lambda, mag_i, conditions, n_exposures, exposure_time)
    return budget["flux"], budget["sigma"]


def median_normalize(flux: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divide each spectrum and its sigma by the spectrum's median (paper eq. 2), the last step of the observation.

    Parameters
    ----------
    flux, error : array (..., L)
        Observed flux and its 1-sigma uncertainty.

    Returns
    -------
    flux, error : arrays (..., L)
        Both divided by the median of ``flux`` along the last axis.
    norm : array (...)
        The medians.

    Raises
    ------
    ValueError
        If a median is not positive.
    """
    norm = np.median(flux, axis=-1, keepdims=True)
    if np.any(norm <= 0):
        raise ValueError("median flux must be positive for median normalization")
    return flux / norm, error / norm, norm[..., 0]


def noisy_spectrum(flux: np.ndarray, error: np.ndarray, rng: np.random.Generator, alpha: float = 1.0) -> np.ndarray:
    """One noisy realization ``max(x + alpha * eps * sigma, 0)`` of a clean spectrum (paper eq. 3 and section 3.2).

    One draw from a numpy Generator, as the chapters and the interactive figures make it. The inputs of the networks
    and of the Ridge and LightGBM baselines draw the same noise per batch, with the noise of each row a function of
    (seed, epoch, row) only (:func:`specvit_core.data.noisy_rows`).

    Parameters
    ----------
    flux, error : ndarray, shape (..., L)
        Clean normalized flux and its 1-sigma uncertainty, of the same shape.
    rng : numpy.random.Generator
        Source of ``eps ~ N(0, 1)``, drawn as float32.
    alpha : float
        Noise-level scaling (1 = nominal instrument noise, 0 = none: ``flux`` is returned clipped at 0, whatever
        ``error`` holds, e.g. the ``inf`` of survey pixels without data).

    Returns
    -------
    ndarray, float32, same shape as ``flux``
        The noisy spectrum, negative flux clipped at 0.

    Raises
    ------
    ValueError
        If the shapes of ``flux`` and ``error`` differ.
    """
    if np.shape(flux) != np.shape(error):
        raise ValueError(f"flux shape {np.shape(flux)} and error shape {np.shape(error)} must agree")
    if alpha == 0:  # observed spectra (noise already in them) may carry sigma = inf where they have no data
        return np.maximum(flux, 0, dtype=np.float32)
    eps = rng.standard_normal(np.shape(flux), dtype=np.float32)
    return np.maximum(flux + np.float32(alpha) * eps * error, 0, dtype=np.float32)
