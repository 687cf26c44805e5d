"""Atomic and molecular data for the 7000-9000 A window (facts, rounded from standard compilations).

Wavelengths are laboratory air wavelengths in Angstrom; ``loggf`` the oscillator strength times the statistical
weight of the lower level; ``chi`` the excitation energy of the lower level in eV. The strong, gravity-sensitive
features are listed line by line; the hundreds of weak Fe I, Ti I, Si I, Ca I, Ni I and Cr I lines of the window
are represented by a seeded statistical forest (``weak_line_forest``), labelled as such wherever it is shown.
"""
from __future__ import annotations

import numpy as np

#: element: (solar abundance A(X) = log eps with H = 12, first ionization energy eV, second ionization energy eV,
#:           partition functions U_I, U_II, U_III at ~5000 K, atomic mass in amu)
ELEMENTS = {
    "H": (12.00, 13.598, np.inf, 2.0, 1.0, 1.0, 1.008),
    "O": (8.69, 13.618, 35.12, 9.0, 4.0, 9.0, 16.00),
    "Na": (6.24, 5.139, 47.29, 2.0, 1.0, 6.0, 22.99),
    "Mg": (7.60, 7.646, 15.04, 1.0, 2.0, 1.0, 24.31),
    "Si": (7.51, 8.152, 16.35, 9.5, 5.8, 1.0, 28.09),
    "K": (5.08, 4.341, 31.63, 2.0, 1.0, 6.0, 39.10),
    "Ca": (6.34, 6.113, 11.87, 1.1, 2.1, 1.0, 40.08),
    "Ti": (4.95, 6.828, 13.58, 28.0, 55.0, 30.0, 47.87),
    "Cr": (5.64, 6.767, 16.49, 9.0, 7.0, 25.0, 52.00),
    "Fe": (7.50, 7.902, 16.19, 28.0, 42.0, 25.0, 55.85),
    "Ni": (6.22, 7.640, 18.17, 30.0, 10.0, 20.0, 58.69),
}

#: Strong and diagnostic lines: (wavelength A, element, ionization stage 1=neutral 2=singly ionized, chi eV, log gf,
#: damping class, log10 van der Waals enhancement over the model's default). Damping classes: "vdw" (van der Waals,
#: scales with gas pressure), "stark" (hydrogen, linear Stark effect, scales with electron pressure). The Na I
#: 8183/8195 lines have large van der Waals constants (their wings dominate cool-dwarf spectra).
STRONG_LINES = [
    # Ca II infrared triplet
    (8498.02, "Ca", 2, 1.692, -1.416, "vdw", 0.0),
    (8542.09, "Ca", 2, 1.700, -0.463, "vdw", 0.0),
    (8662.14, "Ca", 2, 1.692, -0.723, "vdw", 0.0),
    # Na I doublet
    (8183.26, "Na", 1, 2.102, 0.237, "vdw", 0.8),
    (8194.82, "Na", 1, 2.104, 0.492, "vdw", 0.8),
    # K I resonance doublet
    (7664.90, "K", 1, 0.000, 0.135, "vdw", 0.0),
    (7698.96, "K", 1, 0.000, -0.168, "vdw", 0.0),
    # Mg I
    (8806.76, "Mg", 1, 4.346, -0.137, "vdw", 0.0),
    (8736.02, "Mg", 1, 5.946, -0.340, "vdw", 0.0),
    (8717.83, "Mg", 1, 5.933, -0.930, "vdw", 0.0),
    (7387.69, "Mg", 1, 5.753, -1.000, "vdw", 0.0),
    # O I triplet
    (7771.94, "O", 1, 9.146, 0.369, "vdw", 0.0),
    (7774.17, "O", 1, 9.146, 0.223, "vdw", 0.0),
    (7775.39, "O", 1, 9.146, 0.002, "vdw", 0.0),
    # Fe I
    (7495.07, "Fe", 1, 4.220, -0.100, "vdw", 0.0),
    (7511.02, "Fe", 1, 4.178, 0.100, "vdw", 0.0),
    (7748.27, "Fe", 1, 2.949, -1.750, "vdw", 0.0),
    (7780.56, "Fe", 1, 4.473, -0.040, "vdw", 0.0),
    (8327.05, "Fe", 1, 2.198, -1.525, "vdw", 0.0),
    (8387.77, "Fe", 1, 2.176, -1.493, "vdw", 0.0),
    (8468.41, "Fe", 1, 2.223, -2.072, "vdw", 0.0),
    (8514.07, "Fe", 1, 2.198, -2.229, "vdw", 0.0),
    (8611.80, "Fe", 1, 2.845, -1.900, "vdw", 0.0),
    (8674.75, "Fe", 1, 2.831, -1.800, "vdw", 0.0),
    (8688.62, "Fe", 1, 2.176, -1.212, "vdw", 0.0),
    (8757.19, "Fe", 1, 2.845, -2.070, "vdw", 0.0),
    (8824.22, "Fe", 1, 2.198, -1.540, "vdw", 0.0),
    # Ti I
    (8377.86, "Ti", 1, 0.826, -1.600, "vdw", 0.0),
    (8412.36, "Ti", 1, 0.818, -1.400, "vdw", 0.0),
    (8426.50, "Ti", 1, 0.826, -1.200, "vdw", 0.0),
    (8434.96, "Ti", 1, 0.848, -0.830, "vdw", 0.0),
    # Si I
    (7405.77, "Si", 1, 5.614, -0.820, "vdw", 0.0),
    (7415.95, "Si", 1, 5.610, -0.730, "vdw", 0.0),
    (7423.50, "Si", 1, 5.619, -0.580, "vdw", 0.0),
    (7932.35, "Si", 1, 5.964, -0.370, "vdw", 0.0),
    (7944.00, "Si", 1, 5.984, -0.210, "vdw", 0.0),
    (8728.01, "Si", 1, 6.181, -0.360, "vdw", 0.0),
    (8742.45, "Si", 1, 5.871, -0.510, "vdw", 0.0),
    (8752.01, "Si", 1, 5.871, -0.400, "vdw", 0.0),
    # Ca I
    (7148.15, "Ca", 1, 2.709, 0.137, "vdw", 0.0),
    (7202.20, "Ca", 1, 2.709, -0.262, "vdw", 0.0),
    (7326.15, "Ca", 1, 2.933, -0.208, "vdw", 0.0),
]


