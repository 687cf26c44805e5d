"""Physics of the embedded LTE synthesis against published facts and textbook trends (no knob tuned to pass)."""
import numpy as np
import pandas as pd
import pytest
from astropy import constants as const
from scipy.special import voigt_profile

from specvit_core.spectra.atmosphere import model_atmosphere
from specvit_core.spectra.opacity import LINE_CROSS_SECTION, Composition, gas_state, ionization_fractions, \
    line_opacity
from specvit_core.spectra.synthesis import PASCHEN_EDGE, SynthesisSettings, Synthesizer, emergent_flux, \
    optical_depth, voigt

CAT = [8498.02, 8542.09, 8662.14]
NA = [8183.26, 8194.82]
SUN = (5777.0, 4.44, 0.0)


@pytest.fixture(scope="module")
def synth():
    return Synthesizer()


def weak_lines(synth, species, star=(5000.0, 4.5, 0.0), ew_range=(0.005, 0.03), n=5):
    """Wavelengths of ``n`` unblended-enough weak lines of ``species`` inside the MR window, spread in wavelength."""
    ew = synth.weak_line_equivalent_widths(*star)
    inside = (synth.lines.wave > 7150) & (synth.lines.wave < 8800)
    rows = np.flatnonzero((synth.lines.species == species) & (ew > ew_range[0]) & (ew < ew_range[1]) & inside)
    return synth.lines.wave[rows[np.linspace(0, rows.size - 1, n).astype(int)]]


def test_formal_solution_is_exact_for_a_linear_source_function():
    # Eddington-Barbier is exact for S = a + b tau: F = pi (a + 2b/3); the 3-point Gauss quadrature in mu is exact
    tau = np.geomspace(1e-8, 200.0, 400)[:, None] * np.ones((1, 2))
    a, b = 2.0, 3.0
    flux = emergent_flux(tau, a + b * tau)
    assert flux == pytest.approx(np.pi * (a + 2 * b / 3), rel=1e-6)
    assert emergent_flux(tau, np.full_like(tau, 5.0)) == pytest.approx(np.pi * 5.0, rel=1e-6)  # isothermal: pi B


def test_optical_depth_integrates_opacity_over_column_mass():
    mass = np.geomspace(1e-3, 1e2, 50)
    tau = optical_depth(np.full((50, 1), 0.4), mass)[:, 0]
    assert tau == pytest.approx(0.4 * mass, rel=1e-12)


def test_line_cross_section_is_pi_e2_over_me_c():
    expected = np.pi * const.e.esu.value**2 / (const.m_e.cgs.value * const.c.cgs.value)
    assert LINE_CROSS_SECTION == pytest.approx(expected, rel=1e-4)


def test_line_opacity_integrates_to_the_oscillator_strength(synth):
    # the opacity laid on the wavelength grid by one line integrates to its strength (gf-proportional) at each depth
    select = np.abs(synth.lines.wave - 8542.09) < 0.01
    one = synth.lines.select(select)
    atmosphere, gas, _, coarse_kappa = synth._setup(*SUN, None)
    tau = optical_depth(coarse_kappa, atmosphere.column_mass)
    grid = synth.line_opacity_grid(one, gas, coarse_kappa, tau)
    strength = line_opacity(one, gas, synth.settings.microturbulence).strength[0]
    forming = tau.min(axis=1) < 30
    integral = np.trapezoid(grid, synth.wave, axis=1)
    assert integral[forming] == pytest.approx(strength[forming], rel=0.01)
    # and doubling gf doubles it
    twice = one.__class__(**{**{f: getattr(one, f) for f in ("wave", "z", "ion", "chi", "fdamp", "gamma_rad")},
                             "loggf": one.loggf + np.log10(2.0)})
    assert line_opacity(twice, gas, 2.0).strength[0] == pytest.approx(2 * strength, rel=1e-12)


def test_voigt_wing_expansion_matches_scipy():
    x = np.linspace(-30, 30, 200_001)
    for gamma in (1e-4, 0.01, 0.05, 0.5):
        sigma, g = np.full_like(x, 0.04), np.full_like(x, gamma)
        assert np.max(np.abs(voigt(x, sigma, g) / voigt_profile(x, sigma, g) - 1)) < 0.005


def test_solar_calcium_triplet_equivalent_widths(synth):
    # the Sun's Ca II triplet equivalent widths are about 1.4, 3.6 and 2.6 A; within 20%
    for wave, observed in zip(CAT, (1.4, 3.6, 2.6)):
        assert synth.equivalent_width(*SUN, [wave]) == pytest.approx(observed, rel=0.20)


