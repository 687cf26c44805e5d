"""Reader for a folder of real BOSZ spectra (Bohlin et al. 2017) into a :class:`TemplateGrid`.

BOSZ files are named like ``amm25cp00op00t3500g05v20modrt0b50000rs.asc.bz2``: [M/H] (``am``, p/m sign, in tenths: quarter-dex values are rounded, ``m03`` is -0.25),
[C/M] (``cp``), [alpha/M] (``op``), Teff (``t``), log g in tenths (``g``), microturbulence (``v``), then model and
resolution tags. ASCII files (``.asc`` or ``.asc.bz2``) have three columns: wavelength (A), flux (specific intensity
H_lambda) and continuum; FITS files carry a table with ``Wavelength``, ``SpecificIntensity`` and ``Continuum``.
Only the solar-scaled subset ([C/M] = [alpha/M] = 0) is used, as in the paper.
"""
from __future__ import annotations

import bz2
import re
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..instrument import lsf_matrix, mr_wavelength
from .templates import AXES, TemplateGrid

BOSZ_NAME = re.compile(
    r"^am(?P<ms>[pm])(?P<m>\d{2})c(?P<cs>[pm])(?P<c>\d{2})o(?P<os>[pm])(?P<o>\d{2})"
    r"t(?P<t>\d{4,5})g(?P<g>\d{2})v(?P<v>\d{2})mod\w*?\.(?P<ext>asc\.bz2|asc|fits)$"
)
WAVE_PAD = 20.0  # A kept beyond the MR range on each side for the convolution


def parse_bosz_name(name: str) -> dict | None:
    """Labels encoded in a BOSZ file name.

    Parameters
    ----------
    name : str
        File name without folder, e.g. ``amm25cp00op00t3500g05v20modrt0b50000rs.asc.bz2``.

    Returns
    -------
    dict or None
        ``T_eff`` (K), ``log_g``, ``M_H``, ``C_M``, ``alpha_M`` (dex; abundances rounded to quarter dex), or None if
        the name does not follow the scheme.
    """
    m = BOSZ_NAME.match(name)
    if m is None:
        return None
    sign = {"p": 1.0, "m": -1.0}

    def quarter(tenths: str) -> float:  # BOSZ writes quarter-dex values rounded to tenths ("03" for 0.25)
        return round(int(tenths) / 10.0 * 4.0) / 4.0

    return {
        "T_eff": float(m["t"]),
        "log_g": int(m["g"]) / 10.0,
        "M_H": sign[m["ms"]] * quarter(m["m"]),
        "C_M": sign[m["cs"]] * quarter(m["c"]),
        "alpha_M": sign[m["os"]] * quarter(m["o"]),
    }


def read_bosz_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wavelength, flux and continuum of one BOSZ file (ASCII, bz2-compressed ASCII or FITS).

    Parameters
    ----------
    path : str or Path
        A ``.asc``, ``.asc.bz2`` or ``.fits`` file.

    Returns
    -------
    wave, flux, continuum : ndarray, float64, shape (n,)
        Increasing wavelengths (Angstrom), flux (H_lambda) and continuum, in the file's units.

    Raises
    ------
    ValueError
        If the file cannot be read, has fewer than 3 columns (or lacks the FITS columns), or its wavelengths do not
        increase or its flux is not finite.
    """
    path = Path(path)
    try:
        if path.name.endswith(".fits"):
            with fits.open(path) as hdul:
                table = next(h.data for h in hdul if isinstance(h, fits.BinTableHDU))
                cols = [np.asarray(table[c], dtype=float) for c in ("Wavelength", "SpecificIntensity", "Continuum")]
        else:
            opener = bz2.open if path.name.endswith(".bz2") else open
            with opener(path, "rt") as fh:
                data = np.loadtxt(fh, ndmin=2)
            if data.shape[1] < 3:
                raise ValueError(f"expected 3 columns (wavelength, flux, continuum), found {data.shape[1]}")
            cols = [data[:, 0], data[:, 1], data[:, 2]]
    except (OSError, ValueError, KeyError, StopIteration, EOFError) as err:
        raise ValueError(f"BOSZ file {path.name} is malformed: {err}") from None
    wave, flux, cont = cols
    if wave.size < 2 or np.any(np.diff(wave) <= 0) or not np.all(np.isfinite(flux)):
        raise ValueError(f"BOSZ file {path.name} is malformed: wavelengths must increase and fluxes be finite")
    return wave, flux, cont


def read_bosz_folder(folder: str | Path, progress: bool = True) -> TemplateGrid:
    """Read every solar-scaled BOSZ file of ``folder`` into a regular grid convolved to the MR arm.

    Parameters
    ----------
    folder : str or Path
        Folder of BOSZ files; files with [C/M] or [alpha/M] != 0 and other names are ignored.
    progress : bool
        Show a progress bar.

    Returns
    -------
    TemplateGrid
        Flux and continuum convolved with the MR LSF on the 4096-pixel MR grid; ``source`` is the folder.

    Raises
    ------
    ValueError
        If the folder does not exist or holds no BOSZ files, if the nodes do not form a complete (T_eff, log_g, M_H)
        grid (the missing nodes are named), or if a file is malformed or does not cover 7100-8850 A.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"BOSZ folder {str(folder)!r} does not exist")
    files = {}
    for path in sorted(folder.iterdir()):
        labels = parse_bosz_name(path.name)
        if labels and labels["C_M"] == 0 and labels["alpha_M"] == 0:
            files[tuple(labels[a] for a in AXES)] = path
    if not files:
        raise ValueError(f"no solar-scaled BOSZ files (e.g. amp00cp00op00t5000g45v20modrt0b50000rs.asc.bz2) in {folder}")
    axes = {a: np.unique([k[i] for k in files]) for i, a in enumerate(AXES)}
    missing = [n for n in np.array(np.meshgrid(*axes.values(), indexing="ij")).reshape(3, -1).T if tuple(n) not in files]
    if missing:
        shown = ", ".join(f"(T_eff={t:g}, log_g={g:g}, M_H={m:g})" for t, g, m in missing[:5])
        raise ValueError(f"BOSZ folder {folder} is missing {len(missing)} grid node(s) for a complete grid: {shown}")
    wave_out = mr_wavelength()
    shape = tuple(len(axes[a]) for a in AXES) + (len(wave_out),)
    flux, continuum = np.empty(shape, np.float32), np.empty(shape, np.float32)
    matrices = {}
    for key, path in tqdm(files.items(), desc="BOSZ grid", disable=not progress, unit="file"):
        wave, f, c = read_bosz_file(path)
        keep = (wave >= wave_out[0] - WAVE_PAD) & (wave <= wave_out[-1] + WAVE_PAD)
        grid_id = (wave[keep][0], wave[keep][-1], int(keep.sum())) if keep.any() else None
        if grid_id is None or wave[keep][0] > wave_out[0] - 5 or wave[keep][-1] < wave_out[-1] + 5:
            raise ValueError(f"BOSZ file {path.name} does not cover the MR range {wave_out[0]:.0f}-{wave_out[-1]:.0f} A")
        if grid_id not in matrices:
            matrices[grid_id] = lsf_matrix(wave[keep], wave_out, n_sigma=4.0)
        idx = tuple(int(np.searchsorted(axes[a], v)) for a, v in zip(AXES, key))
        flux[idx] = matrices[grid_id] @ f[keep]
        continuum[idx] = matrices[grid_id] @ c[keep]
    return TemplateGrid(axes=axes, wave=wave_out, flux=flux, continuum=continuum, source=str(folder))
