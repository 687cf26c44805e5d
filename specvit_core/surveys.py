"""Survey spectra as the archives serve them: one record type and a loader per survey (paper section 5.2, app. L.1).

Each loader reads the files as the archive writes them and returns :class:`ObservedSpectrum` records that say in
which medium (air or vacuum) and frame (observed or rest) their wavelengths are; :mod:`.preprocess` (appendix L)
turns them into the 4096-pixel datasets of the training engine. The loaders never convert media or frames.

* ``apogee``: DR17 ``apStar-*.fits`` / ``aspcapStar-*.fits``; log-linear grid from CRVAL1/CDELT1; vacuum, rest
  frame; errors from HDU 2, bad bitmask pixels removed.
* ``desi``: DR1 ``coadd-*.fits`` with the B/R/Z arms merged by inverse variance (vacuum, observed frame,
  redshift from REDSHIFTS), or the appendix-L.1 HDF5 files (vacuum, rest frame, no errors).
* ``gaia_rvs``: DR3 RVS mean spectra as DataLink serves them (CSV, ECSV, FITS, VOTable); vacuum, rest frame,
  nm converted to Angstrom.
* ``table``: a generic long table (CSV, ECSV, FITS) whose medium and frame the caller states.

:func:`load_spectra` dispatches on the survey name and refuses a target that appears twice; :func:`read_labels`
reads the survey's label catalogue (APOGEE allStar, DESI MWS VAC, Gaia ``gaia_source``) into one table;
:func:`write_desi_coadd` and :func:`write_gaia_rvs` write simulated spectra in the archives' layouts.
"""
from __future__ import annotations

import gzip
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import files
from .instrument import GAIA_RVS_N_PIXELS, gaia_rvs_wavelength

MEDIA = ("air", "vacuum")
SURVEYS = ("apogee", "desi", "gaia_rvs", "table")

# APOGEE_PIXMASK bits the DR17 pipeline marks BAD (level 1; apogee_drp utils/bitmask.py PixelBitMask): 0 BADPIX,
# 1 CRPIX, 2 SATPIX, 3 UNFIXABLE, 4 BADDARK, 5 BADFLAT, 6 BADERR, 7 NOSKY, 14 NOT_ENOUGH_PSF. The warning bits
# (8 LITTROW_GHOST, 9-11 PERSIST_*, 12 SIG_SKYLINE, 13 SIG_TELLURIC) keep their pixels.
APOGEE_BAD_BITS = 0b0100_0000_1111_1111  # 16639
APOGEE_SENTINEL = -9999.0  # allStar's "no value"
DESI_ARMS = ("B", "R", "Z")
DESI_BUNIT = {"WAVELENGTH": "Angstrom", "FLUX": "10**-17 erg/(s cm2 Angstrom)",
              "IVAR": "10**+34 (s2 cm4 Angstrom2) / erg2"}
_FITS_SUFFIXES = (".fits", ".fit", ".fts")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


@dataclass
class ObservedSpectrum:
    """One spectrum as a survey serves it.

    Parameters
    ----------
    targetid : int or str
        The survey's identifier (DESI TARGETID and Gaia source_id are integers, APOGEE_ID a string).
    wave : ndarray (n,)
        Wavelengths, Angstrom, strictly increasing.
    flux : ndarray (n,)
        Flux in the survey's units (any scale; preprocessing normalizes it). NaN marks a pixel without data.
    error : ndarray (n,) or None
        1-sigma uncertainty of ``flux`` in the same units; ``inf`` or NaN marks a pixel without data; None when the
        file has no uncertainties (preprocessing then writes the appendix-L.6 placeholder).
    medium : {"air", "vacuum"}
        The medium of ``wave``.
    rest_frame : bool
        True when the survey already shifted the spectrum to the star's rest frame.
    vrad : float
        Radial velocity, km/s (NaN when unknown); used to reach the rest frame when ``rest_frame`` is False.
    redshift : float
        Redshift z (NaN when unknown); used when ``vrad`` is NaN.
    source : str
        Where the spectrum came from (``path[HDU or row]``), named in error messages.

    Raises
    ------
    ValueError
        If the arrays differ in shape, ``wave`` is not finite and strictly increasing, or ``medium`` is unknown;
        the message names ``source``.
    """

    targetid: int | str
    wave: np.ndarray
    flux: np.ndarray
    error: np.ndarray | None
    medium: str
    rest_frame: bool
    vrad: float = np.nan
    redshift: float = np.nan
    source: str = ""

    def __post_init__(self):
        self.wave = np.asarray(self.wave, dtype=np.float64)
        self.flux = np.asarray(self.flux, dtype=np.float64)
        if self.error is not None:
            self.error = np.asarray(self.error, dtype=np.float64)
        where = self.source or f"target {self.targetid}"
        if self.medium not in MEDIA:
            raise ValueError(f"{where}: unknown wavelength medium {self.medium!r}; use one of {', '.join(MEDIA)}")
        if self.wave.ndim != 1 or self.wave.size < 2:
            raise ValueError(f"{where}: wavelengths must be a 1-D array of at least 2 values; got shape "
                             f"{self.wave.shape}")
        if not np.all(np.isfinite(self.wave)) or np.any(np.diff(self.wave) <= 0):
            raise ValueError(f"{where}: wavelengths must be finite and strictly increasing")
        for name in ("flux", "error"):
            values = getattr(self, name)
            if values is not None and values.shape != self.wave.shape:
                raise ValueError(f"{where}: {name} has shape {values.shape}, the wavelengths {self.wave.shape}")


# ----------------------------------------------------------------------------------------------- dispatching

def load_spectra(survey: str, paths, **options) -> list[ObservedSpectrum]:
    """Load survey spectra with the survey's loader and check that no target appears twice.

    Parameters
    ----------
    survey : {"apogee", "desi", "gaia_rvs", "table"}
        Which loader reads the files (:func:`load_apogee`, :func:`load_desi`, :func:`load_gaia_rvs`,
        :func:`load_table`).
    paths : str, Path or iterable of them
        The files, or folders whose files (not hidden, sorted by name) are all read.
    **options
        Passed to the loader (e.g. ``wavelength`` for DESI HDF5 files, ``medium`` and ``rest_frame`` for tables).

    Returns
    -------
    list of ObservedSpectrum
        In file order, and within a file in the archive's order.

    Raises
    ------
    ValueError
        If ``survey`` is unknown, or a targetid appears twice (the message names both sources), or a loader
        refuses a file.
    FileNotFoundError
        If a file does not exist (the message names it).
    """
    loaders = {"apogee": load_apogee, "desi": load_desi, "gaia_rvs": load_gaia_rvs, "table": load_table}
    if survey not in loaders:
        raise ValueError(f"Unknown survey {survey!r}; use one of {', '.join(SURVEYS)}")
    spectra = loaders[survey](_existing(_expand_folders(paths)), **options)
    seen = {}
    for spectrum in spectra:
        key = _id_key(spectrum.targetid)
        if key in seen:
            raise ValueError(f"targetid {spectrum.targetid} appears twice: in {seen[key].source} and in "
                             f"{spectrum.source}")
        seen[key] = spectrum
    return spectra


