"""LTE opacities of a stellar photosphere in the red (7000-9000 A): populations, continuum, line strength and width.

Everything is per gram of stellar material and per depth of a model atmosphere (:mod:`.atmosphere`).

* Populations: the gas is counted from the model's gas pressure and electron density (``n = P / kT``); nuclei are
  shared out by the solar abundances (Asplund et al. 2009) scaled with [M/H] (and [alpha/M] for the alpha
  elements); ionization by the Saha equation with the model's electron density and temperature-dependent partition
  functions (Irwin 1981); excitation by the Boltzmann factor. Molecules (H2, CO, TiO) are not formed: in the coolest
  dwarfs (T_eff <~ 4000 K) this overestimates atomic hydrogen and the metals in the upper layers.
* Continuum (Gray, *The Observation and Analysis of Stellar Photospheres*, 3rd ed., ch. 8): H- bound-free (Wishart
  1979 fit), H- free-free (Bell & Berrington 1987 fit), H I bound-free (hydrogenic, from the level whose edge lies
  redward of the wavelength, so the Paschen jump at 8204 A appears) and free-free, Thomson scattering by electrons
  and Rayleigh scattering by H I (Dalgarno), all with stimulated emission where it applies. Scattering is treated
  as absorption (source function = Planck), a small approximation at these wavelengths, where H- dominates.
* Line strength: ``kappa_line = (pi e^2 / m_e c) gf (n_stage / U) exp(-chi / kT) (1 - exp(-h nu / kT)) lambda^2 / c``
  integrated over the profile.
* Line width: thermal + microturbulent Doppler width; radiative damping from the line list (classical value where
  it has none); van der Waals broadening by H and He from the ABO theory (Anstee & O'Mara 1995; Barklem, Piskunov &
  O'Mara 2000) where the list gives sigma.alpha, from a tabulated gamma_6 at 10,000 K, or Unsoeld's approximation
  times the list's enhancement factor; quadratic Stark broadening by the usual approximation
  ``gamma_4 = 1e-8 n_e n_eff^5`` (Cowley 1971).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import constants as const
from scipy.special import gamma as gamma_function

from .atmosphere import Atmosphere
from .atomic import ALPHA_ELEMENTS, ATOMIC_MASS, ELEMENTS, SOLAR_ABUNDANCES, LineList, ionization_energy, \
    partition_function

K_B = const.k_B.cgs.value
K_B_EV = const.k_B.to_value("eV/K")
H_PLANCK = const.h.cgs.value
C_CGS = const.c.cgs.value
AMU = const.u.cgs.value
BOHR_RADIUS = const.a0.cgs.value
HC_EV_ANGSTROM = (const.h * const.c).to_value("eV Angstrom")  # 12398.4 eV A
SAHA_CONSTANT = 2.4146830e15  # (2 pi m_e k / h^2)^(3/2) in cm^-3 K^-3/2
LINE_CROSS_SECTION = 0.0265400  # pi e^2 / (m_e c), cm^2 Hz
THOMSON = const.sigma_T.cgs.value
HYDROGEN_IONIZATION = 13.598  # eV
H_MINUS_BINDING = 0.754  # eV
RYDBERG_HYDROGEN = 109677.58  # cm^-1
AIR_TO_VACUUM = 1.00027  # refractive index of air near 8000 A
LYMAN_EDGE = 1e8 / RYDBERG_HYDROGEN / AIR_TO_VACUUM  # A; the H I level-n ionization edges lie at n^2 times this
NEGLIGIBLE_OPACITY = 1e-30  # cm^2/g A; continuum opacities are > 1e-4 cm^2/g in these photospheres
HE_BROADENING_RATIO = 0.41336  # van der Waals width per He atom relative to per H atom (polarizabilities)


@dataclass(frozen=True)
class Composition:
    """Number abundances of the elements relative to hydrogen for one [M/H] and [alpha/M].

    Parameters
    ----------
    mh : float
        Metallicity [M/H], dex.
    alpha_m : float
        Alpha enhancement [alpha/M], dex (applied to :data:`~.atomic.ALPHA_ELEMENTS`).
    """

    mh: float = 0.0
    alpha_m: float = 0.0

    def abundance(self, symbol: str) -> float:
        """N(X) / N(H) with the solar value scaled by [M/H] (+ [alpha/M] for the alpha elements; not for H, He).

        Parameters
        ----------
        symbol : str
            Element symbol, e.g. ``"Fe"``.

        Returns
        -------
        float
            Number ratio to hydrogen.

        Raises
        ------
        KeyError
            If the element has no solar abundance (Tc, Pm, Po-Ac, Pa, or not a symbol).
        """
        log_eps = SOLAR_ABUNDANCES[symbol] - 12.0
        if symbol not in ("H", "He"):
            log_eps += self.mh + (self.alpha_m if symbol in ALPHA_ELEMENTS else 0.0)
        return 10.0**log_eps

    def nuclei_per_hydrogen(self) -> float:
        """Number of nuclei of all elements per hydrogen nucleus.

        Returns
        -------
        float
            Sum of N(X) / N(H) over the elements with a solar abundance (about 1.085 for the Sun).
        """
        return sum(self.abundance(s) for s in SOLAR_ABUNDANCES)

    def mass_per_hydrogen(self) -> float:
        """Mass of the gas per hydrogen nucleus.

        Returns
        -------
        float
            Mass, g.
        """
        return AMU * sum(self.abundance(s) * ATOMIC_MASS[s] for s in SOLAR_ABUNDANCES if s in ATOMIC_MASS)


@dataclass(frozen=True)
class Gas:
    """Number densities of one model atmosphere and its density; arrays of shape (n_depth,).

    Parameters
    ----------
    temperature : ndarray
        Temperature, K.
    electron_density : ndarray
        Electron number density, cm^-3.
    hydrogen_density : ndarray
        Number density of all hydrogen nuclei, cm^-3.
    neutral_hydrogen : ndarray
        Number density of neutral hydrogen atoms, cm^-3.
    helium_density : ndarray
        Number density of helium nuclei, cm^-3.
    density : ndarray
        Mass density, g cm^-3.
    composition : Composition
        The abundances the densities were computed for.
    """

    temperature: np.ndarray
    electron_density: np.ndarray
    hydrogen_density: np.ndarray  # all hydrogen nuclei
    neutral_hydrogen: np.ndarray
    helium_density: np.ndarray
    density: np.ndarray
    composition: Composition


def saha_ratio(z: int, ion: int, temperature: np.ndarray, electron_density: np.ndarray) -> np.ndarray:
    """n(ion + 1) / n(ion) from the Saha equation, with partition functions and the ionization energy of ``ion``.

    Parameters
    ----------
    z : int
        Atomic number.
    ion : int
        Ionization stage of the lower species (1 = neutral).
    temperature : ndarray, shape (n_depth,)
        Temperature, K.
    electron_density : ndarray, shape (n_depth,)
        Electron number density, cm^-3.

    Returns
    -------
    ndarray, shape (n_depth,)
        Population ratio; 0 where the table has no stage ``ion + 1``.

    Raises
    ------
    ValueError
        If the species is not in the partition-function table.
    """
    chi = ionization_energy(z, ion)
    if not np.isfinite(chi):  # the table has no higher stage: treat it as not formed
        return np.zeros_like(temperature)
    u_low = partition_function(z, ion, temperature)
    u_high = partition_function(z, ion + 1, temperature)
    return (SAHA_CONSTANT * temperature**1.5 * 2.0 * u_high / u_low / electron_density
            * np.exp(-chi / (K_B_EV * temperature)))


def ionization_fractions(z: int, temperature: np.ndarray, electron_density: np.ndarray) -> np.ndarray:
    """Fractions of an element in the neutral, singly and doubly ionized stages (higher stages neglected).

    Parameters
    ----------
    z : int
        Atomic number.
    temperature : ndarray, shape (n_depth,)
        Temperature, K.
    electron_density : ndarray, shape (n_depth,)
        Electron number density, cm^-3.

    Returns
    -------
    ndarray, shape (3, n_depth)
        Fractions of stages I, II, III; they sum to 1 (stage III is 0 for hydrogen).

    Raises
    ------
    ValueError
        If the species is not in the partition-function table.
    """
    r1 = saha_ratio(z, 1, temperature, electron_density)
    if z == 1:
        return np.stack([1.0 / (1.0 + r1), r1 / (1.0 + r1), np.zeros_like(r1)])
    r2 = saha_ratio(z, 2, temperature, electron_density)
    neutral = 1.0 / (1.0 + r1 + r1 * r2)
    return np.stack([neutral, neutral * r1, neutral * r1 * r2])


def gas_state(atmosphere: Atmosphere, composition: Composition) -> Gas:
    """Number densities of hydrogen, helium and electrons and the mass density at every depth of ``atmosphere``.

    Parameters
    ----------
    atmosphere : Atmosphere
        The model atmosphere (gas pressure, electron density, temperature).
    composition : Composition
        Abundances of the gas.

    Returns
    -------
    Gas
        Densities per depth; n_e is capped at that of a fully ionized H + He gas.
    """
    temperature = atmosphere.temperature
    particles = atmosphere.gas_pressure / (K_B * temperature)
    # the emulator can return more electrons than a fully ionized H + He gas has (deep layers of its extrapolated
    # hot, low-gravity corner): hold n_e at that limit so that the nuclei stay positive
    y = composition.abundance("He")
    n_e = np.minimum(atmosphere.electron_density, particles * (1 + 2 * y) / (2 + 3 * y))
    nuclei = particles - n_e
    n_h = nuclei / composition.nuclei_per_hydrogen()
    neutral = n_h * ionization_fractions(1, temperature, n_e)[0]
    return Gas(temperature=temperature, electron_density=n_e, hydrogen_density=n_h, neutral_hydrogen=neutral,
               helium_density=n_h * composition.abundance("He"), density=n_h * composition.mass_per_hydrogen(),
               composition=composition)


def continuum_opacity(wave: np.ndarray, gas: Gas) -> np.ndarray:
    """Continuous opacity per gram: H- bound-free and free-free, H I bound-free and free-free, Thomson, Rayleigh.

    Parameters
    ----------
    wave : array_like, shape (n_wave,)
        Wavelengths, Angstrom (air or vacuum alike at this precision).
    gas : Gas
        Populations of the atmosphere (:func:`gas_state`).

    Returns
    -------
    ndarray, shape (n_depth, n_wave)
        Opacity, cm^2/g.
    """
    lam = np.asarray(wave, dtype=float)[None, :]
    theta = (5040.0 / gas.temperature)[:, None]
    p_e = (gas.electron_density * K_B * gas.temperature)[:, None]
    stimulated = 1.0 - 10.0 ** (-theta * HC_EV_ANGSTROM / lam)
    # H- bound-free: Wishart (1979) cross-section, Gray eq. 8.11-8.12 (per neutral H atom)
    a = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14, -1.39568e-18, 2.78701e-23)
    alpha_bf = np.polynomial.polynomial.polyval(lam, a) * 1e-18
    h_minus_bf = 4.158e-10 * alpha_bf * p_e * theta**2.5 * 10.0 ** (H_MINUS_BINDING * theta) * stimulated
    # H- free-free: Bell & Berrington (1987) fit, Gray eq. 8.13 (stimulated emission included)
    log_lam, log_theta = np.log10(lam), np.log10(theta)
    f0 = np.polynomial.polynomial.polyval(log_lam, (-2.2763, -1.6850, 0.76661, -0.053346))
    f1 = np.polynomial.polynomial.polyval(log_lam, (15.2827, -9.2846, 1.99381, -0.142631))
    f2 = np.polynomial.polynomial.polyval(log_lam, (-197.789, 190.266, -67.9775, 10.6913, -0.625151))
    h_minus_ff = 1e-26 * p_e * 10.0 ** (f0 + f1 * log_theta + f2 * log_theta**2)
    # H I bound-free (hydrogenic, Gaunt factor 1) from the lowest level whose edge lies redward, plus free-free
    alpha0 = 1.0449e-26 * lam**3
    n0 = np.ceil(np.sqrt(lam / LYMAN_EDGE))  # n0 = 3 below the Paschen edge (9 x LYMAN_EDGE = 8203.6 A), 4 above
    levels = sum(10.0 ** (-theta * HYDROGEN_IONIZATION * (1.0 - 1.0 / (n0 + k) ** 2)) / (n0 + k) ** 3 for k in range(3))
    tail = np.log10(np.e) / (2 * theta * HYDROGEN_IONIZATION) * (
        10.0 ** (-theta * HYDROGEN_IONIZATION * (1.0 - 1.0 / (n0 + 3) ** 2)) - 10.0 ** (-theta * HYDROGEN_IONIZATION))
    h_bf = alpha0 * (levels + tail) * stimulated
    h_ff = alpha0 * np.log10(np.e) / (2 * theta * HYDROGEN_IONIZATION) * 10.0 ** (-theta * HYDROGEN_IONIZATION) * stimulated
    rayleigh = 5.799e-13 / lam**4 + 1.422e-6 / lam**6 + 2.784 / lam**8
    per_neutral_h = h_minus_bf + h_minus_ff + h_bf + h_ff + rayleigh
    n_hi, n_e, rho = (x[:, None] for x in (gas.neutral_hydrogen, gas.electron_density, gas.density))
    return (per_neutral_h * n_hi + THOMSON * n_e) / rho


@dataclass(frozen=True)
class LineOpacity:
    """Integrated strength and Voigt widths of every line at every depth.

    Parameters
    ----------
    strength : ndarray, shape (n_lines, n_depth)
        Line opacity integrated over wavelength, cm^2/g * A.
    sigma : ndarray, shape (n_lines, n_depth)
        Gaussian (Doppler) standard deviation, Angstrom.
    gamma : ndarray, shape (n_lines, n_depth)
        Lorentzian half width at half maximum, Angstrom.
    """

    strength: np.ndarray
    sigma: np.ndarray
    gamma: np.ndarray


def line_opacity(lines: LineList, gas: Gas, microturbulence: float) -> LineOpacity:
    """Strengths and Voigt widths of ``lines`` in ``gas``.

    Parameters
    ----------
    lines : LineList
        The lines.
    gas : Gas
        Populations of the atmosphere (:func:`gas_state`).
    microturbulence : float
        Microturbulent velocity, km/s.

    Returns
    -------
    LineOpacity
        Arrays of shape (n_lines, n_depth); strengths below 1e-30 cm^2/g A are set to 0.

    Raises
    ------
    ValueError
        If a line's species is not in the partition-function table.
    """
    t = gas.temperature[None, :]
    wave_cm = lines.wave[:, None] * 1e-8
    strength = np.zeros((len(lines), t.size))
    species = np.stack([lines.z, lines.ion], axis=1)
    for z, ion in np.unique(species, axis=0):
        rows = (lines.z == z) & (lines.ion == ion)
        symbol = ELEMENTS[z - 1]
        n_element = gas.hydrogen_density * gas.composition.abundance(symbol)
        n_stage = n_element * ionization_fractions(int(z), gas.temperature, gas.electron_density)[ion - 1]
        strength[rows] = (n_stage / partition_function(int(z), int(ion), gas.temperature))[None, :]
    boltzmann = np.exp(-lines.chi[:, None] / (K_B_EV * t))
    stimulated = -np.expm1(-HC_EV_ANGSTROM / (lines.wave[:, None] * K_B_EV * t))
    strength *= LINE_CROSS_SECTION * 10.0 ** lines.loggf[:, None] * boltzmann * stimulated
    strength *= wave_cm**2 / C_CGS * 1e8 / gas.density[None, :]
    strength[strength < NEGLIGIBLE_OPACITY] = 0.0  # also keeps denormal numbers (100x slower) out of the sums
    mass = np.array([ATOMIC_MASS[ELEMENTS[z - 1]] for z in lines.z])[:, None] * AMU
    sigma = lines.wave[:, None] / C_CGS * np.sqrt(K_B * t / mass + 0.5 * (microturbulence * 1e5) ** 2)
    collisions = np.where((lines.z == 1)[:, None], hydrogen_stark_damping(lines, gas),
                          van_der_waals_damping(lines, gas) + stark_damping(lines, gas))
    damping = radiative_damping(lines)[:, None] + collisions
    gamma = wave_cm**2 * damping / (4 * np.pi * C_CGS) * 1e8
    return LineOpacity(strength=strength, sigma=sigma, gamma=gamma)


def radiative_damping(lines: LineList) -> np.ndarray:
    """Radiative damping FWHM from the list, or the classical value 0.2223 / lambda_cm^2 where it has none.

    Parameters
    ----------
    lines : LineList
        The lines (``gamma_rad`` <= 0 means unknown).

    Returns
    -------
    ndarray, shape (n_lines,)
        Damping constant, rad/s.
    """
    classical = 0.22233 / (lines.wave * 1e-8) ** 2
    return np.where(lines.gamma_rad > 0, lines.gamma_rad, classical)


def _upper_energy(lines: LineList) -> np.ndarray:
    return lines.chi + HC_EV_ANGSTROM / lines.wave


def _stage_ionization_energy(lines: LineList) -> np.ndarray:
    return np.array([ionization_energy(int(z), int(i)) for z, i in zip(lines.z, lines.ion)])


def van_der_waals_damping(lines: LineList, gas: Gas) -> np.ndarray:
    """Collisional (van der Waals) damping FWHM (rad/s) by neutral H and He: (n_lines, n_depth).

    ``fdamp`` > 3 is the ABO sigma.alpha (sigma in a0^2 at 10 km/s, velocity exponent alpha); ``fdamp`` < 0 is
    log10 gamma_6 per perturber at 10,000 K (scaled as T^0.3); otherwise Unsoeld's C6 times ``fdamp`` (1 if 0).

    Parameters
    ----------
    lines : LineList
        The lines.
    gas : Gas
        Populations of the atmosphere (:func:`gas_state`).

    Returns
    -------
    ndarray, shape (n_lines, n_depth)
        Damping constant, rad/s.
    """
    t = gas.temperature[None, :]
    mass = np.array([ATOMIC_MASS[ELEMENTS[z - 1]] for z in lines.z])[:, None]
    vbar = np.sqrt(8 * K_B * t / (np.pi * AMU) * (1.0 / ATOMIC_MASS["H"] + 1.0 / mass))  # cm/s
    perturbers = (gas.neutral_hydrogen + HE_BROADENING_RATIO * gas.helium_density)[None, :]
    fdamp = lines.fdamp[:, None]
    abo = fdamp > 3.0
    sigma = np.floor(np.where(abo, fdamp, 0.0)) * BOHR_RADIUS**2
    alpha = np.where(abo, fdamp - np.floor(fdamp), 0.0)
    width_abo = (4 / np.pi) ** (alpha / 2) * gamma_function(2 - alpha / 2) * vbar * sigma * (vbar / 1e6) ** (-alpha)
    tabulated = 10.0 ** np.where(fdamp < 0, fdamp, 0.0) * (t / 1e4) ** 0.3 / 2.0  # half width per perturber
    charge = lines.ion[:, None].astype(float)
    binding = _stage_ionization_energy(lines)[:, None]
    low, up = np.maximum(binding - lines.chi[:, None], 0.1), np.maximum(binding - _upper_energy(lines)[:, None], 0.1)
    c6 = np.abs(1.61e-33 * ((HYDROGEN_IONIZATION * charge / low) ** 2 - (HYDROGEN_IONIZATION * charge / up) ** 2))
    enhancement = np.where((fdamp > 0) & ~abo, fdamp, 1.0)
    unsoeld = 17.0 * (enhancement * c6) ** 0.4 * vbar**0.6 / 2.0
    half_width = np.where(abo, width_abo, np.where(fdamp < 0, tabulated, unsoeld))
    return 2.0 * half_width * perturbers


def stark_damping(lines: LineList, gas: Gas) -> np.ndarray:
    """Quadratic Stark damping FWHM (rad/s), ``1e-8 n_e n_eff^5`` with n_eff^2 = 13.6 Z^2 / (chi_ion - E_up).

    n_eff is capped at 5: the approximation is not meant for upper levels just below the ionization limit (which
    the plasma dissolves), where it would diverge.

    Parameters
    ----------
    lines : LineList
        The lines.
    gas : Gas
        Populations of the atmosphere (:func:`gas_state`).

    Returns
    -------
    ndarray, shape (n_lines, n_depth)
        Damping constant, rad/s.
    """
    margin = _stage_ionization_energy(lines) - _upper_energy(lines)
    n_eff2 = np.where(margin > 0, HYDROGEN_IONIZATION * lines.ion**2 / np.maximum(margin, 1e-3), 25.0)
    n_eff2 = np.minimum(n_eff2, 25.0)
    return 1e-8 * n_eff2[:, None] ** 2.5 * gas.electron_density[None, :]


def hydrogen_stark_damping(lines: LineList, gas: Gas) -> np.ndarray:
    """Linear Stark FWHM (rad/s) of hydrogen Paschen lines: a Lorentzian stand-in for the Holtsmark profile.

    The half width is the mean linear Stark shift ``(3/4) e a0 F0 (n_u^2 - n_l^2)`` in the Holtsmark normal field
    ``F0 = 2.603 e n_e^(2/3)``; real profiles have steeper (lambda^-5/2) wings.

    Parameters
    ----------
    lines : LineList
        The lines.
    gas : Gas
        Populations of the atmosphere (:func:`gas_state`).

    Returns
    -------
    ndarray, shape (n_lines, n_depth)
        Damping constant, rad/s; zero in the rows of other elements.
    """
    e = const.e.esu.value
    inverse_n2 = 1.0 / 9.0 - 1.0 / (lines.wave * AIR_TO_VACUUM * 1e-8 * RYDBERG_HYDROGEN)
    n_upper2 = np.where(lines.z == 1, np.round(1.0 / np.sqrt(np.clip(inverse_n2, 1e-4, None))) ** 2, 9.0)
    field = 2.603 * e * gas.electron_density ** (2.0 / 3.0)
    half_energy = 0.75 * e * BOHR_RADIUS * field[None, :] * (n_upper2[:, None] - 9.0)
    return 2.0 * half_energy / const.hbar.cgs.value