# Measured solar equivalent widths (mA) of the lines of 7100-8850 A that are a fair test of an LTE 1D synthesis,
# chosen by rules blind to the synthesized EW (tools/check_sun_equivalent_widths.py prints the full comparison):
# 20-80 mA, the Gaia-ESO list carries the line, no other list line within 0.2 A above 10% of its weak-line EW,
# > 10 A from the Ca II triplet. Wavelengths are the list's (within 0.03 A of the published ones), all components.
# Moore, Minnaert & Houtgast 1966, NBS Monograph 61 (revised Rowland table), column W: disk-centre intensity EWs,
# photographic (transcribed in github.com/vnp85/solar-disks-spectrum-atlas). High-excitation Si I lines weaken
# toward the limb, so their disk-centre EWs exceed the flux EWs synthesized here (expect Si I ratios below 1).
SOLAR_LINES_MMH66 = [  # species, list wavelengths (A), W (mA)
    ("Fe I", (7132.986,), 44), ("Fe I", (7142.517,), 44), ("Fe I", (7145.307,), 42),
    ("Fe I", (7151.470,), 24), ("Fe I", (7155.630,), 45), ("Fe I", (7219.682,), 53),
    ("Fe I", (7221.202,), 49), ("Fe I", (7228.696,), 29), ("Fe I", (7443.022,), 36),
    ("Fe I", (7710.363,), 70), ("Fe I", (7723.208,), 41), ("Fe I", (7751.109,), 46),
    ("Fe I", (7807.909,), 64), ("Fe I", (7912.866,), 40), ("Fe I", (7941.088,), 38),
    ("Fe I", (8028.313,), 70), ("Fe I", (8096.875,), 36), ("Fe I", (8365.632,), 51),
    ("Fe I", (8471.743,), 44), ("Fe I", (8481.981,), 22), ("Fe I", (8526.669,), 58),
    ("Fe I", (8571.805,), 36), ("Fe I", (8592.950,), 48), ("Fe I", (8698.706,), 20),
    ("Fe I", (8699.454,), 73), ("Fe I", (8713.188, 8713.208), 58),
    ("Si I", (7226.208,), 46), ("Si I", (7282.816,), 68), ("Si I", (7849.966, 7849.976), 66),
    ("Si I", (8443.970,), 32),
    ("Ti I", (7357.727,), 26), ("Ti I", (8382.531,), 29), ("Ti I", (8382.781,), 23),
    ("Ti I", (8396.897,), 23), ("Ti I", (8412.358,), 44), ("Ti I", (8426.507,), 43),
    ("Ti I", (8434.961,), 57), ("Ti I", (8435.653,), 52),
]
# Disk-integrated flux EWs, Melendez et al. 2014, ApJ 791, 14, Table 1 (EW-Sun; UVES), same rules; Al I 8772.87 fails
# them (blended in the list) and is left out.
SOLAR_LINES_MELENDEZ14 = [
    ("Ni I", (7797.580,), 78.6), ("Al I", (7835.309,), 43.6), ("Al I", (7836.134,), 57.7),
    ("Cu I", (7933.125,), 28.1),
]


@pytest.fixture(scope="module")
def solar_line_ratios():
    """Synthesized / measured EW of every tabulated solar line, microturbulence 1 km/s (the Sun's 1D value)."""
    sun = Synthesizer(SynthesisSettings(microturbulence=1.0))
    return pd.DataFrame([(species, sun.equivalent_width(*SUN, waves) * 1e3 / observed)
                         for species, waves, observed in SOLAR_LINES_MMH66 + SOLAR_LINES_MELENDEZ14],
                        columns=["species", "ratio"])


def test_solar_weak_line_equivalent_widths(solar_line_ratios):
    # every line the blind rules select counts (none is dropped after seeing its ratio): the median is within 10% of
    # the Sun's, Fe I's too, and most lines are within 20% (the rest scatter both ways, as log gf errors of the
    # list or blends in the real Sun would; measured: median 1.00, 34 of 42 within 20%)
    ratio = solar_line_ratios.ratio
    assert 0.9 < ratio.median() < 1.1
    assert 0.9 < ratio[solar_line_ratios.species == "Fe I"].median() < 1.1
    assert np.mean(np.abs(ratio - 1) <= 0.2) >= 0.7


def test_calcium_is_ionized_in_the_solar_photosphere():
    atmosphere = model_atmosphere(*SUN)
    gas = gas_state(atmosphere, Composition())
    k = np.argmin(np.abs(atmosphere.tau_rosseland - 1.0))
    neutral, single, _ = ionization_fractions(20, gas.temperature, gas.electron_density)[:, k]
    assert single > 0.99 and neutral < 0.01  # Ca II is the majority stage (Gray, ch. 1: the Ca I/Ca II balance)


