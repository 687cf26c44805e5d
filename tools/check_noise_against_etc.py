"""Compare the noise model with outputs of the PFS exposure-time calculator (a developer check, not a test).

    .venv/bin/python tools/check_noise_against_etc.py --etc /path/to/pfs_etc_mr

The folder holds ETC outputs for the MR red arm (one 900 s exposure, new moon, AB = 18 flat source) named
``etc_mr_see<seeing>_za<zenith>_fa0_900s.txt`` with columns wave_nm, object counts, noise variance, sky counts. The
constants of ``specvit_core.noise`` were fitted to two such files; this script prints how far the model is from
each (per-pixel ratios, single-exposure SNR) and the Table 2 SNR beside the paper's values (a comparison).
"""
import argparse
import re
from pathlib import Path

import numpy as np

from specvit_core import noise
from specvit_core.instrument import mr_wavelength
from specvit_core.paper import SNR_BY_MAG as PAPER_SNR

ETC_NAME = re.compile(r"etc_mr_see(?P<seeing>[\d.]+)_za(?P<za>[\d.]+)_fa0_900s\.txt$")


def percentiles(ratio):
    return " ".join(f"{v:.3f}" for v in np.percentile(ratio, [2.5, 16, 50, 84, 97.5]))


def compare(path: Path, wave: np.ndarray, flat: np.ndarray) -> None:
    m = ETC_NAME.search(path.name)
    etc = np.loadtxt(path)
    cond = dict(seeing=float(m["seeing"]), zenith_angle=float(m["za"]), field_angle=0.0, moon_zenith=90.0,
                moon_target=180.0, moon_phase=0.0)
    b = noise.photon_budget(wave, flat, np.array([18.0]), cond, n_exposures=1)
    obj, sky = b["object"][0], b["sky"][0]
    background = b["variance"][0] - obj + noise.etc_extra_variance(sky)  # the ETC's own background
    print(f"{path.name}  (model / ETC per pixel, percentiles 2.5 16 50 84 97.5)")
    print(f"  object counts  {percentiles(obj / etc[:, 1])}")
    print(f"  sky counts     {percentiles(sky / etc[:, 3])}")
    print(f"  background var {percentiles(background / etc[:, 2])}")
    snr_model = np.median(obj / np.sqrt(obj + background))
    snr_etc = np.median(etc[:, 1] / np.sqrt(etc[:, 1] + etc[:, 2]))
    print(f"  single-exposure median SNR at AB = 18: model {snr_model:.2f}, ETC {snr_etc:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--etc", type=Path, required=True, help="folder of ETC output files")
    parser.add_argument("--n", type=int, default=2000, help="Table 2 draws for the SNR comparison")
    args = parser.parse_args()
    files = sorted(p for p in args.etc.glob("*.txt") if ETC_NAME.search(p.name))
    if not files:
        parser.error(f"no ETC files named like etc_mr_see1.0_za22.5_fa0_900s.txt in {args.etc}")
    wave = mr_wavelength()
    flat = (noise.C_ANGSTROM / wave**2)[None]  # flat f_nu
    for path in files:
        compare(path, wave, flat)
    cond = noise.draw_conditions(np.random.default_rng(1), args.n)
    print(f"Table 2 conditions, {args.n} draws, flat f_nu source: median SNR (paper)")
    for mag, target in PAPER_SNR.items():
        f, s = noise.observe(wave, np.repeat(flat, args.n, 0), np.full(args.n, mag), cond)
        print(f"  i = {mag:4.1f}: {np.median(np.median(f / s, axis=1)):6.2f} ({target})")


if __name__ == "__main__":
    main()
