"""LTE spectrum synthesis of the PFS red window (7050-8900 A) from real line data and model atmospheres.

The embedded templates of the supplement, in place of the BOSZ grid the paper used (Bohlin et al. 2017, built with
ATLAS/SYNTHE on the same Kurucz family of atmospheres):

* atmosphere: T, P_gas and n_e on 80 depths from the atmosnet emulator of C3K/ATLAS12 models (:mod:`.atmosphere`);
* opacities: continuum (H-, H I, electron and Rayleigh scattering) and the Gaia-ESO line list (Heiter et al.
  2021) with Saha-Boltzmann populations and Voigt profiles (:mod:`.opacity`), plus the hydrogen Paschen lines;
* transfer: the formal solution of the plane-parallel transfer equation with a piecewise-linear LTE source function
  (``I(0, mu) = S(0) + int dS/dtau exp(-tau/mu) dtau``, exact per depth interval), and the surface flux
  ``F = 2 pi int I mu dmu`` by three-point Gauss-Legendre quadrature in mu;
* molecules: TiO (gamma and delta systems) has no line data here. Below ~4200 K an approximate band absorption
  (band heads degrading to the red, strength rising steeply toward cool temperatures) is applied; it is labelled as
  an approximation wherever the coolest templates are shown. CN and other molecules are absent.

Microturbulence is 2 km/s for every star, as in BOSZ.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from astropy import constants as const
from scipy import sparse
from scipy.special import voigt_profile

from .atmosphere import Atmosphere, model_atmosphere
from .atomic import LineList, load_line_list
from .opacity import AIR_TO_VACUUM, C_CGS, LYMAN_EDGE, RYDBERG_HYDROGEN, Composition, LineOpacity, continuum_opacity, gas_state, \
    line_opacity

C_KMS = const.c.to_value("km/s")
MU, MU_WEIGHTS = np.polynomial.legendre.leggauss(3)
MU, MU_WEIGHTS = 0.5 * (MU + 1.0), 0.5 * MU_WEIGHTS  # Gauss-Legendre on [0, 1]
PASCHEN_EDGE = 9.0 * LYMAN_EDGE  # 8203.6 A: H I n = 3 ionization edge (air)
STANDARD_LOG_TAU_TOP, STANDARD_LOG_TAU_STEP = -6.875, 0.125  # ATLAS's Rosseland depth grid (80 layers)
FORMATION_DEPTH = 30.0  # continuum optical depth below which line opacity is not computed
VOIGT_CORE = 8.0  # Gaussian widths within which the Voigt profile is evaluated exactly (see ``voigt``)
PASCHEN_UPPER = range(11, 21)  # upper levels of the Paschen lines near the window
#: TiO band heads (A) of the gamma and delta systems in the window, with relative strengths; bands degrade to the red.
TIO_BAND_HEADS = (
    (7053.6, 1.00), (7087.6, 0.80), (7125.6, 0.70), (7589.3, 0.55), (7666.3, 0.45),
    (8205.8, 0.20), (8432.3, 0.40), (8442.0, 0.35), (8451.7, 0.30), (8859.6, 0.50),
)


@dataclass(frozen=True)
class SynthesisSettings:
    """Settings of the synthesis (they key the template cache).

    Parameters
    ----------
    microturbulence : float
        Microturbulent velocity, km/s (2, as BOSZ).
    alpha_m : float
        [alpha/M], dex (0: BOSZ's solar-scaled grid).
    sampling_resolution : float
        lambda / delta-lambda of the log-uniform high-resolution sampling.
    wave_min, wave_max : float
        Wavelength range of the synthesis, Angstrom (air).
    wing_threshold : float
        Line wings are followed until the line opacity falls below this fraction of the continuum opacity.
    max_wing : float
        Widest half-window of a line, Angstrom.
    tio_bands : bool
        Apply the approximate TiO band absorption below 4250 K.
    """

    microturbulence: float = 2.0  # km/s, as BOSZ
    alpha_m: float = 0.0  # [alpha/M]; BOSZ's solar-scaled grid has 0
    sampling_resolution: float = 200_000.0  # lambda / delta-lambda of the high-resolution sampling
    wave_min: float = 7050.0
    wave_max: float = 8900.0
    wing_threshold: float = 1e-3  # line wings are followed until line opacity < this x continuum opacity
    max_wing: float = 40.0  # A, the widest half-window of a line
    tio_bands: bool = True

    def to_dict(self) -> dict:
        """The settings as JSON-ready data.

        Returns
        -------
        dict
            Field name -> value.
        """
        return asdict(self)


def high_resolution_wavelength(settings: SynthesisSettings = SynthesisSettings()) -> np.ndarray:
    """Log-uniform wavelength grid on which spectra are synthesized.

    Parameters
    ----------
    settings : SynthesisSettings
        Range and sampling resolution.

    Returns
    -------
    ndarray, shape (n_wave,)
        Air wavelengths, Angstrom, from ``wave_min`` to ``wave_max`` with step lambda / ``sampling_resolution``.
    """
    n = int(np.ceil(np.log(settings.wave_max / settings.wave_min) * settings.sampling_resolution)) + 1
    return np.geomspace(settings.wave_min, settings.wave_max, n)


def paschen_lines(n_upper=PASCHEN_UPPER) -> LineList:
    """Hydrogen Paschen lines 3 -> n (Rydberg formula, air wavelengths).

    Oscillator strengths from Kramers' semiclassical formula with a bound-bound Gaunt factor of 0.85 (an
    approximation, within ~10% of the quantum values for these transitions).

    Parameters
    ----------
    n_upper : iterable of int
        Upper principal quantum numbers (> 3).

    Returns
    -------
    LineList
        One line per upper level: Z = 1, neutral, lower-level energy 12.09 eV, no damping data.
    """
    n = np.asarray(list(n_upper), dtype=float)
    wave = 1e8 / (RYDBERG_HYDROGEN * (1.0 / 9.0 - 1.0 / n**2)) / AIR_TO_VACUUM
    f = 0.85 * 32.0 / (3.0 * np.sqrt(3.0) * np.pi) / (3.0**5 * n**3) / (1.0 / 9.0 - 1.0 / n**2) ** 3
    chi = 13.598 * (1.0 - 1.0 / 9.0)
    ones = np.ones_like(n)
    return LineList(wave=wave, z=ones.astype(int), ion=ones.astype(int), chi=chi * ones, loggf=np.log10(18.0 * f),
                    fdamp=0.0 * ones, gamma_rad=0.0 * ones)


def voigt(offset: np.ndarray, sigma: np.ndarray, gamma: np.ndarray, core: float = VOIGT_CORE) -> np.ndarray:
    """Voigt profile, exact in the core and asymptotic in the wings.

    ``scipy.special.voigt_profile`` within ``core`` Gaussian widths of the centre, the asymptotic wing
    ``L(x) [1 + sigma^2 (3x^2 - gamma^2) / (x^2 + gamma^2)^2]`` (the Lorentzian convolved with the Gaussian to second
    order; relative error ~15 (sigma/x)^4, 0.4% at 8 sigma) beyond, where the line wings of strong lines spend most
    of their samples.

    Parameters
    ----------
    offset : ndarray
        Distance from the line centre, Angstrom.
    sigma : ndarray, shape of ``offset``
        Gaussian standard deviation, Angstrom.
    gamma : ndarray, shape of ``offset``
        Lorentzian half width at half maximum, Angstrom.
    core : float
        Gaussian widths within which the profile is evaluated exactly.

    Returns
    -------
    ndarray, shape of ``offset``
        Unit-area profile, 1/Angstrom.
    """
    x2, g2 = offset**2, gamma**2
    out = gamma / np.pi / (x2 + g2) * (1.0 + sigma**2 * (3 * x2 - g2) / (x2 + g2) ** 2)
    inner = np.abs(offset) < core * sigma
    out[inner] = voigt_profile(offset[inner], sigma[inner], gamma[inner])
    return out


def planck(wave: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """Planck intensity B_lambda.

    Parameters
    ----------
    wave : array_like, shape (n_wave,)
        Wavelengths, Angstrom.
    temperature : array_like, shape (n_depth,)
        Temperatures, K.

    Returns
    -------
    ndarray, shape (n_depth, n_wave)
        B_lambda, erg/s/cm^2/A/sr.
    """
    h, c, k = const.h.cgs.value, C_CGS, const.k_B.cgs.value
    lam = np.asarray(wave, dtype=float)[None, :] * 1e-8
    t = np.asarray(temperature, dtype=float)[:, None]
    return 2 * h * c**2 / lam**5 / np.expm1(h * c / (lam * k * t)) * 1e-8


def optical_depth(opacity: np.ndarray, column_mass: np.ndarray) -> np.ndarray:
    """Optical depth from opacity per gram: trapezoid in column mass, tau = kappa m at the top layer.

    Parameters
    ----------
    opacity : ndarray, shape (n_depth, n_wave)
        Opacity, cm^2/g.
    column_mass : ndarray, shape (n_depth,)
        Mass column above each layer, g cm^-2, increasing inward.

    Returns
    -------
    ndarray, shape (n_depth, n_wave)
        Optical depth, dimensionless.
    """
    dm = np.diff(column_mass)[:, None]
    steps = 0.5 * (opacity[1:] + opacity[:-1]) * dm
    return np.concatenate([opacity[:1] * column_mass[0], opacity[:1] * column_mass[0] + np.cumsum(steps, axis=0)])


def emergent_flux(tau: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Surface flux 2 pi int I(mu) mu dmu for piecewise-linear source functions (3-point Gauss-Legendre in mu).

    Parameters
    ----------
    tau : ndarray, shape (n_depth, n_wave)
        Optical depth, strictly increasing inward.
    source : ndarray, shape (n_depth, n_wave)
        Source function, e.g. B_lambda in erg/s/cm^2/A/sr.

    Returns
    -------
    ndarray, shape (n_wave,)
        Surface flux, in the units of ``source`` times sr (erg/s/cm^2/A for B_lambda).
    """
    slope = np.diff(source, axis=0) / np.diff(tau, axis=0)
    flux = np.zeros(tau.shape[1])
    for mu, weight in zip(MU, MU_WEIGHTS):
        attenuation = np.exp(-tau / mu)
        intensity = source[0] + mu * (np.sum(slope * (attenuation[:-1] - attenuation[1:]), axis=0)
                                      + slope[-1] * attenuation[-1])
        flux += 2 * np.pi * weight * mu * intensity
    return flux


