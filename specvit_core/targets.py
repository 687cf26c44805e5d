"""Simulated survey targets of chapter 7 (paper section 5.2): survey-like spectra written in the archives' formats.

The survey archives cannot be reached from here, so the chapter's default targets are SIMULATED from the embedded
templates through their own instruments and written as the archives serve them; the real loaders
(:mod:`.surveys`) and the appendix-L preprocessing (:mod:`.preprocess`) then read them exactly as they read
downloaded files. What is simulated, and how (all of it an approximation chosen here, not fitted to a survey):

- ``gaia_rvs``, a Gaia-RVS-like target standing in for the paper's high-fidelity APOGEE target: 846-870 nm at
  R = 11,500 on Gaia's 2,401 vacuum pixels, rest frame and continuum-normalized like Gaia DR3 mean spectra
  (templates synthesized for this instrument, :data:`.spectra.embedded.INSTRUMENTS`), white noise of a per-star
  SNR drawn log-uniformly in 20-200, labels with APOGEE-like errors (0.05 dex in log g).
- ``desi``, a DESI-like target over the PFS window: the MR templates degraded to R = 4,000-4,800 (Gaussian
  kernel in quadrature), shifted by a radial velocity, sampled on DESI's 0.8 A vacuum lattice in its R and Z
  arms (cut to the window to keep the files small), photon-like noise of a per-star SNR drawn in 5-60, and
  pipeline labels with the scatter the paper measured for the DESI pipeline against APOGEE (Figure 13: 0.40 dex
  in log g; 0.35 dex is used) -- the noisy intermediate stage of Experiments B and C.

Both draw the APOGEE test population of the paper (62% dwarfs, 23% subgiants, 14% giants, section 5.2.1) and
add cosmic-ray-like single-pixel spikes for the masking step (L.5) to remove. APOGEE's H band lies outside the
templates' window, so there is no simulated APOGEE target: the APOGEE loader is for real files only.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import files, paper
from .config import LABEL_RANGES, data_dir, get_profile
from .instrument import GAIA_RVS_N_PIXELS, lsf_matrix, lsf_sigma, resolving_power, vacuum_to_air
from .metrics import DWARF_MIN_LOGG, GIANT_MAX_LOGG, STELLAR_TYPES
from .preprocess import C_KM_S
from .spectra.embedded import cache_file, embedded_grid
from .spectra.templates import TemplateGrid
from .surveys import write_desi_coadd, write_gaia_rvs

TYPE_LOG_G = {"giant": (LABEL_RANGES["log_g"][0], GIANT_MAX_LOGG), "subgiant": (GIANT_MAX_LOGG, DWARF_MIN_LOGG),
              "dwarf": (DWARF_MIN_LOGG, LABEL_RANGES["log_g"][1])}
TYPE_T_EFF = {"giant": (3750.0, 5250.0), "subgiant": (4500.0, 6000.0), "dwarf": (3750.0, 6000.0)}  # K, assumed
METALLICITY = (-0.3, 0.4)  # mean and sd of [M/H], clipped to the label range (assumed, a disc-like population)
DESI_R = (4000.0, 4800.0)  # resolving power of the DESI-like target at the two ends of the window (assumed)
DESI_ARMS = {"R": (7040.0, 7620.0), "Z": (7520.0, 8900.0)}  # A, vacuum: DESI's R and Z arms cut to the window
DESI_LATTICE = (5760.0, 0.8)  # A: DESI's wavelength lattice (R arm start, step), shared by its arms


@dataclass(frozen=True)
class TargetSurvey:
    """How one simulated target is made.

    Parameters
    ----------
    name : str
        ``"gaia_rvs"`` or ``"desi"``.
    seed : int
        Seed of every draw.
    snr : tuple of float
        Range of the per-star continuum SNR per pixel, drawn log-uniformly.
    label_noise : dict
        Standard deviation of the catalogue labels around the true ones (T_eff K, log_g dex, M_H dex).
    vrad : tuple of float
        Mean and standard deviation of the radial velocity, km/s (the spectra are served in the observed frame
        when the standard deviation is > 0).
    spikes : float
        Mean number of cosmic-ray-like spikes per spectrum (Poisson).
    val_fraction, test_fraction : float
        Fractions of the appendix-L.8 split.
    """

    name: str
    seed: int
    snr: tuple
    label_noise: dict
    vrad: tuple
    spikes: float
    val_fraction: float
    test_fraction: float


TARGETS = {
    "gaia_rvs": TargetSurvey("gaia_rvs", 7001, (20.0, 200.0), {"T_eff": 50.0, "log_g": 0.05, "M_H": 0.03},
                             (0.0, 0.0), 0.5, 1 / 9, 1 / 9),  # 7,000 / 1,000 / 1,000 of 9,000 (section 5.2.1)
    "desi": TargetSurvey("desi", 7002, (5.0, 60.0), {"T_eff": 150.0, "log_g": 0.35, "M_H": 0.2},
                         (-20.0, 60.0), 2.0, 0.1, 0.1),  # 40,000 / 5,000 / 5,000 of 50,000 (appendix L.8)
}
POOL_SIZES = {  # spectra per target before the L.2 filter (which removes ~3% / ~16%) and the split, per profile
    "smoke": {"gaia_rvs": 270, "desi": 320},
    "quick": {"gaia_rvs": 1800, "desi": 2500},
    "cpu": {"gaia_rvs": 9300, "desi": 24_000},
    "paper": {"gaia_rvs": 9300, "desi": 60_000},  # ~7,000 / 1,000 / 1,000 and ~40,000 / 5,000 / 5,000 kept
}
TARGET_FILE = "target.json"  # written last: the configuration of a finished target folder


def draw_population(rng: np.random.Generator, n: int, mix: dict | None = None) -> pd.DataFrame:
    """Labels of a survey-like population: stellar types in the proportions ``mix``.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Number of stars.
    mix : dict, optional
        Fraction per stellar type (default the paper's APOGEE test set, ``paper.APOGEE_TEST_MIX``).

    Returns
    -------
    pandas.DataFrame
        Columns ``T_eff``, ``log_g``, ``M_H`` (uniform within the type's T_eff and log g ranges, [M/H] normal
        clipped to the label range) and ``type``.
    """
    mix = mix or paper.APOGEE_TEST_MIX
    types = rng.choice(STELLAR_TYPES, size=n, p=[mix[t] / sum(mix.values()) for t in STELLAR_TYPES])
    teff, logg = np.empty(n), np.empty(n)
    for t in STELLAR_TYPES:
        sel = types == t
        teff[sel] = rng.uniform(*TYPE_T_EFF[t], size=sel.sum())
        logg[sel] = rng.uniform(*TYPE_LOG_G[t], size=sel.sum())
    mh = np.clip(rng.normal(*METALLICITY, size=n), *LABEL_RANGES["M_H"])
    return pd.DataFrame({"T_eff": teff, "log_g": logg, "M_H": mh, "type": types})


def catalogue_labels(rng: np.random.Generator, truth: pd.DataFrame, survey: TargetSurvey) -> pd.DataFrame:
    """The labels a survey pipeline would publish: the true ones plus Gaussian errors of ``survey.label_noise``.

    Parameters
    ----------
    rng : numpy.random.Generator
    truth : pandas.DataFrame
        True ``T_eff``, ``log_g``, ``M_H``.
    survey : TargetSurvey

    Returns
    -------
    pandas.DataFrame
        The three labels (not clipped: the appendix-L.2 range filter removes what leaves the range).
    """
    return pd.DataFrame({k: truth[k] + rng.normal(0.0, survey.label_noise[k], len(truth)) for k in survey.label_noise})


def _spikes(rng: np.random.Generator, flux: np.ndarray, usable: np.ndarray, mean: float, level: np.ndarray
            ) -> np.ndarray:
    """Add single-pixel spikes of 3-10 x ``level`` (per row) at random usable pixels; returns the count per row."""
    counts = rng.poisson(mean, len(flux))
    for i, k in enumerate(counts):
        pixels = rng.choice(np.flatnonzero(usable[i]), size=k, replace=False)
        flux[i, pixels] += rng.uniform(3.0, 10.0, size=k) * level[i]
    return counts


def simulate_gaia_rvs(grid: TemplateGrid, n: int, survey: TargetSurvey = TARGETS["gaia_rvs"]) -> dict:
    """Gaia-RVS-like mean spectra: normalized to the continuum, rest frame, white noise, spikes.

    Parameters
    ----------
    grid : TemplateGrid
        ``embedded_grid(instrument="gaia_rvs")``.
    n : int
        Number of stars.
    survey : TargetSurvey

    Returns
    -------
    dict
        ``targetid`` (int64 source ids), ``flux`` and ``flux_error`` (n, 2401), ``truth`` (DataFrame: true labels,
        type, snr, n_spikes), ``labels`` (DataFrame: targetid and catalogue labels).
    """
    if grid.wave.size != GAIA_RVS_N_PIXELS:
        raise ValueError(f"the Gaia RVS grid has {GAIA_RVS_N_PIXELS} pixels; this one has {grid.wave.size}")
    rng = np.random.default_rng(survey.seed)
    truth = draw_population(rng, n)
    labels = truth[["T_eff", "log_g", "M_H"]].to_numpy()
    flux = grid.interpolate(labels, np.float64) / grid.interpolate(labels, np.float64, continuum=True)
    snr = np.exp(rng.uniform(*np.log(survey.snr), size=n))
    error = np.repeat((1.0 / snr)[:, None], flux.shape[1], axis=1)
    flux += error * rng.standard_normal(flux.shape)
    truth["n_spikes"] = _spikes(rng, flux, np.ones(flux.shape, bool), survey.spikes, np.ones(n))
    truth["snr"] = snr
    ids = 4_000_000_000_000_000_000 + 1_000_003 * np.arange(1, n + 1, dtype=np.int64)  # Gaia-like source_id
    truth.insert(0, "targetid", ids)
    catalogue = catalogue_labels(rng, truth, survey)
    catalogue.insert(0, "targetid", ids)
    return {"targetid": ids, "flux": flux.astype(np.float32), "flux_error": error.astype(np.float32),
            "truth": truth, "labels": catalogue}


def desi_lattice(arm: str) -> np.ndarray:
    """Vacuum wavelengths of one arm of the DESI-like target on DESI's 0.8 A lattice.

    Parameters
    ----------
    arm : {"R", "Z"}

    Returns
    -------
    ndarray
        Angstrom, vacuum.
    """
    start, step = DESI_LATTICE
    lo, hi = DESI_ARMS[arm]
    k = np.arange(np.ceil((lo - start) / step - 1e-9), np.floor((hi - start) / step + 1e-9) + 1)
    return start + step * k


def _degrade_to_desi(wave: np.ndarray, flux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MR spectra convolved further to the DESI-like resolution (Gaussian kernels add in quadrature)."""
    def desi_power(w):
        return np.interp(w, wave[[0, -1]], DESI_R)

    def extra_power(w):  # the kernel that takes R_MR to R_DESI: FWHM^2 add
        return w / np.sqrt((w / desi_power(w)) ** 2 - (w / resolving_power(w)) ** 2)

    margin = 6.0 * lsf_sigma(wave[[0, -1]], extra_power).max()
    out = wave[(wave > wave[0] + margin) & (wave < wave[-1] - margin)]
    return out, (lsf_matrix(wave, out, resolution=extra_power) @ flux.T).T


def simulate_desi(grid: TemplateGrid, n: int, survey: TargetSurvey = TARGETS["desi"]) -> dict:
    """DESI-like spectra over the PFS window: lower resolution, observed frame, DESI's lattice, noise, spikes.

    Parameters
    ----------
    grid : TemplateGrid
        The MR template grid.
    n : int
        Number of stars.
    survey : TargetSurvey

    Returns
    -------
    dict
        ``targetid`` (int64), ``arms`` ({"R"|"Z": (wave, flux, ivar, mask)}), ``redshift`` (v/c), ``truth`` and
        ``labels`` (with ``vrad``) as :func:`simulate_gaia_rvs`.
    """
    rng = np.random.default_rng(survey.seed)
    truth = draw_population(rng, n)
    model = grid.interpolate(truth[["T_eff", "log_g", "M_H"]].to_numpy(), np.float64)
    model /= np.median(model, axis=1, keepdims=True)
    rest_air, model = _degrade_to_desi(grid.wave, model)
    vrad = rng.normal(*survey.vrad, size=n)
    snr = np.exp(rng.uniform(*np.log(survey.snr), size=n))
    level = rng.uniform(0.5, 20.0, size=n)  # continuum in 1e-17 erg/s/cm^2/A
    arms, spikes = {}, np.zeros(n, int)
    for arm in DESI_ARMS:
        wave = desi_lattice(arm)
        rest = vacuum_to_air(wave[None, :] / (1.0 + vrad[:, None] / C_KM_S))
        inside = (rest > rest_air[0]) & (rest < rest_air[-1])
        clean = np.stack([np.interp(r, rest_air, m) for r, m in zip(rest, model)]) * level[:, None]
        sigma = level[:, None] / snr[:, None] * np.sqrt(np.maximum(clean / level[:, None], 0.05))
        flux = np.where(inside, clean + sigma * rng.standard_normal(clean.shape), 0.0)
        spikes += _spikes(rng, flux, inside, survey.spikes / len(DESI_ARMS), level)
        ivar = np.where(inside, 1.0 / sigma**2, 0.0)
        arms[arm] = (wave, flux.astype(np.float32), ivar.astype(np.float32), np.zeros(flux.shape, np.int32))
    ids = 39_627_000_000_000_000 + 7 * np.arange(1, n + 1, dtype=np.int64)  # DESI-like TARGETID
    truth.insert(0, "targetid", ids)
    truth["vrad"], truth["snr"], truth["n_spikes"] = vrad, snr, spikes
    catalogue = catalogue_labels(rng, truth, survey)
    catalogue.insert(0, "targetid", ids)
    catalogue["vrad"] = vrad
    return {"targetid": ids, "arms": arms, "redshift": vrad / C_KM_S, "truth": truth, "labels": catalogue}


def target_dir(profile: str, name: str) -> Path:
    """Folder of a simulated target's files: ``data/<profile>_targets/<name>/``.

    Parameters
    ----------
    profile, name : str

    Returns
    -------
    Path
    """
    return data_dir(profile).with_name(f"{get_profile(profile).name}_targets") / name


def ensure_target(name: str, profile: str, out_dir=None, progress: bool = True) -> dict:
    """Simulate a target's files once (spectra in the archive format, catalogue labels, true labels) and reuse them.

    Parameters
    ----------
    name : {"gaia_rvs", "desi"}
    profile : str
        Sizes the target (:data:`POOL_SIZES`).
    out_dir : str or Path, optional
        Default :func:`target_dir`.
    progress : bool

    Returns
    -------
    dict
        ``survey``, ``spectra`` (list of paths), ``labels`` and ``truth`` (CSV paths) and ``config``.

    Raises
    ------
    ValueError
        An unknown target or profile.
    """
    if name not in TARGETS:
        raise ValueError(f"Unknown simulated target {name!r}; valid: {', '.join(TARGETS)}")
    out = Path(out_dir) if out_dir is not None else target_dir(profile, name)
    instrument = "gaia_rvs" if name == "gaia_rvs" else "mr"
    config = dict(asdict(TARGETS[name]), n=POOL_SIZES[get_profile(profile).name][name], profile=profile,
                  grid=cache_file(instrument=instrument).stem)  # a new synthesis makes new targets
    config = files.as_json(config)  # as target.json holds it, to compare with it
    record = {"survey": name, "spectra": [str(out / ("spectra.fits" if name == "gaia_rvs" else "coadd.fits"))],
              "labels": str(out / "labels.csv"), "truth": str(out / "truth.csv"), "config": config}
    if (out / TARGET_FILE).is_file() and json.loads((out / TARGET_FILE).read_text())["config"] == config:
        return record
    out.mkdir(parents=True, exist_ok=True)
    grid = embedded_grid(instrument=instrument, progress=progress)
    if name == "gaia_rvs":
        sim = simulate_gaia_rvs(grid, config["n"])
        write_gaia_rvs(record["spectra"][0], sim["targetid"], sim["flux"], sim["flux_error"])
    else:
        sim = simulate_desi(grid, config["n"])
        write_desi_coadd(record["spectra"][0], sim["targetid"], sim["arms"], redshift=sim["redshift"])
    files.write_text(record["labels"], sim["labels"].to_csv(index=False))
    files.write_text(record["truth"], sim["truth"].to_csv(index=False))
    files.write_json(out / TARGET_FILE, record)
    return record
