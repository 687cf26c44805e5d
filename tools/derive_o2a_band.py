"""Measure the O2 A-band optical depth per MR pixel, and its airmass power, from PFS ETC outputs (developer tool).

    .venv/bin/python tools/derive_o2a_band.py --etc /path/to/pfs_etc_mr

For each ETC output (``etc_mr_see<seeing>_za<zenith>_fa0_900s.txt``, AB = 18 flat source, one 900 s exposure; its
rows are the MR pixels) it divides the ETC object counts by the model's with the O2 A band taken out, normalizes
the ratio by a straight continuum through the windows below, and takes tau = -ln(ratio) (clipped at 0) on
7592-7712 A, cut after its last non-zero value. It prints tau at airmass 1 (mean over the outputs, scaled by the
measured power) as the ``O2A_FIRST_PIXEL`` / ``O2A_DEPTH`` of ``specvit_core.noise``, the power
p = ln(tau_2 / tau_1) / ln(X_2 / X_1), and the model / ETC object counts in 7595-7660 A with the module's table.
The sky continuum is absorbed by the same band, so it also refits, by linear least squares on the ETC sky counts of
all outputs, the ``SKY_CONTINUUM`` coefficients whose B-splines reach into the band (the others held fixed).
"""
import argparse
import re
from pathlib import Path

import numpy as np
from scipy.interpolate import BSpline

from specvit_core import noise
from specvit_core.instrument import MR_WAVE_MAX, MR_WAVE_MIN, mr_wavelength

ETC_NAME = re.compile(r"etc_mr_see(?P<seeing>[\d.]+)_za(?P<za>[\d.]+)_fa0_900s\.txt$")
CONTINUUM = ((7578.0, 7592.0), (7735.0, 7760.0))  # A, windows free of O2 A absorption on either side
TABLE, BAND = (7592.0, 7712.0), (7595.0, 7660.0)  # A


def transmission(path, wave):
    """Airmass, ETC / model-without-the-band ratio normalized by the continuum, and model / ETC with the table."""
    m, etc = ETC_NAME.search(path.name), np.loadtxt(path)
    cond = dict(seeing=float(m["seeing"]), zenith_angle=float(m["za"]), field_angle=0.0, moon_zenith=90.0,
                moon_target=180.0, moon_phase=0.0)
    x_air = float(noise.airmass(cond["zenith_angle"]))
    obj = noise.photon_budget(wave, (noise.C_ANGSTROM / wave**2)[None], np.array([18.0]), cond, 1)["object"][0]
    ratio = etc[:, 1] / (obj * np.exp(x_air**noise.O2A_AIRMASS_POWER * noise.o2a_depth(wave)))
    mids = [np.mean(w) for w in CONTINUUM]
    levels = [np.median(ratio[(wave > lo) & (wave < hi)]) for lo, hi in CONTINUUM]
    return x_air, ratio / np.interp(wave, mids, levels), obj / etc[:, 1]


def refit_sky_continuum(files, wave, table):
    """Least-squares SKY_CONTINUUM coefficients of the B-splines overlapping ``table`` pixels; print them."""
    inner = np.linspace(MR_WAVE_MIN, MR_WAVE_MAX, noise.SKY_CONTINUUM.size - 2)
    basis = BSpline.design_matrix(wave, np.r_[[MR_WAVE_MIN] * 3, inner, [MR_WAVE_MAX] * 3], 3).toarray()
    free = np.flatnonzero(basis[table].any(0))
    pix = basis[:, free].any(1)
    held = noise.SKY_CONTINUUM.copy()
    held[free] = 0.0
    absorbed = np.exp(-noise.telluric_depth(wave))  # the sky is absorbed at zenith: sky_rate
    lines = noise.render_lines(wave, noise.SKY_LINES) * np.gradient(wave)
    design, target = [], []
    for path in files:
        scale = noise.EXPOSURE_TIME * noise.airmass(float(ETC_NAME.search(path.name)["za"])) ** noise.SKY_AIRMASS_POWER
        design.append(basis[pix][:, free] * (absorbed * scale)[pix, None])
        target.append((np.loadtxt(path)[:, 3] - scale * (basis @ held * absorbed + lines))[pix])
    coef = np.linalg.lstsq(np.vstack(design), np.concatenate(target), rcond=None)[0]
    print(f"SKY_CONTINUUM[{free[0]}:{free[-1] + 1}] = " + ", ".join(f"{v:.4f}" for v in coef))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--etc", type=Path, required=True, help="folder of ETC output files")
    files = sorted(p for p in parser.parse_args().etc.glob("*.txt") if ETC_NAME.search(p.name))
    if len(files) < 2:
        parser.error("need ETC outputs at two zenith angles, named like etc_mr_see1.0_za22.5_fa0_900s.txt")
    wave = mr_wavelength()
    table = np.flatnonzero((wave >= TABLE[0]) & (wave <= TABLE[1]))
    band = (wave >= BAND[0]) & (wave <= BAND[1])
    runs = sorted(transmission(p, wave) for p in files)[::len(files) - 1]  # lowest and highest airmass
    (x1, t1, r1), (x2, t2, r2) = runs
    tau1, tau2 = (np.clip(-np.log(t[table]), 0.0, None) for t in (t1, t2))
    deep = (tau1 > 0.1) & (tau2 > 0.1)
    power = np.log(tau2[deep] / tau1[deep]) / np.log(x2 / x1)
    print(f"airmass power p: median {np.median(power):.4f}, max |p| {np.abs(power).max():.4f} "
          f"({deep.sum()} pixels with tau > 0.1; X = {x1:.3f}, {x2:.3f})")
    p = round(float(np.median(power)), 3) + 0.0
    tau = 0.5 * (tau1 / x1**p + tau2 / x2**p)
    tau = tau[:np.flatnonzero(tau >= 0.0005)[-1] + 1]  # the table ends at its last non-zero value
    print(f"O2A_FIRST_PIXEL = {table[0]}  # {wave[table[0]]:.2f} A\nO2A_DEPTH = np.array([")
    for i in range(0, tau.size, 16):
        print("    " + ", ".join(f"{v:.3f}" for v in tau[i:i + 16]) + ",")
    print(f"])\nO2A_AIRMASS_POWER = {p}")
    refit_sky_continuum(files, wave, table)
    for x, r in ((x1, r1), (x2, r2)):
        print(f"X = {x:.3f}: model / ETC object counts with the current table, median in {BAND} A "
              f"{np.median(r[band]):.4f} (16-84%: {np.percentile(r[band], 16):.3f}-"
              f"{np.percentile(r[band], 84):.3f}), overall {np.median(r):.4f}")


if __name__ == "__main__":
    main()