def standard_depths(atmosphere: Atmosphere) -> Atmosphere:
    """The atmosphere with its column mass integrated on ATLAS's standard Rosseland depth grid.

    The emulator's 80 layers are the ATLAS layers log tau_Ross = -6.875 + 0.125 k (its own column mass and Rosseland
    opacity reproduce them within 0.03 dex where C3K has models). Integrating dm = dtau / kappa_Ross on that grid
    keeps the column mass increasing even in the extrapolated hot, low-gravity corner (T_eff >~ 6000 K, log g <~ 1),
    where the emulated column mass steps backward in the deep layers.

    Parameters
    ----------
    atmosphere : Atmosphere
        An emulated atmosphere (80 layers).

    Returns
    -------
    Atmosphere
        A copy with the new ``column_mass`` (g cm^-2), same top value; the other columns unchanged.
    """
    tau = 10.0 ** (STANDARD_LOG_TAU_TOP + STANDARD_LOG_TAU_STEP * np.arange(atmosphere.column_mass.size))
    inverse = 1.0 / atmosphere.rosseland_opacity
    steps = 0.5 * (inverse[1:] + inverse[:-1]) * np.diff(tau)
    column_mass = atmosphere.column_mass[0] + np.concatenate([[0.0], np.cumsum(steps)])
    return replace(atmosphere, column_mass=column_mass)


