"""Compare the synthesized Sun's line equivalent widths with measured solar ones (a developer check, not a test).

Measured equivalent widths (mA) of single-species solar lines in 7100-8850 A, air wavelengths as published:

* ``MMH_1966``: Moore, Minnaert & Houtgast 1966, *The Solar Spectrum 2935 A to 8770 A*, NBS Monograph 61 (the
  revised Rowland table), column W. These are **disk-centre intensity** equivalent widths (the Utrecht photometric
  atlas), photographic, integers in mA. Read from the transcription in the public repository
  ``vnp85/solar-disks-spectrum-atlas`` (PHP source defining ``get_basic_and_additional_wavelengths``, entries
  ``awl_notImportant(wavelength, W_mA, identification)``); lines identified there with one species only.
* ``MELENDEZ_2014``: Melendez et al. 2014, ApJ 791, 14, Table 1, column EW-Sun: **disk-integrated flux** (UVES,
  R ~ 110 000, reflected sunlight), as shipped in ``ajwheeler/Korg.jl``,
  ``misc/Tutorial notebooks/EW fitting/Table 1.dat``.

Where both measure a clean line they agree within a few per cent (Ni I 7727.6: 94 vs 93.2; Ni I 7797.6: 79 vs 78.6;
K I 7699.0: 154 vs 157), but high-excitation lines of minority species weaken toward the limb, so disk-centre EWs
of Si I (chi ~ 6 eV) and C I exceed flux EWs (C I 7111.5: 23 vs 14.3).

Each line is matched to the Gaia-ESO list (same species within 0.03 A; its components, same species within
0.1 A, are summed) and its EW synthesized alone with ``Synthesizer.equivalent_width`` at T_eff 5777 K, log g 4.44,
[M/H] 0. A line is *clean* (a fair test of the synthesis) when (rules blind to the synthesized EW; only the
weak-line estimate enters, to identify the line and find blends):

* 20 <= W <= 80 mA (weak to moderate: little dependence on damping constants and the chromosphere),
* the list's line makes the observed feature (its weak-line EW is at least 0.3 W; else the list lacks the carrier),
* no other line within 0.2 A (one solar line width) has a weak-line EW above 10% of its own,
* it lies more than 10 A from a Ca II triplet line (observed EWs there are measured against the wing),
* its species is not NLTE-dominated in the Sun (O I triplet, K I resonance line: excluded).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python tools/check_sun_equivalent_widths.py [--microturbulence 1.0]

It prints every line (ratio synthesis / measured, and why a line is not clean) and the median ratio of the clean
lines per species and overall. Nothing in the synthesis is fitted to these numbers.
"""
import argparse

import numpy as np

from specvit_core.spectra.synthesis import SynthesisSettings, Synthesizer

SUN = (5777.0, 4.44, 0.0)
CA_TRIPLET = (8498.02, 8542.09, 8662.14)
NLTE_DOMINATED = ("O I", "K I")

# fmt: off
#: (species, air wavelength A, disk-centre W mA): Moore, Minnaert & Houtgast 1966, NBS Monograph 61.
MMH_1966 = (
    ("Fe I", 7132.985, 44), ("Fe I", 7142.517, 44), ("Fe I", 7145.312, 42), ("Fe I", 7151.464, 24),
    ("Fe I", 7155.634, 45), ("Fe I", 7219.680, 53), ("Fe I", 7221.204, 49), ("Fe I", 7228.700, 29),
    ("Fe I", 7443.026, 36), ("Fe I", 7710.367, 70), ("Fe I", 7723.210, 41), ("Fe I", 7748.284, 103),
    ("Fe I", 7751.116, 46), ("Fe I", 7780.568, 102), ("Fe I", 7807.916, 64), ("Fe I", 7912.870, 40),
    ("Fe I", 7941.096, 38), ("Fe I", 7994.488, 50), ("Fe I", 8028.318, 70), ("Fe I", 8075.158, 33),
    ("Fe I", 8096.874, 36), ("Fe I", 8365.640, 51), ("Fe I", 8471.744, 44), ("Fe I", 8481.986, 22),
    ("Fe I", 8490.994, 34), ("Fe I", 8526.676, 58), ("Fe I", 8571.807, 36), ("Fe I", 8592.969, 48),
    ("Fe I", 8698.717, 20), ("Fe I", 8699.461, 73), ("Fe I", 8713.208, 58), ("Fe I", 8757.199, 91),
    ("Fe I", 8763.978, 99),
    ("Si I", 7165.578, 93), ("Si I", 7226.208, 46), ("Si I", 7282.844, 68), ("Si I", 7289.188, 116),
    ("Si I", 7405.790, 108), ("Si I", 7415.958, 118), ("Si I", 7760.641, 17), ("Si I", 7800.000, 61),
    ("Si I", 7849.984, 66), ("Si I", 7918.383, 100), ("Si I", 7932.351, 90), ("Si I", 8443.975, 32),
    ("Si I", 8501.553, 34), ("Si I", 8502.228, 50), ("Si I", 8536.163, 58), ("Si I", 8556.797, 134),
    ("Si I", 8728.024, 107), ("Si I", 8742.466, 97), ("Si I", 8752.025, 94),
    ("Ti I", 7344.759, 40), ("Ti I", 7357.739, 26), ("Ti I", 7614.516, 8), ("Ti I", 8080.582, 28),
    ("Ti I", 8382.541, 29), ("Ti I", 8382.781, 23), ("Ti I", 8396.900, 23), ("Ti I", 8412.356, 44),
    ("Ti I", 8426.514, 43), ("Ti I", 8434.968, 57), ("Ti I", 8435.655, 52),
    ("Fe II", 7222.397, 27), ("Fe II", 7655.48, 15), ("Fe II", 7711.731, 48),
    ("Ca I", 7148.150, 157), ("Ca I", 7202.208, 124), ("Ca I", 7326.160, 136), ("Ca I", 8583.310, 22),
    ("Mg I", 7387.700, 118), ("Mg I", 7657.606, 142), ("Mg I", 7659.91, 31), ("Mg I", 7722.64, 16),
    ("Mg I", 7811.16, 46), ("Mg I", 7930.819, 44), ("Mg I", 8213.041, 157), ("Mg I", 8305.617, 31),
    ("Mg I", 8310.252, 60), ("Mg I", 8712.701, 57), ("Mg I", 8717.833, 105),
)