PASCHEN_UPPER = range(11, 21)  # upper levels of the Paschen lines inside the window


def paschen_lines(n_upper=PASCHEN_UPPER) -> list[tuple]:
    """Hydrogen Paschen lines n -> 3 inside the window (Rydberg formula, air wavelengths; f ~ n^-3 asymptotics)."""
    rydberg_h = 109677.58  # cm^-1
    lines = []
    for n in n_upper:
        sigma = rydberg_h * (1 / 9 - 1 / n**2)  # vacuum wavenumber
        wave_vac = 1e8 / sigma
        wave_air = wave_vac / (1.0 + 2.735182e-4 + 131.4182 / wave_vac**2 + 2.76249e8 / wave_vac**4)
        f_abs = 0.00631 * (10.0 / n) ** 3  # absorption oscillator strength 3 -> n, scaled from f(3,10)
        lines.append((wave_air, "H", 1, 12.088, np.log10(18.0 * f_abs), "stark", 0.0))
    return lines


#: TiO band heads (A) of the gamma and delta systems in the window, with relative strengths; bands degrade to the red.
TIO_BAND_HEADS = [
    (7053.6, 1.00), (7087.6, 0.80), (7125.6, 0.70), (7589.3, 0.55), (7666.3, 0.45),
    (8205.8, 0.20), (8432.3, 0.40), (8442.0, 0.35), (8451.7, 0.30), (8859.6, 0.50),
]

#: Weak-line forest: species mix of the neutral metal lines that dominate the red spectra of FGK stars.
FOREST_SPECIES = {"Fe": 0.55, "Ti": 0.10, "Si": 0.08, "Ca": 0.07, "Ni": 0.12, "Cr": 0.08}


def weak_line_forest(lines_per_angstrom: float, loggf_mean: float = -4.0, loggf_width: float = 0.9,
                     wave_min=7000.0, wave_max=9000.0, seed=20250101) -> list[tuple]:
    """A seeded statistical stand-in for the weak metal lines of the window (not real line data).

    Wavelengths are uniform, species drawn with ``FOREST_SPECIES`` weights, lower-level excitation energies
    uniform in 0-5 eV (1.5-6 eV for Si), and log gf normal around ``loggf_mean + 0.3 chi`` (high-excitation lines
    need larger gf to be seen, as in real line lists) with width ``loggf_width``, clipped to [-7, -1]. All are
    neutral (stage 1): ionized metal lines are rare in this window (about a dozen Fe II lines). The density used by
    ``LineModel`` (2.125 per A) sets the log g information of the templates; it was calibrated on the paper's
    Fisher ceiling (chapter 06).
    """
    if lines_per_angstrom < 0:
        raise ValueError(f"lines_per_angstrom, {lines_per_angstrom}, must be >= 0")
    rng = np.random.default_rng(seed)
    n = int(round(lines_per_angstrom * (wave_max - wave_min)))
    names = list(FOREST_SPECIES)
    species = rng.choice(names, size=n, p=np.array(list(FOREST_SPECIES.values())))
    waves = np.sort(rng.uniform(wave_min, wave_max, size=n))
    chi = rng.uniform(0.0, 5.0, size=n)
    chi[species == "Si"] = rng.uniform(1.5, 6.0, size=int(np.sum(species == "Si")))
    loggf = np.clip(rng.normal(loggf_mean + 0.3 * chi, loggf_width, size=n), -7.0, -1.0)
    return [(float(w), str(s), 1, float(c), float(g), "vdw", 0.0) for w, s, c, g in zip(waves, species, chi, loggf)]