def _id_key(targetid):
    """A hashable key under which equal ids compare equal (numpy integers and Python integers alike)."""
    return int(targetid) if isinstance(targetid, (int, np.integer)) else str(targetid)


def _expand_folders(paths) -> list[Path]:
    """``paths`` with every folder replaced by its files (not hidden), sorted by name."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out = []
    for path in map(Path, paths):
        out += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) \
            if path.is_dir() else [path]
    return out


def _existing(paths) -> list[Path]:
    """The files of ``paths`` (one path or an iterable of them) as Paths; a missing one raises FileNotFoundError."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    return paths


# ----------------------------------------------------------------------------------------------------- APOGEE

def load_apogee(paths, bad_bits: int = APOGEE_BAD_BITS) -> list[ObservedSpectrum]:
    """Read APOGEE DR17 combined spectra: ``apStar-*.fits`` (also ``asStar``) and ``aspcapStar-*.fits``.

    apStar: HDU 1 flux (1e-17 erg/s/cm2/A), HDU 2 its 1-sigma error, HDU 3 the APOGEE_PIXMASK pixel bitmask; each
    is 1-D or 2-D, and of a 2-D array row 0 (the pixel-weighted combination of the visits) is used. aspcapStar:
    HDU 1 the pseudo-continuum-normalized flux, HDU 2 its error (no bitmask). The wavelengths are log-linear,
    ``lambda_i = 10**(CRVAL1 + CDELT1 * (i + 1 - CRPIX1))`` Angstrom for the NAXIS1 pixels of HDU 1, CRPIX1 = 1 in
    DR17; the keywords are read from the HDU 1 header, else from the primary header (the DR17 pipeline writes them
    in both). DR17 resamples every visit to the star's rest frame before combining (``rest_frame=True``), in
    vacuum wavelengths; ``vrad`` is the primary header's VHELIO (S/N-weighted barycentric RV, km/s) where given.

    No-data pixels (flux NaN, error inf): a bit of ``bad_bits`` set in the bitmask, or a non-finite flux or
    error, or an error <= 0.

    Parameters
    ----------
    paths : str, Path or iterable of them
        The FITS files; a name starting with ``aspcapStar`` is read as aspcapStar, any other as apStar.
    bad_bits : int
        Bitmask bits that make a pixel bad; by default the DR17 BAD bits 0-7 and 14 (:data:`APOGEE_BAD_BITS`).

    Returns
    -------
    list of ObservedSpectrum
        One per file; ``targetid`` is the APOGEE_ID (str) from the primary header's OBJID, else from the file name.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If an expected HDU or wavelength keyword is missing or an array has the wrong shape (the message names
        the file and the HDU or keyword).
    """
    return [_read_apogee(path, int(bad_bits)) for path in _existing(paths)]


def _read_apogee(path: Path, bad_bits: int) -> ObservedSpectrum:
    """One apStar or aspcapStar file as an ObservedSpectrum."""
    from astropy.io import fits

    aspcap = path.name.lower().startswith("aspcapstar")
    with fits.open(path) as hdul:
        primary = hdul[0].header
        flux_hdu = _hdu(hdul, 1, path, "flux")
        flux = _apogee_row(flux_hdu.data, path, 1)
        error = _apogee_row(_hdu(hdul, 2, path, "flux error").data, path, 2)
        bits = None if aspcap else _apogee_row(_hdu(hdul, 3, path, "pixel bitmask").data, path, 3)
        wave = _apogee_wave(flux_hdu.header, primary, flux.size, path)
        targetid = _apogee_id(primary, path)
        vrad = _header_float(primary, "VHELIO")
    for hdu, values in ((2, error), (3, bits)):
        if values is not None and values.shape != flux.shape:
            raise ValueError(f"{path}: HDU {hdu} has {values.size} pixels, the flux in HDU 1 {flux.size}")
    bad = ~np.isfinite(flux) | ~np.isfinite(error) | (error <= 0)
    if bits is not None:
        bad |= (bits.astype(np.int64) & bad_bits) != 0
    flux, error = np.where(bad, np.nan, flux), np.where(bad, np.inf, error)
    return ObservedSpectrum(targetid, wave, flux, error, "vacuum", True, vrad=vrad, source=f"{path}[HDU 1]")


def _hdu(hdul, key, path: Path, what: str):
    """HDU ``key`` (index or EXTNAME) of an open FITS file; a missing one raises ValueError naming file and HDU."""
    try:
        return hdul[key]
    except (IndexError, KeyError):
        names = ", ".join(f"{i}:{h.name or '-'}" for i, h in enumerate(hdul))
        raise ValueError(f"{path}: no HDU {key} ({what}); the file has HDUs {names}") from None


def _apogee_row(data, path: Path, hdu: int) -> np.ndarray:
    """The combined spectrum of an apStar/aspcapStar image: the array itself (1-D) or its row 0 (2-D)."""
    if data is None or np.ndim(data) not in (1, 2) or np.size(data) == 0:
        raise ValueError(f"{path}: HDU {hdu} holds no 1-D or 2-D image (shape {np.shape(data)})")
    data = np.asarray(data)
    row = data if data.ndim == 1 else data[0]
    return row.astype(np.int64) if np.issubdtype(row.dtype, np.integer) else row.astype(np.float64)


def _apogee_wave(header, primary, n: int, path: Path) -> np.ndarray:
    """The log-linear APOGEE wavelengths (Angstrom) from CRVAL1/CDELT1/CRPIX1 of HDU 1, else the primary HDU."""
    keys = {}
    for key, default in (("CRVAL1", None), ("CDELT1", None), ("CRPIX1", 1.0)):
        value = header.get(key, primary.get(key, default))
        if value is None:
            raise ValueError(f"{path}: no {key} keyword in the header of HDU 1 or HDU 0; it defines the "
                             "log10-wavelength grid")
        keys[key] = float(value)
    ctype = str(header.get("CTYPE1", primary.get("CTYPE1", "LOG-LINEAR"))).upper()
    if "LOG" not in ctype:
        raise ValueError(f"{path}: CTYPE1 = {ctype!r}; APOGEE spectra have a LOG-LINEAR wavelength grid")
    return 10.0 ** (keys["CRVAL1"] + keys["CDELT1"] * (np.arange(n) + 1.0 - keys["CRPIX1"]))