#: (species, air wavelength A, disk-integrated EW mA): Melendez et al. 2014, ApJ 791, 14, Table 1 (EW-Sun).
MELENDEZ_2014 = (
    ("C I", 7111.47, 14.3), ("C I", 7113.179, 23.6), ("O I", 7771.944, 71.1), ("O I", 7774.166, 63.7),
    ("O I", 7775.388, 51.1), ("K I", 7698.974, 157.0), ("Ni I", 7727.624, 93.2), ("Ni I", 7797.586, 78.6),
    ("Al I", 7835.309, 43.6), ("Al I", 7836.134, 57.7), ("Cu I", 7933.13, 28.1), ("S I", 8693.93, 12.7),
    ("S I", 8694.62, 28.6), ("Al I", 8772.866, 73.9), ("Al I", 8773.896, 92.3),
)
# fmt: on


def match_components(lines, weak_mA, species, wave):
    """Indices of the list's line of ``species`` nearest ``wave`` (within 0.03 A) and its components (0.1 A)."""
    same = lines.species == species
    near = np.flatnonzero(same & (np.abs(lines.wave - wave) < 0.03))
    if near.size == 0:
        return near
    centre = lines.wave[near[np.argmax(weak_mA[near])]]
    return np.flatnonzero(same & (np.abs(lines.wave - centre) < 0.1) & (weak_mA > 0.01 * weak_mA[near].max()))


def why_not_clean(lines, weak_mA, species, wave, observed_mA, components) -> str:
    """The first selection rule (module docstring) that the line fails, or '' if it is clean."""
    if species in NLTE_DOMINATED:
        return "NLTE-dominated species"
    if not 20.0 <= observed_mA <= 80.0:
        return "W outside 20-80 mA"
    if components.size == 0 or weak_mA[components].sum() < 0.3 * observed_mA:
        return "the list lacks the carrier (no line of this species, or far too weak)"
    own = weak_mA[components].sum()
    others = np.setdiff1d(np.flatnonzero(np.abs(lines.wave - wave) < 0.2), components)
    if np.any(weak_mA[others] > 0.1 * own):
        return "blended in the list within 0.2 A"
    if np.min(np.abs(np.subtract(CA_TRIPLET, wave))) < 10.0:
        return "in a Ca II triplet wing"
    return ""


def compare(synthesizer: Synthesizer, table, source: str) -> list[tuple]:
    """Rows (source, species, wave, observed, synthesized, reason-not-clean) for one table of measured EWs."""
    lines = synthesizer.lines
    weak_mA = synthesizer.weak_line_equivalent_widths(*SUN) * 1e3
    rows = []
    for species, wave, observed in table:
        components = match_components(lines, weak_mA, species, wave)
        reason = why_not_clean(lines, weak_mA, species, wave, observed, components)
        ours = synthesizer.equivalent_width(*SUN, lines.wave[components]) * 1e3 if components.size else np.nan
        rows.append((source, species, wave, observed, ours, reason))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--microturbulence", type=float, default=1.0, help="km/s for the Sun (default 1.0)")
    args = parser.parse_args(argv)
    synthesizer = Synthesizer(SynthesisSettings(microturbulence=args.microturbulence))
    rows = compare(synthesizer, MMH_1966, "MMH66 centre") + compare(synthesizer, MELENDEZ_2014, "Mel14 flux")
    print("source        species  wave_A    W_obs  W_synth  ratio  not clean because")
    for source, species, wave, observed, ours, reason in rows:
        print(f"{source:13s} {species:6s} {wave:9.3f} {observed:6.1f} {ours:8.1f} {ours / observed:6.2f}  {reason}")
    clean = [(species, ours / observed) for _, species, _, observed, ours, reason in rows if not reason]
    for species in dict.fromkeys(s for s, _ in clean):
        ratios = [r for s, r in clean if s == species]
        print(f"{species:6s} clean lines {len(ratios):2d}: median ratio {np.median(ratios):.3f}, "
              f"within 20%: {sum(abs(r - 1) <= 0.2 for r in ratios)}")
    ratios = [r for _, r in clean]
    print(f"all clean lines {len(ratios)}: median ratio {np.median(ratios):.3f}, "
          f"16-84% range {np.percentile(ratios, 16):.2f}-{np.percentile(ratios, 84):.2f} "
          f"(microturbulence {args.microturbulence} km/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