@pytest.mark.parametrize("teff", [4500.0, 5000.0, 5500.0])
def test_calcium_triplet_strengthens_toward_giants(synth, teff):
    ews = [synth.equivalent_width(teff, logg, 0.0, CAT) for logg in (1.0, 2.5, 4.5)]
    assert ews[0] > ews[1] > ews[2], ews


def test_calcium_triplet_weakens_with_metallicity_and_matches_real_stars(synth):
    ew = [synth.equivalent_width(4500.0, 2.0, mh, CAT) for mh in (-2.0, -1.0, 0.0)]
    assert ew[0] < ew[1] < ew[2]
    # summed CaT EWs of real stars: ~6-8 A for solar-metallicity G dwarfs, 8-10 A for K giants, 2-4 A for giants at
    # [Fe/H] = -2 (the ranges of CaT index compilations such as Cenarro et al. 2001)
    assert 6.0 <= synth.equivalent_width(5500.0, 4.5, 0.0, CAT) <= 8.0
    assert 8.0 <= synth.equivalent_width(4500.0, 2.5, 0.0, CAT) <= 10.0
    assert 2.0 <= synth.equivalent_width(4500.0, 1.5, -2.0, CAT) <= 4.0


@pytest.mark.parametrize("teff", [3750.0, 4000.0, 4500.0])
def test_sodium_doublet_is_strong_in_cool_dwarfs(synth, teff):
    ews = [synth.equivalent_width(teff, logg, 0.0, NA) for logg in (1.0, 2.5, 4.0, 5.0)]
    assert np.all(np.diff(ews) > 0), ews
    assert ews[-1] > 2.5 * ews[0]


@pytest.mark.parametrize("species, z, teff", [("Ti I", 22, 5000.0), ("Fe I", 26, 6000.0), ("Ca I", 20, 5000.0)])
def test_weak_lines_of_mostly_ionized_neutrals_ignore_gravity(synth, species, z, teff):
    # a neutral minority species and the H- continuum both scale with n_e, so its weak lines barely change with
    # pressure (Gray, ch. 13): < 15% from log g 4.5 to 2.5 where the element is mostly ionized (checked: < 10% neutral
    # at tau_Ross = 0.1 in both stars). Fe I at 5000 K is not such a case: 58% of iron is neutral there in the dwarf.
    for logg in (4.5, 2.5):
        atmosphere = model_atmosphere(teff, logg, 0.0)
        gas = gas_state(atmosphere, Composition())
        k = np.argmin(np.abs(np.log10(atmosphere.tau_rosseland) + 1.0))
        assert ionization_fractions(z, gas.temperature, gas.electron_density)[0, k] < 0.10
    for wave in weak_lines(synth, species, (teff, 4.5, 0.0), n=4):
        ratio = synth.equivalent_width(teff, 2.5, 0.0, [wave]) / synth.equivalent_width(teff, 4.5, 0.0, [wave])
        assert abs(ratio - 1.0) < 0.15, (species, wave, ratio)


@pytest.mark.parametrize("species", ["Fe II", "Ti II"])
def test_weak_lines_of_ions_strengthen_toward_giants(synth, species):
    # a majority ion against a continuum ~ P_e ~ g^(1/3): stronger at low gravity
    for wave in weak_lines(synth, species, n=2):
        ratio = synth.equivalent_width(5000.0, 2.5, 0.0, [wave]) / synth.equivalent_width(5000.0, 4.5, 0.0, [wave])
        assert ratio > 2.0, (species, wave, ratio)


def test_paschen_jump_appears_in_hot_stars_only(synth):
    blue, red = np.searchsorted(synth.wave, [PASCHEN_EDGE - 3.0, PASCHEN_EDGE + 3.0])
    jumps = {teff: synth.spectrum(teff, 4.0, 0.0)[1][[blue, red]] for teff in (4000.0, 6250.0)}
    assert jumps[6250.0][1] / jumps[6250.0][0] > 1.01  # H I n = 3 bound-free opacity blueward of 8204 A
    assert abs(jumps[4000.0][1] / jumps[4000.0][0] - 1.0) < 0.005


def test_labels_outside_the_atmospheres_are_refused(synth):
    with pytest.raises(ValueError, match="T_eff = 9000 lies outside"):
        synth.spectrum(9000.0, 4.0, 0.0)
    with pytest.raises(ValueError, match="matches no line"):
        synth.equivalent_width(*SUN, [8500.0])
