"""The embedded template grid: every BOSZ node synthesized (:mod:`.synthesis`), convolved to the MR arm and cached.

The cache file ``data/cache/embedded_<key>.h5`` is keyed on the synthesis settings, the axes and a fingerprint of
the synthesis code and its packaged data, so that a change to the physics rebuilds the grid and nothing else does.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..config import cache_dir as default_cache_dir
from ..files import code_digest
from ..instrument import GAIA_RVS_R, gaia_rvs_wavelength, lsf_matrix, mr_wavelength, vacuum_to_air
from .atmosphere import DATA_FILE as ATMOSPHERE_DATA_FILE
from .atomic import LINE_LIST_PATH, PARTITION_FUNCTION_PATH
from .synthesis import SynthesisSettings, Synthesizer
from .templates import AXES, BOSZ_AXES, GRID_FORMAT_VERSION, TemplateGrid

SYNTHESIS_MODULES = ("atmosphere", "atomic", "opacity", "synthesis")  # the code of the fingerprint, in its order
# Spectrographs a grid can be made for: pixel centres in air (the synthesis' medium) and resolving power (None: MR's)
INSTRUMENTS = {
    "mr": (mr_wavelength, None),
    "gaia_rvs": (lambda: vacuum_to_air(gaia_rvs_wavelength()), GAIA_RVS_R),
}
# The Gaia RVS window (8458-8698 A in air) with the synthesis starting below the Paschen edge (8204 A): the
# synthesis interpolates its continuum on both sides of the edge
GAIA_RVS_SYNTHESIS = SynthesisSettings(wave_min=8150.0, wave_max=8730.0)


def synthesis_fingerprint() -> str:
    """SHA-256 of the synthesis code (docstrings and comments aside) and its packaged data.

    A change to either rebuilds cached grids.

    Returns
    -------
    str
        64 hex digits.
    """
    return code_digest([Path(__file__).with_name(f"{name}.py") for name in SYNTHESIS_MODULES],
                       [LINE_LIST_PATH, PARTITION_FUNCTION_PATH, ATMOSPHERE_DATA_FILE])


def _grid_key(settings: SynthesisSettings, axes: dict, instrument: str) -> str:
    """Cache key: the synthesis settings, the axes, the instrument (other than MR) and the fingerprint of the
    synthesis code and data."""
    payload = {"settings": settings.to_dict(), "axes": {a: np.asarray(axes[a]).tolist() for a in AXES},
               "v": GRID_FORMAT_VERSION, "synthesis": synthesis_fingerprint()}
    if instrument != "mr":
        payload["instrument"] = instrument
    payload = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _instrument(name: str) -> tuple:
    """(pixel centres in air, resolving power) of a name of ``INSTRUMENTS``; ValueError for another name."""
    if name not in INSTRUMENTS:
        raise ValueError(f"Unknown instrument {name!r}; valid: {', '.join(INSTRUMENTS)}")
    wave, resolution = INSTRUMENTS[name]
    return wave(), resolution


@functools.cache
def _synthesizer_and_lsf(settings: SynthesisSettings, instrument: str) -> tuple[Synthesizer, object]:
    """One synthesizer and line-spread matrix of the instrument per worker process."""
    synthesizer = Synthesizer(settings)
    wave, resolution = _instrument(instrument)
    return synthesizer, lsf_matrix(synthesizer.wave, wave, resolution=resolution)


def _embedded_row(settings: SynthesisSettings, teff: float, logg: float, mh_nodes, instrument: str) -> np.ndarray:
    """Flux and continuum (n_M, 2, n_pix) of the nodes at one (T_eff, log g), convolved to the instrument."""
    synthesizer, matrix = _synthesizer_and_lsf(settings, instrument)
    return np.asarray([[matrix @ a for a in synthesizer.spectrum(teff, logg, mh)] for mh in mh_nodes],
                      dtype=np.float32)


def build_embedded_grid(settings: SynthesisSettings = SynthesisSettings(), axes: dict | None = None,
                        progress: bool = True, workers: int | None = None, instrument: str = "mr") -> TemplateGrid:
    """Synthesize every grid node (:class:`~.synthesis.Synthesizer`) and convolve it to the MR arm (or another
    spectrograph of ``INSTRUMENTS``).

    The processes (one per core) take one (T_eff, log g) row of [M/H] nodes at a time; about 0.5-1 s per node on
    one core.

    Parameters
    ----------
    settings : SynthesisSettings
        Synthesis settings (resolution, line-strength cut, ...).
    axes : dict, optional
        Node values per axis of ``AXES`` (default ``BOSZ_AXES``).
    progress : bool
        Show a progress bar.
    workers : int, optional
        Number of processes (default: one per core, at most one per row).
    instrument : str
        A key of ``INSTRUMENTS``: ``"mr"`` (the PFS MR arm) or ``"gaia_rvs"`` (R = 11,500, 2,401 pixels).

    Returns
    -------
    TemplateGrid
        On the instrument's pixels (air wavelengths), with ``meta`` holding the synthesis settings, the
        instrument and :func:`synthesis_fingerprint`.

    Raises
    ------
    ValueError
        An unknown instrument, or a synthesis window that does not cover its pixels.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    axes = {a: np.asarray(v, dtype=float) for a, v in (axes or BOSZ_AXES).items()}
    wave, _ = _instrument(instrument)
    shape = tuple(len(axes[a]) for a in AXES) + (len(wave),)
    flux = np.empty(shape, dtype=np.float32)
    continuum = np.empty(shape, dtype=np.float32)
    rows = [(i, j) for i in range(shape[0]) for j in range(shape[1])]
    workers = workers or min(os.cpu_count() or 1, len(rows))
    with tqdm(total=int(np.prod(shape[:3])), desc=f"embedded template grid ({instrument})", unit="node", disable=not progress) as bar:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_embedded_row, settings, axes["T_eff"][i], axes["log_g"][j], axes["M_H"],
                                   instrument): (i, j) for i, j in rows}
            for future in as_completed(futures):
                i, j = futures[future]
                row = future.result()
                flux[i, j], continuum[i, j] = row[:, 0], row[:, 1]
                bar.update(shape[2])
    return TemplateGrid(axes=axes, wave=wave, flux=flux, continuum=continuum, source="embedded",
                        meta={"synthesis": settings.to_dict(), "fingerprint": synthesis_fingerprint(),
                              **({"instrument": instrument} if instrument != "mr" else {})})