def tio_optical_depth(wave: np.ndarray, teff: float, logg: float, mh: float) -> np.ndarray:
    """Approximate TiO band optical depth (no molecular line data; a labelled approximation below ~4200 K).

    Parameters
    ----------
    wave : ndarray, shape (n_wave,)
        Wavelengths, Angstrom.
    teff : float
        Effective temperature, K.
    logg : float
        log10 surface gravity (cgs).
    mh : float
        [M/H], dex.

    Returns
    -------
    ndarray, shape (n_wave,)
        Band optical depth, dimensionless (0 blueward of the first band head).
    """
    bands = np.zeros_like(wave)
    for head, strength in TIO_BAND_HEADS:
        red = wave >= head
        bands[red] += strength * np.exp(-(wave[red] - head) / 60.0)
    return 0.35 * 10**mh * 10 ** (0.19 * (logg - 4.44)) * 10 ** (-(teff - 3900.0) / 650.0) * bands


class Synthesizer:
    """LTE synthesis on a fixed high-resolution grid; the line data are prepared once.

    Parameters
    ----------
    settings : SynthesisSettings
        Wavelength grid, microturbulence, line wings, TiO.
    lines : LineList, optional
        Atomic lines (the packaged Gaia-ESO list by default); the hydrogen Paschen lines are always added.
    """

    def __init__(self, settings: SynthesisSettings = SynthesisSettings(), lines: LineList | None = None):
        self.settings = settings
        self.wave = high_resolution_wavelength(settings)
        atomic = load_line_list() if lines is None else lines
        self.lines = atomic.concatenate(paschen_lines())
        blue, red = self.wave[0], self.wave[-1]
        self.coarse_wave = np.concatenate([np.linspace(blue - 60.0, PASCHEN_EDGE - 1e-3, 40),
                                           np.linspace(PASCHEN_EDGE + 1e-3, red + 60.0, 30)])

    def _interpolate_coarse(self, values: np.ndarray, wave: np.ndarray) -> np.ndarray:
        """Interpolate (..., n_coarse) continuum quantities to ``wave`` on each side of the Paschen edge."""
        out = np.empty(values.shape[:-1] + (wave.size,))
        edge = np.searchsorted(self.coarse_wave, PASCHEN_EDGE)
        for part, coarse in ((wave < PASCHEN_EDGE, slice(0, edge)), (wave >= PASCHEN_EDGE, slice(edge, None))):
            for index in np.ndindex(values.shape[:-1]):
                out[index + (part,)] = np.interp(wave[part], self.coarse_wave[coarse], values[index + (coarse,)])
        return out

    def _setup(self, teff: float, logg: float, mh: float, select: np.ndarray | None):
        composition = Composition(mh=mh, alpha_m=self.settings.alpha_m)
        atmosphere = standard_depths(model_atmosphere(teff, logg, mh, self.settings.alpha_m))
        gas = gas_state(atmosphere, composition)
        lines = self.lines if select is None else self.lines.select(select)
        coarse_kappa = continuum_opacity(self.coarse_wave, gas)
        return atmosphere, gas, lines, coarse_kappa

    def weak_line_equivalent_widths(self, teff: float, logg: float, mh: float) -> np.ndarray:
        """Equivalent width (A) of every line of ``self.lines`` in the weak-line limit (linear response).

        Adding line opacity ``x kappa_c`` at one depth lowers the flux as adding ``x`` to the relative continuum
        opacity there would (same LTE source function), so the weak-line depression is ``sum_d x_d R_d`` with
        ``R_d`` the response of the continuum flux to the opacity of layer d. Saturated lines are overestimated;
        the number is used to drop lines that never matter.

        Parameters
        ----------
        teff, logg, mh : float
            Effective temperature (K), log10 surface gravity (cgs), [M/H] (dex).

        Returns
        -------
        ndarray, shape (n_lines,)
            Weak-line equivalent widths, Angstrom.

        Raises
        ------
        ValueError
            If the labels lie outside the atmosphere emulator's range.
        """
        atmosphere, gas, lines, coarse_kappa = self._setup(teff, logg, mh, None)
        m = atmosphere.column_mass
        source = planck(self.coarse_wave, gas.temperature)
        flux = emergent_flux(optical_depth(coarse_kappa, m), source)
        step = 1e-3
        response = np.empty_like(coarse_kappa)
        for d in range(m.size):
            perturbed = coarse_kappa.copy()
            perturbed[d] *= 1.0 + step
            response[d] = (flux - emergent_flux(optical_depth(perturbed, m), source)) / (flux * step)
        opacity = line_opacity(lines, gas, self.settings.microturbulence)
        ratio = opacity.strength / self._interpolate_coarse(coarse_kappa, lines.wave).T
        return np.sum(ratio * self._interpolate_coarse(response, lines.wave).T, axis=1)

    def line_opacity_grid(self, lines: LineList, gas, coarse_kappa: np.ndarray, tau_cont: np.ndarray) -> np.ndarray:
        """Line opacity (cm^2/g) of ``lines`` on ``self.wave`` at every depth: (n_depth, n_wave).

        Lines are followed to where their wings fall below ``wing_threshold`` times the continuum opacity, and only
        in the layers above continuum optical depth ``FORMATION_DEPTH`` (deeper ones add < exp(-30) to the flux).

        Parameters
        ----------
        lines : LineList
            The lines to add.
        gas : Gas
            Populations of the atmosphere (:func:`~.opacity.gas_state`).
        coarse_kappa : ndarray, shape (n_depth, n_coarse)
            Continuum opacity on ``self.coarse_wave``, cm^2/g.
        tau_cont : ndarray, shape (n_depth, n_coarse)
            Continuum optical depth on ``self.coarse_wave``.

        Returns
        -------
        ndarray, shape (n_depth, n_wave)
            Line opacity, cm^2/g; zero below the formation depth.
        """
        s = self.settings
        opacity = line_opacity(lines, gas, s.microturbulence)
        kappa_at_line = self._interpolate_coarse(coarse_kappa, lines.wave).T  # (n_lines, n_depth)
        ratio = opacity.strength / kappa_at_line  # integrated line / continuum opacity, A
        forming = (self._interpolate_coarse(tau_cont, lines.wave).T < FORMATION_DEPTH)
        wing = np.sqrt(np.max(np.where(forming, ratio * opacity.gamma, 0.0), axis=1) / (np.pi * s.wing_threshold))
        deep = tau_cont.min(axis=1) > FORMATION_DEPTH
        n_form = int(np.argmax(deep)) + 1 if deep.any() else len(deep)
        opacity = LineOpacity(*(a[:, :n_form] for a in (opacity.strength, opacity.sigma, opacity.gamma)))
        core = 5.0 * opacity.sigma.max(axis=1)
        half = np.clip(np.maximum(wing, core), 2.0 * self.wave[0] / s.sampling_resolution, s.max_wing)
        lo = np.searchsorted(self.wave, lines.wave - half)
        hi = np.searchsorted(self.wave, lines.wave + half)
        keep = hi > lo
        total = np.zeros((gas.temperature.size, self.wave.size))
        voigt = keep & (wing > core)
        for rows, gaussian in ((np.flatnonzero(keep & ~voigt), True), (np.flatnonzero(voigt), False)):
            for chunk in np.array_split(rows, max(1, int(np.sum(hi[rows] - lo[rows])) // 25_000 + 1)):
                if chunk.size:
                    self._add_profiles(total[:n_form], chunk, lo, hi, lines, opacity, gaussian)
        return total

    def _add_profiles(self, total, rows, lo, hi, lines, opacity, gaussian: bool) -> None:
        counts = hi[rows] - lo[rows]
        line_id = np.repeat(rows, counts)
        pixel = np.concatenate([np.arange(a, b) for a, b in zip(lo[rows], hi[rows])])
        offset = (self.wave[pixel] - lines.wave[line_id])[:, None]
        sigma, gamma = opacity.sigma[line_id], opacity.gamma[line_id]
        if gaussian:
            profile = np.exp(-0.5 * (offset / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
        else:
            profile = voigt(np.broadcast_to(offset, sigma.shape), sigma, gamma)
        gather = sparse.csr_matrix((np.ones(pixel.size), (pixel, np.arange(pixel.size))),
                                   shape=(self.wave.size, pixel.size))
        total += (gather @ (profile * opacity.strength[line_id])).T

    def spectrum(self, teff: float, logg: float, mh: float, select: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Surface flux and continuum (erg/s/cm^2/A) at ``self.wave``.

        Parameters
        ----------
        teff, logg, mh : float
            Effective temperature (K), log10 surface gravity (cgs), [M/H] (dex).
        select : bool array over ``self.lines``, optional
            Synthesize only these lines (no TiO then), e.g. to measure one line's equivalent width.

        Returns
        -------
        flux, continuum : ndarray, shape (n_wave,)
            Surface flux with lines and without, erg/s/cm^2/A.

        Raises
        ------
        ValueError
            If the labels lie outside the atmosphere emulator's range.
        """
        atmosphere, gas, lines, coarse_kappa = self._setup(teff, logg, mh, select)
        m = atmosphere.column_mass
        coarse_tau = optical_depth(coarse_kappa, m)
        source = self._interpolate_coarse(planck(self.coarse_wave, gas.temperature), self.wave)
        kappa = self._interpolate_coarse(coarse_kappa, self.wave)
        continuum = emergent_flux(optical_depth(kappa, m), source)
        kappa += self.line_opacity_grid(lines, gas, coarse_kappa, coarse_tau)
        flux = emergent_flux(optical_depth(kappa, m), source)
        if self.settings.tio_bands and select is None and teff < 4250.0:
            tio = tio_optical_depth(self.wave, teff, logg, mh)
            flux = flux * (1.0 - 0.84 * tio / (1.0 + tio))
        return flux, continuum

    def equivalent_width(self, teff: float, logg: float, mh: float, wavelengths) -> float:
        """Summed equivalent width (A) of the listed lines alone (no other lines, no TiO).

        Every line of the list within 0.01 A of a given wavelength counts (isotopic and fine-structure components).

        Parameters
        ----------
        teff, logg, mh : float
            Effective temperature (K), log10 surface gravity (cgs), [M/H] (dex).
        wavelengths : iterable of float
            Air wavelengths of the lines, Angstrom.

        Returns
        -------
        float
            Equivalent width, Angstrom.

        Raises
        ------
        ValueError
            If a wavelength matches no line of the list, or the labels lie outside the atmosphere emulator's range.
        """
        select = np.zeros(len(self.lines), dtype=bool)
        for w in wavelengths:
            match = np.abs(self.lines.wave - w) < 0.01
            if not match.any():
                raise ValueError(f"wavelength {w} A matches no line of the line list (within 0.01 A)")
            select |= match
        flux, continuum = self.spectrum(teff, logg, mh, select)
        return float(np.trapezoid(1.0 - flux / continuum, self.wave))


#: Species whose lines carry most of the gravity signal of the window, reported one by one; the rest is "other".
GRAVITY_SPECIES = ("Ca II", "Na I", "K I", "Mg I", "Si I", "Ca I", "Ti I", "Ti II", "Fe I", "Fe II", "H I")

#: Named gravity- and temperature-sensitive lines of the window (air wavelengths, A), for figure markers.
DIAGNOSTIC_LINES = (
    ("K I", 7664.90), ("K I", 7698.96), ("O I", 7771.94), ("O I", 7774.17), ("O I", 7775.39), ("Na I", 8183.26),
    ("Na I", 8194.82), ("Ca II", 8498.02), ("Ca II", 8542.09), ("Ca II", 8662.14), ("Mg I", 8806.76),
)

#: The Sun's Ca II triplet equivalent widths (A), about as measured in the solar spectrum: a check, never a target.
SOLAR_CA_TRIPLET_EW = {8498.02: 1.4, 8542.09: 3.6, 8662.14: 2.6}


def gravity_response_by_species(synthesizer: Synthesizer, teff: float, logg: float, mh: float,
                                species=GRAVITY_SPECIES, step: float = 0.25) -> dict[str, np.ndarray]:
    """d(F / F_c) / d log g on the MR detector grid from the lines of each species alone (central difference).

    Parameters
    ----------
    synthesizer : Synthesizer
        The synthesis (its wavelengths are convolved to the MR grid).
    teff, logg, mh : float
        The star; ``logg +- step`` must lie inside the atmosphere emulator's range.
    species : sequence of str
        Species labels as in ``LineList.species``; every other line is summed under ``"other"``.
    step : float
        Half-step in log g of the central difference.

    Returns
    -------
    dict of str -> ndarray, shape (4096,)
        Species label (and ``"other"``) -> response of the normalized flux, per dex. Blends make the parts add up
        to the whole only approximately.

    Raises
    ------
    ValueError
        If ``logg +- step`` or the other labels lie outside the atmosphere emulator's range.
    """
    from ..instrument import lsf_matrix

    matrix = lsf_matrix(synthesizer.wave)
    labels = synthesizer.lines.species
    groups = {name: labels == name for name in species}
    groups["other"] = ~np.isin(labels, list(species))
    response = {}
    for name, select in groups.items():
        up, down = (synthesizer.spectrum(teff, logg + d, mh, select) for d in (step, -step))
        response[name] = (matrix @ (up[0] / up[1]) - matrix @ (down[0] / down[1])) / (2 * step)
    return response