def _apogee_id(primary, path: Path) -> str:
    """The APOGEE_ID: OBJID of the primary header, else parsed from ``apStar-<version>-[<telescope>-]<ID>.fits``."""
    objid = str(primary.get("OBJID", "")).strip()
    if objid:
        return objid
    stem = re.sub(r"\.fits?(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    parts = stem.split("-", 2)
    if len(parts) < 3 or parts[0].lower() not in ("apstar", "asstar", "aspcapstar"):
        raise ValueError(f"{path}: no OBJID keyword in the primary header and the name is not "
                         "apStar-<version>-<APOGEE_ID>.fits; cannot tell the APOGEE_ID")
    return re.sub(r"^(apo25m|lco25m|apo1m)-", "", parts[2])


def _header_float(header, key: str) -> float:
    """A numeric header keyword as float; NaN when absent or not a number."""
    try:
        return float(header.get(key, np.nan))
    except (TypeError, ValueError):
        return np.nan


# ------------------------------------------------------------------------------------------------------- DESI

def load_desi(paths, wavelength=None, group: str | None = None) -> list[ObservedSpectrum]:
    """Read DESI DR1 coadd (or spectra) FITS files and the HDF5 files of the paper's appendix L.1 ("Path 1").

    FITS: TARGETID from the FIBERMAP table; per arm (B, R, Z, those present) the image HDUs ``<ARM>_WAVELENGTH``
    (Angstrom, vacuum), ``<ARM>_FLUX`` (nspec, nwave), ``<ARM>_IVAR`` and ``<ARM>_MASK`` (0 = good). The arms
    share one 0.8 A lattice: pixels of different arms whose wavelengths coincide (within 0.01 A) are merged by
    inverse-variance weighting, ``flux = sum(ivar*flux)/sum(ivar)``, ``error = 1/sqrt(sum(ivar))``, into one
    strictly increasing array. A pixel with ivar <= 0, mask != 0 or a non-finite value adds nothing; a merged
    pixel without data has flux NaN and error inf. Wavelengths are in the observed (barycentric) frame,
    ``rest_frame=False``; ``redshift`` is Z of a REDSHIFTS table matched by TARGETID when the file has one. (A
    per-exposure spectra file repeats a TARGETID; :func:`load_spectra` then refuses it: use the coadd.)

    HDF5 (``.h5``/``.hdf5``): datasets ``<group>/spectra`` (N, n_wave; rest-framed flux), ``<group>/targetid``
    (and labels ``teff``, ``logg``, ``feh``, read by :func:`read_labels`); the wavelengths in ``<group>/wavelength``
    or ``wavelength``, else from the ``wavelength`` argument. Vacuum, ``rest_frame=True``, no errors.

    Parameters
    ----------
    paths : str, Path or iterable of them
        The files; HDF5 is recognized by its suffix or signature, any other file is read as FITS.
    wavelength : str, Path or array_like, optional
        Wavelengths (Angstrom) of HDF5 spectra whose file has none: a text file with one wavelength per line, or
        an array. When the file has wavelengths too, both must agree. Not used for FITS files.
    group : str, optional
        The HDF5 group to read; by default every top-level group that holds a ``spectra`` dataset.

    Returns
    -------
    list of ObservedSpectrum
        One per FIBERMAP row (FITS) or per spectrum row (HDF5), in file order.

    Raises
    ------
    FileNotFoundError
        If a file (or the wavelength text file) does not exist.
    ValueError
        If an expected HDU, column or dataset is missing, shapes disagree, or HDF5 spectra have no wavelengths
        (the message names the file).
    """
    spectra = []
    for path in _existing(paths):
        if _is_hdf5(path):
            spectra += _read_desi_h5(path, wavelength, group)
        else:
            spectra += _read_desi_fits(path)
    return spectra


def _is_hdf5(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file (by suffix, else by its signature)."""
    if path.suffix.lower() in _HDF5_SUFFIXES:
        return True
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def _read_desi_fits(path: Path) -> list[ObservedSpectrum]:
    """The spectra of one DESI coadd/spectra FITS file, arms merged."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        fibermap = _hdu(hdul, "FIBERMAP", path, "target table")
        targetids = np.asarray(_fits_column(fibermap, "TARGETID", path))
        names = {h.name.upper() for h in hdul}
        arms = [arm for arm in DESI_ARMS if f"{arm}_FLUX" in names]
        if not arms:
            raise ValueError(f"{path}: no B_FLUX, R_FLUX or Z_FLUX HDU; the file has HDUs {', '.join(sorted(names))}")
        waves, fluxes, ivars = zip(*(_desi_arm(hdul, arm, len(targetids), path) for arm in arms))
        redshift = _desi_redshifts(hdul, targetids, path) if "REDSHIFTS" in names else {}
    wave, flux, ivar = _merge_arms(waves, fluxes, ivars)
    with np.errstate(divide="ignore"):
        error = 1.0 / np.sqrt(ivar)
    return [ObservedSpectrum(int(tid), wave, flux[i], error[i], "vacuum", False,
                             redshift=redshift.get(int(tid), np.nan), source=f"{path}[FIBERMAP row {i}]")
            for i, tid in enumerate(targetids)]


def _fits_column(hdu, name: str, path: Path) -> np.ndarray:
    """Column ``name`` (case-insensitive) of a FITS table HDU; a missing one raises ValueError naming it."""
    columns = list(hdu.columns.names) if hasattr(hdu, "columns") else []
    found = [c for c in columns if c.upper() == name.upper()]
    if not found:
        raise ValueError(f"{path}: HDU {hdu.name} has no column {name}; it has {', '.join(columns) or 'none'}")
    return hdu.data[found[0]]


def _desi_arm(hdul, arm: str, n_spec: int, path: Path):
    """(wave, flux, ivar) of one DESI arm, flux and ivar (n_spec, n_wave); masked and bad pixels get ivar 0."""
    parts = {}
    for part in ("WAVELENGTH", "FLUX", "IVAR", "MASK"):
        data = _hdu(hdul, f"{arm}_{part}", path, f"{arm}-arm {part.lower()}").data
        if data is None:
            raise ValueError(f"{path}: HDU {arm}_{part} holds no data")
        parts[part] = np.asarray(data)
    wave = parts["WAVELENGTH"].astype(np.float64).ravel()
    if np.any(np.diff(wave) <= 0) or not np.all(np.isfinite(wave)):
        raise ValueError(f"{path}: {arm}_WAVELENGTH is not finite and strictly increasing")
    flux, ivar, mask = (np.atleast_2d(parts[p]) for p in ("FLUX", "IVAR", "MASK"))
    for part, values in (("FLUX", flux), ("IVAR", ivar), ("MASK", mask)):
        if values.shape != (n_spec, wave.size):
            raise ValueError(f"{path}: {arm}_{part} has shape {values.shape}; expected ({n_spec}, {wave.size}) "
                             f"for {n_spec} FIBERMAP rows and {wave.size} wavelengths")
    flux, ivar = flux.astype(np.float64), ivar.astype(np.float64)
    good = (mask == 0) & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    return wave, np.where(good, flux, 0.0), np.where(good, ivar, 0.0)


def _merge_arms(waves, fluxes, ivars, tolerance: float = 0.01):
    """Merge arms on one wavelength lattice: coinciding pixels (within ``tolerance`` A) are ivar-weighted.

    Returns the merged wavelengths (m,), flux (n, m) with NaN where no arm has data, and summed ivar (n, m).
    """
    wave = np.concatenate(waves)
    order = np.argsort(wave, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(wave[order]) > tolerance])
    counts = np.diff(np.r_[starts, wave.size])
    merged_wave = np.add.reduceat(wave[order], starts) / counts
    flux, ivar = np.concatenate(fluxes, axis=1)[:, order], np.concatenate(ivars, axis=1)[:, order]
    sum_ivar = np.add.reduceat(ivar, starts, axis=1)
    sum_flux = np.add.reduceat(ivar * flux, starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged_flux = np.where(sum_ivar > 0, sum_flux / sum_ivar, np.nan)
    return merged_wave, merged_flux, sum_ivar


def _desi_redshifts(hdul, targetids, path: Path) -> dict:
    """TARGETID -> Z from the REDSHIFTS table (the first row of a TARGETID wins)."""
    table = hdul["REDSHIFTS"]
    ids, z = _fits_column(table, "TARGETID", path), _fits_column(table, "Z", path)
    found = {}
    for tid, value in zip(ids, z):
        found.setdefault(int(tid), float(value))
    return found


def _read_desi_h5(path: Path, wavelength, group: str | None) -> list[ObservedSpectrum]:
    """The spectra of one appendix-L.1 HDF5 file (rest frame, vacuum, no errors)."""
    import h5py

    spectra = []
    with h5py.File(path, "r") as h5:
        for name in _h5_groups(h5, path, group):
            flux = np.atleast_2d(np.asarray(h5[name]["spectra"][()], dtype=np.float64))
            if "targetid" not in h5[name]:
                raise ValueError(f"{path}: group '{name}' has spectra but no '{name}/targetid' dataset")
            targetids = [_decode(t) for t in np.ravel(h5[name]["targetid"][()])]
            if len(targetids) != len(flux):
                raise ValueError(f"{path}: '{name}/targetid' has {len(targetids)} entries, '{name}/spectra' "
                                 f"{len(flux)} rows")
            wave = _h5_wavelength(h5, name, path, wavelength, flux.shape[1])
            spectra += [ObservedSpectrum(tid, wave, flux[i], None, "vacuum", True,
                                         source=f"{path}[{name}/spectra row {i}]")
                        for i, tid in enumerate(targetids)]
    return spectra


def _h5_groups(h5, path: Path, group: str | None) -> list[str]:
    """The groups of an L.1 HDF5 file to read: ``group``, else every top-level group with a ``spectra`` dataset."""
    import h5py

    if group is not None:
        if group not in h5 or not isinstance(h5[group], h5py.Group) or "spectra" not in h5[group]:
            raise ValueError(f"{path}: no dataset '{group}/spectra'; top-level keys: {', '.join(h5) or 'none'}")
        return [group]
    names = [k for k in h5 if isinstance(h5[k], h5py.Group) and "spectra" in h5[k]]
    if not names:
        raise ValueError(f"{path}: no group with a 'spectra' dataset; top-level keys: {', '.join(h5) or 'none'}")
    return names


def _decode(value):
    """An HDF5 identifier as int, or str for byte/text identifiers."""
    if isinstance(value, bytes):
        return value.decode().strip()
    if isinstance(value, (np.integer, int)):
        return int(value)
    return str(value).strip()


def _h5_wavelength(h5, group: str, path: Path, wavelength, n_wave: int) -> np.ndarray:
    """Wavelengths of an L.1 group: ``<group>/wavelength`` or ``wavelength`` in the file, else the argument."""
    given = None if wavelength is None else _wavelength_argument(wavelength)
    stored = None
    for key in (f"{group}/wavelength", "wavelength"):
        if key in h5:
            stored = np.asarray(h5[key][()], dtype=np.float64).ravel()
            break
    if stored is None and given is None:
        raise ValueError(f"{path}: the spectra of group '{group}' have no wavelengths: the file has no dataset "
                         f"'{group}/wavelength' or 'wavelength' and no wavelength argument was given")
    if stored is not None and given is not None and (stored.shape != given.shape or
                                                     not np.allclose(stored, given, rtol=0, atol=1e-6)):
        raise ValueError(f"{path}: the wavelengths stored in the file differ from the wavelength argument")
    wave = stored if stored is not None else given
    if wave.size != n_wave:
        raise ValueError(f"{path}: {wave.size} wavelengths for spectra of {n_wave} pixels in group '{group}'")
    return wave


def _wavelength_argument(wavelength) -> np.ndarray:
    """The ``wavelength`` argument as an array: a text file of one value per line, or array-like."""
    if isinstance(wavelength, (str, Path)):
        if not Path(wavelength).is_file():
            raise FileNotFoundError(f"{wavelength}: no such wavelength file")
        return np.loadtxt(wavelength, dtype=np.float64, ndmin=1).ravel()
    return np.asarray(wavelength, dtype=np.float64).ravel()


# -------------------------------------------------------------------------------------------------- Gaia RVS

def load_gaia_rvs(paths) -> list[ObservedSpectrum]:
    """Read Gaia DR3 RVS mean spectra as the Gaia archive's DataLink service (and bulk download) serves them.

    The spectra are in the rest frame, continuum-normalized, on vacuum wavelengths 846-870 nm in 0.01 nm steps
    (2401 pixels); wavelengths are returned in Angstrom (x10). Two layouts are read:

    * long ("INDIVIDUAL"/"COMBINED" data structure): one row per pixel with columns ``wavelength`` (nm, or the
      column's unit when it names one), ``flux``, ``flux_error`` and, when several sources share a file,
      ``source_id``; without that column the source_id is taken from the header/table metadata (``source_id``)
      or from the file name (``RVS-Gaia DR3 <source_id>.<ext>``).
    * one row per source ("RAW" data structure, and the bulk ``RvsMeanSpectrum_*`` files): ``source_id`` and
      array-valued ``flux`` and ``flux_error`` (2401 values: a 2-D column, or strings ``[v1,v2,...]`` in CSV);
      the wavelengths are then the fixed DR3 grid :func:`specvit_core.instrument.gaia_rvs_wavelength`.

    Pixels whose flux or flux_error is NaN (or null) have no data (flux NaN, error inf).

    Parameters
    ----------
    paths : str, Path or iterable of them
        CSV, ECSV (also gzipped), FITS (every table HDU is read) or VOTable (``.xml``/``.vot``; every table, with
        the source_id from a column or a PARAM/INFO of the table or its resources).

    Returns
    -------
    list of ObservedSpectrum
        One per source, ``targetid`` the source_id (int), vacuum, ``rest_frame=True``.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If a required column is missing, an array has not 2401 values, or no source_id can be found (the message
        names the file).
    """
    spectra = []
    for path in _existing(paths):
        for table, meta, where in _read_tables(path):
            if _column(table, "wavelength") is not None:
                spectra += _gaia_long(table, meta, where, path)
            else:
                spectra += _gaia_wide(table, where)
    return spectra


def _gaia_long(table, meta: dict, where: str, path: Path) -> list[ObservedSpectrum]:
    """Spectra of a one-row-per-pixel Gaia RVS table."""
    wcol = _require(table, "wavelength", where)
    wave = _floats(table[wcol], where, wcol) * _angstrom_per_unit(table[wcol].unit, where)
    flux = _floats(table[_require(table, "flux", where)], where, "flux")
    error = _floats(table[_require(table, "flux_error", where)], where, "flux_error")
    scol = _column(table, "source_id")
    ids = [_gaia_source_id(meta, path, where)] * len(table) if scol is None else _ids(table[scol], where, scol)
    spectra = []
    for sid, rows in _groups(ids):
        rows = rows[np.argsort(wave[rows], kind="stable")]
        spectra.append(_gaia_record(sid, wave[rows], flux[rows], error[rows], f"{where}[source_id {sid}]"))
    return spectra


def _gaia_wide(table, where: str) -> list[ObservedSpectrum]:
    """Spectra of a one-row-per-source Gaia RVS table with array-valued flux and flux_error."""
    scol, fcol, ecol = (_require(table, name, where) for name in ("source_id", "flux", "flux_error"))
    wave = gaia_rvs_wavelength()
    spectra = []
    for row, sid in enumerate(_ids(table[scol], where, scol)):
        flux, error = (_array_cell(table[col][row], where, row, col) for col in (fcol, ecol))
        spectra.append(_gaia_record(sid, wave, flux, error, f"{where}[row {row}]"))
    return spectra


def _gaia_record(source_id, wave, flux, error, source: str) -> ObservedSpectrum:
    """An RVS spectrum; pixels with a non-finite flux or error become no-data."""
    bad = ~np.isfinite(flux) | ~np.isfinite(error)
    return ObservedSpectrum(int(source_id), wave, np.where(bad, np.nan, flux), np.where(bad, np.inf, error),
                            "vacuum", True, source=source)


def _array_cell(value, where: str, row: int, name: str) -> np.ndarray:
    """A 2401-value array cell: a (masked) array, or a string ``[v1,v2,...]`` with null/NaN for missing values."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        tokens = [t for t in re.split(r"[\s,]+", value.strip().strip("[]()")) if t]
        try:
            values = np.array([np.nan if t.lower() in ("null", "nan", "none", "--") else float(t) for t in tokens])
        except ValueError:
            raise ValueError(f"{where}: row {row}: column {name} is not an array of numbers") from None
    else:
        values = np.ma.filled(np.ma.asarray(value, dtype=np.float64), np.nan).ravel()
    if values.size != GAIA_RVS_N_PIXELS:
        raise ValueError(f"{where}: row {row}: column {name} has {values.size} values; Gaia DR3 RVS mean spectra "
                         f"have {GAIA_RVS_N_PIXELS} (846-870 nm in 0.01 nm steps)")
    return values


def _gaia_source_id(meta: dict, path: Path, where: str) -> int:
    """The source_id of a single-source file: ``source_id`` in its metadata, else a long number in its name."""
    if meta.get("source_id") is not None:
        return int(meta["source_id"])
    found = re.findall(r"\d{10,}", path.name)
    if not found:
        raise ValueError(f"{where}: no source_id column, no source_id in the header and none in the file name")
    return int(found[-1])


def _angstrom_per_unit(unit, where: str) -> float:
    """Angstrom per wavelength unit: nm (the archive's unit, also assumed when none is given) or Angstrom."""
    name = "" if unit is None else str(unit).strip().lower().replace(" ", "")
    if name in ("", "nm", "nanometer", "nanometers"):
        return 10.0
    if name in ("angstrom", "aa", "a", "0.1nm"):
        return 1.0
    raise ValueError(f"{where}: wavelength unit {unit!s} is neither nm nor Angstrom")


# ------------------------------------------------------------------------------------------------ plain tables

def load_table(paths, medium: str, rest_frame: bool) -> list[ObservedSpectrum]:
    """Read a generic long table of spectra: one row per pixel, any number of targets per file.

    Columns (case-insensitive): ``targetid``, ``wavelength`` (Angstrom), ``flux``, optional ``error`` (1-sigma;
    NaN or inf marks no data) and optional ``vrad`` (km/s, one value per target). A target's rows are sorted by
    wavelength. Medium and frame are not guessed: the caller states them.

    Parameters
    ----------
    paths : str, Path or iterable of them
        CSV, ECSV or FITS tables (of a FITS file the first table HDU).
    medium : {"air", "vacuum"}
        The medium of the wavelengths.
    rest_frame : bool
        Whether the wavelengths are in the stars' rest frame.

    Returns
    -------
    list of ObservedSpectrum
        One per target, in order of first appearance; ``error`` None when the table has no error column.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If ``medium`` or ``rest_frame`` is invalid, a required column is missing (the message lists the columns
        the file has), a target's vrad varies, or its wavelengths are not strictly increasing.
    """
    if medium not in MEDIA:
        raise ValueError(f"medium must be one of {', '.join(MEDIA)}; got {medium!r}")
    if not isinstance(rest_frame, (bool, np.bool_)):
        raise ValueError(f"rest_frame must be True or False; got {rest_frame!r}")
    spectra = []
    for path in _existing(paths):
        table, _, where = _read_tables(path)[0]
        spectra += _table_spectra(table, where, medium, bool(rest_frame))
    return spectra


def _table_spectra(table, where: str, medium: str, rest_frame: bool) -> list[ObservedSpectrum]:
    """The spectra of one long table."""
    tcol, wcol, fcol = (_require(table, name, where) for name in ("targetid", "wavelength", "flux"))
    ecol, vcol = _column(table, "error"), _column(table, "vrad")
    ids = _ids(table[tcol], where, tcol)
    wave, flux = _floats(table[wcol], where, wcol), _floats(table[fcol], where, fcol)
    error = None if ecol is None else _floats(table[ecol], where, ecol)
    vrad = None if vcol is None else _floats(table[vcol], where, vcol)
    spectra = []
    for tid, rows in _groups(ids):
        rows = rows[np.argsort(wave[rows], kind="stable")]
        velocity = np.nan
        if vrad is not None:
            values = np.unique(vrad[rows][np.isfinite(vrad[rows])])
            if values.size > 1:
                raise ValueError(f"{where}: targetid {tid} has {values.size} different vrad values")
            velocity = float(values[0]) if values.size else np.nan
        spectra.append(ObservedSpectrum(tid, wave[rows], flux[rows], None if error is None else error[rows],
                                        medium, rest_frame, vrad=velocity,
                                        source=f"{where}[targetid {tid}, rows {rows.min()}-{rows.max()}]"))
    return spectra


# ----------------------------------------------------------------------------------------------------- labels

LABELS = ("T_eff", "log_g", "M_H")
LABEL_COLUMNS = {  # label -> candidate columns (case-insensitive), the first present is used
    "apogee": {"targetid": ("APOGEE_ID",), "T_eff": ("TEFF",), "log_g": ("LOGG",), "M_H": ("M_H", "FE_H"),
               "vrad": ("VHELIO_AVG",)},
    "desi": {"targetid": ("TARGETID",), "T_eff": ("TEFF",), "log_g": ("LOGG",), "M_H": ("FEH",),
             "vrad": ("VRAD",), "redshift": ("Z",)},
    "gaia_rvs": {"targetid": ("source_id",), "T_eff": ("teff_gspphot",), "log_g": ("logg_gspphot",),
                 "M_H": ("mh_gspphot",), "vrad": ("radial_velocity",)},
    "table": {"targetid": ("targetid",), "T_eff": ("T_eff",), "log_g": ("log_g",), "M_H": ("M_H",),
              "vrad": ("vrad",), "redshift": ("redshift",)},
}
DESI_H5_LABELS = {"targetid": ("targetid",), "T_eff": ("teff",), "log_g": ("logg",), "M_H": ("feh",)}


def read_labels(path, survey: str, missing: str = "raise", group: str | None = None):
    """Read a survey's label catalogue into one table of ``targetid, T_eff, log_g, M_H`` (+ vrad, redshift).

    Columns per survey (case-insensitive; :data:`LABEL_COLUMNS`): apogee allStar (APOGEE_ID, TEFF, LOGG, M_H or,
    when the file has no M_H column, FE_H, VHELIO_AVG; -9999 means no value), desi MWS VAC (TARGETID, TEFF, LOGG,
    FEH, VRAD, Z) or the appendix-L.1 HDF5 file (``<group>/targetid``, ``teff``, ``logg``, ``feh``), gaia_rvs
    ``gaia_source`` (source_id, teff_gspphot, logg_gspphot, mh_gspphot, radial_velocity), table (targetid, T_eff,
    log_g, M_H, vrad, redshift). Of a FITS file the first table HDU holding the targetid column is read. Rows are
    numbered from 0 (the first data row) in messages. vrad and redshift may be NaN (unknown). A catalogue that
    lists a star more than once (DR17 allStar, the MWS VAC) must be cut to one row per star first.

    Parameters
    ----------
    path : str or Path
        CSV, ECSV, FITS table or (desi) HDF5 file.
    survey : {"apogee", "desi", "gaia_rvs", "table"}
        Which column names to use.
    missing : {"raise", "drop"}
        What a row without T_eff, log_g or M_H (NaN, null or sentinel) does: raise, or be dropped (the count is
        reported with :func:`warnings.warn`).
    group : str, optional
        HDF5 group; by default the one group that holds a ``targetid`` dataset.

    Returns
    -------
    pandas.DataFrame
        Columns ``targetid`` (str for APOGEE, int for DESI and Gaia), ``T_eff`` (K), ``log_g`` (dex), ``M_H``
        (dex) and, when the file has them, ``vrad`` (km/s) and ``redshift``; one row per kept input row.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If ``survey`` or ``missing`` is unknown; a required column is missing (naming file and column and listing
        the file's columns); a targetid appears twice (naming file and both rows); a label is missing and
        ``missing="raise"`` (naming file, row and column).

    Warns
    -----
    UserWarning
        With ``missing="drop"``, how many rows were dropped.
    """
    if survey not in LABEL_COLUMNS:
        raise ValueError(f"Unknown survey {survey!r}; use one of {', '.join(SURVEYS)}")
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop'; got {missing!r}")
    path = _existing(path)[0]
    if _is_hdf5(path):
        if survey != "desi":
            raise ValueError(f"{path}: HDF5 label files are read for survey 'desi' (appendix L.1) only")
        columns, names, where = _h5_label_columns(path, group)
    else:
        columns, names, where = _table_label_columns(path, survey)
    return _label_frame(columns, names, where, survey == "apogee", missing)


def _table_label_columns(path: Path, survey: str):
    """({label: column data}, {label: column name}, where) of a label table."""
    spec = LABEL_COLUMNS[survey]
    tables = _read_tables(path)
    table, _, where = next((t for t in tables if _column(t[0], *spec["targetid"]) is not None), tables[0])
    columns, names = {}, {}
    for label, candidates in spec.items():
        name = _column(table, *candidates)
        if name is None and label in ("targetid", *LABELS):
            raise ValueError(f"{where}: no column {' or '.join(candidates)} (for {label}); the file has columns "
                             f"{', '.join(table.colnames)}")
        if name is not None:
            columns[label], names[label] = table[name], name
    return columns, names, where


def _h5_label_columns(path: Path, group: str | None):
    """({label: data}, {label: dataset name}, where) of an appendix-L.1 HDF5 group."""
    import h5py

    with h5py.File(path, "r") as h5:
        if group is None:
            found = [k for k in h5 if isinstance(h5[k], h5py.Group) and "targetid" in h5[k]]
            if len(found) != 1:
                raise ValueError(f"{path}: {len(found)} groups hold a 'targetid' dataset ({', '.join(found)}); "
                                 "pass group=")
            group = found[0]
        if group not in h5 or not isinstance(h5[group], h5py.Group):
            raise ValueError(f"{path}: no group '{group}'; top-level keys: {', '.join(h5)}")
        columns, names = {}, {}
        for label, (name,) in DESI_H5_LABELS.items():
            if name not in h5[group]:
                raise ValueError(f"{path}: no dataset '{group}/{name}' (for {label}); the group has "
                                 f"{', '.join(h5[group])}")
            data = np.ravel(h5[group][name][()])
            columns[label] = [_decode(v) for v in data] if label == "targetid" else data
            names[label] = f"{group}/{name}"
    return columns, names, f"{path}[{group}]"


def _label_frame(columns: dict, names: dict, where: str, sentinel: bool, missing: str):
    """The label DataFrame: sentinels to NaN, incomplete rows raised or dropped, duplicate targetids refused."""
    import pandas as pd

    ids = _ids(columns["targetid"], where, names["targetid"])
    optional = [label for label in ("vrad", "redshift") if label in columns]
    values = {label: _floats(columns[label], where, names[label]) for label in (*LABELS, *optional)}
    raw = {label: values[label].copy() for label in LABELS}
    if sentinel:
        for label in values:
            values[label][np.isclose(values[label], APOGEE_SENTINEL)] = np.nan
    bad = ~np.isfinite(np.column_stack([values[label] for label in LABELS]))
    incomplete = bad.any(axis=1)
    if incomplete.any() and missing == "raise":
        row = int(np.flatnonzero(incomplete)[0])
        label = LABELS[int(np.flatnonzero(bad[row])[0])]
        raise ValueError(f"{where}: row {row} (targetid {ids[row]}) has no {label}: column {names[label]} is "
                         f"{raw[label][row]}; pass missing='drop' to drop such rows")
    if incomplete.any():
        warnings.warn(f"{where}: dropped {int(incomplete.sum())} of {len(ids)} rows without T_eff, log_g or M_H",
                      stacklevel=3)
    keep = np.flatnonzero(~incomplete)
    first = {}
    for row in keep:
        key = _id_key(ids[row])
        if key in first:
            raise ValueError(f"{where}: targetid {ids[row]} appears twice, in rows {first[key]} and {row}")
        first[key] = int(row)
    frame = {"targetid": [ids[row] for row in keep]}
    frame.update({label: values[label][keep] for label in (*LABELS, *optional)})
    return pd.DataFrame(frame)


# -------------------------------------------------------------------------------------------- table reading

def _read_tables(path: Path) -> list[tuple]:
    """The tables of a CSV, ECSV, FITS or VOTable file as (astropy Table, lower-case metadata, where)."""
    from astropy.table import Table

    kind = _table_kind(path)
    if kind == "fits":
        return _fits_tables(path)
    if kind == "votable":
        return _votables(path)
    try:
        table = Table.read(path, format="ascii.ecsv" if kind == "ecsv" else "ascii.csv")
    except Exception as error:  # astropy raises many types for malformed text tables
        raise ValueError(f"{path}: cannot read it as {kind.upper()}: {error}") from error
    return [(table, {str(k).lower(): v for k, v in table.meta.items()}, str(path))]


def _table_kind(path: Path) -> str:
    """'fits', 'votable', 'ecsv' or 'csv' from the suffix (a ``.gz`` is looked through) and the ECSV signature."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(_FITS_SUFFIXES):
        return "fits"
    if name.endswith((".xml", ".vot", ".votable")):
        return "votable"
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        return "ecsv" if fh.read(64).lstrip().startswith(b"# %ECSV") else "csv"


def _fits_tables(path: Path) -> list[tuple]:
    """Every table HDU of a FITS file as (Table, lower-case header keywords, ``path[HDU i]``)."""
    from astropy.io import fits
    from astropy.table import Table
    from astropy.units import UnitsWarning

    tables = []
    with fits.open(path, memmap=False) as hdul:
        for index, hdu in enumerate(hdul):
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UnitsWarning)
                    table = Table.read(hdu)
                meta = {key.lower(): value for key, value in hdu.header.items()}
                tables.append((table, meta, f"{path}[HDU {index}]"))
        if not tables:
            raise ValueError(f"{path}: no table HDU; the file has HDUs {', '.join(h.name for h in hdul)}")
    return tables


def _votables(path: Path) -> list[tuple]:
    """Every table of a VOTable as (Table, PARAM/INFO values of the table and its resources, where)."""
    from astropy.io.votable import parse

    found = []

    def walk(resource, inherited: dict):
        params = dict(inherited)
        params.update({str(i.name).lower(): i.value for i in resource.infos})
        params.update({str(p.name).lower(): p.value for p in resource.params})
        for table in resource.tables:
            own = dict(params, **{str(p.name).lower(): p.value for p in table.params})
            found.append((table.to_table(use_names_over_ids=True), own, f"{path}[table {len(found)}]"))
        for child in resource.resources:
            walk(child, params)

    for resource in parse(str(path)).resources:
        walk(resource, {})
    if not found:
        raise ValueError(f"{path}: no table in the VOTable")
    return found


def _column(table, *names: str) -> str | None:
    """The first of ``names`` that is a column of ``table`` (case-insensitive), as spelled there; else None."""
    lower = {name.lower(): name for name in table.colnames}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _require(table, name: str, where: str) -> str:
    """Column ``name`` of ``table`` (case-insensitive); a missing one raises ValueError listing the columns."""
    found = _column(table, name)
    if found is None:
        raise ValueError(f"{where}: no column {name!r}; the file has columns {', '.join(table.colnames)}")
    return found


def _floats(column, where: str, name: str) -> np.ndarray:
    """A column as float64 with NaN for masked (null) entries."""
    data = np.ma.asarray(column)
    try:
        values = data.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: column {name} is not numeric") from None
    return np.ma.filled(values, np.nan).ravel()


def _ids(column, where: str, name: str) -> list:
    """Identifiers of a column: int for integer (or integral float) columns, else stripped str; none missing."""
    data = np.ma.asarray(column)
    mask = np.ma.getmaskarray(data)
    if mask.any():
        raise ValueError(f"{where}: row {int(np.flatnonzero(mask)[0])} has no {name}")
    values = np.asarray(data).ravel()
    if np.issubdtype(values.dtype, np.integer):
        return [int(v) for v in values]
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values) & (values == np.round(values))):
            row = int(np.flatnonzero(~(np.isfinite(values) & (values == np.round(values))))[0])
            raise ValueError(f"{where}: row {row}: {name} = {values[row]} is not an identifier")
        return [int(v) for v in values]
    return [v.decode().strip() if isinstance(v, bytes) else str(v).strip() for v in values]


def _groups(ids: list) -> list[tuple]:
    """(id, rows) for each distinct id in order of first appearance."""
    rows = {}
    for row, key in enumerate(ids):
        rows.setdefault(key, []).append(row)
    return [(key, np.asarray(found)) for key, found in rows.items()]


# ---------------------------------------------------------------------------------------------------- writers

def write_desi_coadd(path, targetid, arms: dict, redshift=None) -> None:
    """Write spectra in the DESI DR1 coadd FITS layout (simulated survey-like files; written atomically).

    HDUs: PRIMARY (empty); FIBERMAP (binary table, TARGETID int64); per arm, in B, R, Z order, the images
    ``<ARM>_WAVELENGTH`` (float64, BUNIT Angstrom), ``<ARM>_FLUX`` (float32, BUNIT 10**-17 erg/(s cm2 Angstrom)),
    ``<ARM>_IVAR`` (float32, BUNIT 10**+34 (s2 cm4 Angstrom2) / erg2) and ``<ARM>_MASK`` (uint32, stored as int32
    with BZERO = 2**31 as in the archive); REDSHIFTS (TARGETID, Z) when ``redshift`` is given. The archive's
    EXP_FIBERMAP, RESOLUTION and SCORES HDUs are not written.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder must exist.
    targetid : array_like of int, shape (N,)
        DESI TARGETIDs.
    arms : dict
        ``"B"``, ``"R"``, ``"Z"`` (any subset) -> ``(wave, flux, ivar, mask)``: wave (n_arm,) vacuum Angstrom,
        flux, ivar and mask (N, n_arm).
    redshift : array_like of float, shape (N,), optional
        Redshift z of each target, written to a REDSHIFTS table.

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If an arm name is unknown, no arm is given, or shapes disagree.
    """
    from astropy.io import fits

    targetid = np.asarray(targetid, dtype=np.int64).ravel()
    arms = {str(arm).upper(): parts for arm, parts in arms.items()}
    if not arms or set(arms) - set(DESI_ARMS):
        raise ValueError(f"arms must map some of {', '.join(DESI_ARMS)} to (wave, flux, ivar, mask); got "
                         f"{', '.join(arms) or 'none'}")
    hdus = [fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns([fits.Column("TARGETID", "K", array=targetid)], name="FIBERMAP")]
    for arm in (a for a in DESI_ARMS if a in arms):
        wave, flux, ivar, mask = arms[arm]
        wave = np.asarray(wave, dtype=np.float64).ravel()
        images = {"WAVELENGTH": wave, "FLUX": np.atleast_2d(np.asarray(flux, dtype=np.float32)),
                  "IVAR": np.atleast_2d(np.asarray(ivar, dtype=np.float32)),
                  "MASK": np.atleast_2d(np.asarray(mask)).astype(np.uint32)}
        for part, data in images.items():
            if part != "WAVELENGTH" and data.shape != (targetid.size, wave.size):
                raise ValueError(f"{arm} {part.lower()} has shape {data.shape}; expected ({targetid.size}, "
                                 f"{wave.size})")
            hdu = fits.ImageHDU(data, name=f"{arm}_{part}")
            if part in DESI_BUNIT:
                hdu.header["BUNIT"] = DESI_BUNIT[part]
            hdus.append(hdu)
    if redshift is not None:
        redshift = np.asarray(redshift, dtype=np.float64).ravel()
        if redshift.size != targetid.size:
            raise ValueError(f"{redshift.size} redshifts for {targetid.size} targets")
        hdus.append(fits.BinTableHDU.from_columns([fits.Column("TARGETID", "K", array=targetid),
                                                   fits.Column("Z", "D", array=redshift)], name="REDSHIFTS"))
    with files.atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)


def write_gaia_rvs(path, source_id, flux, flux_error) -> None:
    """Write RVS mean spectra as the Gaia archive's one-row-per-source table (DataLink "RAW"): ECSV, or a FITS
    binary table with array columns when ``path`` ends in ``.fits`` (about 4x smaller).

    Columns ``source_id`` (int64), ``flux`` and ``flux_error`` (float32 arrays of 2401 values on the fixed
    846-870 nm grid, continuum-normalized; NaN for no data). The archive's other RAW columns (solution_id, ra,
    dec, combined_transits, combined_ccds, deblended_ccds) are not written. Written atomically.

    Parameters
    ----------
    path : str or Path
        The file to write (``.ecsv`` or ``.fits``); its folder must exist.
    source_id : array_like of int, shape (N,)
        Gaia DR3 source_ids.
    flux, flux_error : array_like, shape (N, 2401)
        Normalized flux and its 1-sigma uncertainty.

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If the shapes are not (N,) and (N, 2401).
    """
    from astropy.table import Table

    source_id = np.asarray(source_id, dtype=np.int64).ravel()
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float32))
    flux_error = np.atleast_2d(np.asarray(flux_error, dtype=np.float32))
    for name, values in (("flux", flux), ("flux_error", flux_error)):
        if values.shape != (source_id.size, GAIA_RVS_N_PIXELS):
            raise ValueError(f"{name} has shape {values.shape}; expected ({source_id.size}, {GAIA_RVS_N_PIXELS})")
    as_fits = Path(path).suffix.lower() in _FITS_SUFFIXES
    table = Table({"source_id": source_id, "flux": flux, "flux_error": flux_error},
                  meta={} if as_fits else {"description": "Gaia DR3 RVS mean spectra, 846-870 nm in 0.01 nm steps "
                                                          "(rest frame, vacuum, continuum-normalized)"})
    with files.atomic_path(path) as tmp:
        table.write(tmp, format="fits" if as_fits else "ascii.ecsv")