def cache_file(settings: SynthesisSettings = SynthesisSettings(), axes: dict | None = None, instrument: str = "mr",
               cache_dir: Path | None = None) -> Path:
    """The cache file of the embedded grid of these settings, axes (default the BOSZ axes) and instrument.

    Parameters
    ----------
    settings, axes, instrument
        As :func:`build_embedded_grid`.
    cache_dir : Path, optional
        Its folder (default ``config.cache_dir()``, i.e. ``data/cache``).

    Returns
    -------
    Path
        ``<cache_dir>/embedded_<key>.h5``; the key changes with the synthesis code and data (:func:`_grid_key`).
    """
    return Path(cache_dir or default_cache_dir()) / f"embedded_{_grid_key(settings, axes or BOSZ_AXES, instrument)}.h5"


def embedded_grid(settings: SynthesisSettings = SynthesisSettings(), axes: dict | None = None,
                  cache_dir: Path | None = None, progress: bool = True, instrument: str = "mr") -> TemplateGrid:
    """The embedded template grid, synthesized once and cached as HDF5 under ``cache_dir``.

    Parameters
    ----------
    settings, axes, progress, instrument
        As :func:`build_embedded_grid`.
    cache_dir : Path, optional
        Folder of the cache file ``embedded_<key>.h5`` (default ``config.cache_dir()``, i.e. ``data/cache``).

    Returns
    -------
    TemplateGrid
        The grid, read from the cache or built with :func:`build_embedded_grid`; ``meta["key"]`` names the cache
        file when built.
    """
    axes = axes or BOSZ_AXES
    path = cache_file(settings, axes, instrument, cache_dir)
    if path.exists():
        return TemplateGrid.load(path)
    grid = build_embedded_grid(settings, axes, progress=progress, instrument=instrument)
    grid.meta["key"] = path.stem
    grid.save(path)
    return grid
