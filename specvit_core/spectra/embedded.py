"""The embedded template grids: every BOSZ node synthesized once (:mod:`.synthesis`), convolved to the MR arm and the
Gaia RVS, and cached.

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
from .synthesis import SynthesisSettings, Synthesizer, high_resolution_wavelength
from .templates import AXES, BOSZ_AXES, GRID_FORMAT_VERSION, TemplateGrid

SYNTHESIS_MODULES = ("atmosphere", "atomic", "opacity", "synthesis")  # the code of the fingerprint, in its order
# Spectrographs a grid can be made for: pixel centres in air (the synthesis' medium) and resolving power (None: MR's)
INSTRUMENTS = {
    "mr": (mr_wavelength, None),
    "gaia_rvs": (lambda: vacuum_to_air(gaia_rvs_wavelength()), GAIA_RVS_R),
}


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
def _synthesizer_and_lsfs(settings: SynthesisSettings, instruments: tuple) -> tuple[Synthesizer, dict]:
    """One synthesizer and the line-spread matrix of each instrument, per worker process."""
    synthesizer = Synthesizer(settings)
    matrices = {}
    for name in instruments:
        wave, resolution = _instrument(name)
        matrices[name] = lsf_matrix(synthesizer.wave, wave, resolution=resolution)
    return synthesizer, matrices


def _embedded_row(settings: SynthesisSettings, teff: float, logg: float, mh_nodes, instruments: tuple) -> dict:
    """Instrument -> flux and continuum (n_M, 2, n_pix) of the nodes at one (T_eff, log g), each spectrum
    synthesized once and convolved to every instrument."""
    synthesizer, matrices = _synthesizer_and_lsfs(settings, instruments)
    spectra = [synthesizer.spectrum(teff, logg, mh) for mh in mh_nodes]
    return {name: np.asarray([[matrix @ a for a in spectrum] for spectrum in spectra], dtype=np.float32)
            for name, matrix in matrices.items()}


def covered_instruments(settings: SynthesisSettings) -> tuple[str, ...]:
    """The instruments of ``INSTRUMENTS`` whose pixels the synthesis window covers (with room for their LSF).

    Parameters
    ----------
    settings : SynthesisSettings

    Returns
    -------
    tuple of str
        In the order of ``INSTRUMENTS``; the default settings cover all of them.
    """
    wave = high_resolution_wavelength(settings)
    covered = []
    for name in INSTRUMENTS:
        pixels, resolution = _instrument(name)
        try:
            lsf_matrix(wave, pixels, resolution=resolution)  # the one place that knows what covering means
        except ValueError:
            continue
        covered.append(name)
    return tuple(covered)


def build_embedded_grids(settings: SynthesisSettings = SynthesisSettings(), axes: dict | None = None,
                         progress: bool = True, workers: int | None = None,
                         instruments: tuple = ("mr",)) -> dict[str, TemplateGrid]:
    """Synthesize every grid node (:class:`~.synthesis.Synthesizer`) once and convolve it to each instrument of
    ``instruments`` (the PFS MR arm, the Gaia RVS, ...).

    The synthesis is the cost (about 0.5-1 s per node on one core); each further instrument adds one sparse
    matrix product per node. The processes (one per core) take one (T_eff, log g) row of [M/H] nodes at a time.

    Parameters
    ----------
    settings : SynthesisSettings
        Synthesis settings (resolution, wavelength window, line-strength cut, ...).
    axes : dict, optional
        Node values per axis of ``AXES`` (default ``BOSZ_AXES``).
    progress : bool
        Show a progress bar.
    workers : int, optional
        Number of processes (default: one per core, at most one per row).
    instruments : tuple of str
        Keys of ``INSTRUMENTS``: ``"mr"`` (the PFS MR arm) and/or ``"gaia_rvs"`` (R = 11,500, 2,401 pixels).

    Returns
    -------
    dict of str to TemplateGrid
        Instrument -> grid on its pixels (air wavelengths), with ``meta`` holding the synthesis settings, the
        instrument and :func:`synthesis_fingerprint`.

    Raises
    ------
    ValueError
        An unknown instrument, or a synthesis window that does not cover its pixels.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    instruments = tuple(instruments)
    axes = {a: np.asarray(v, dtype=float) for a, v in (axes or BOSZ_AXES).items()}
    waves = {name: _instrument(name)[0] for name in instruments}
    covered = covered_instruments(settings)
    uncovered = [name for name in instruments if name not in covered]
    if uncovered:
        raise ValueError(f"The synthesis window {settings.wave_min:g}-{settings.wave_max:g} A does not cover the "
                         f"pixels of {', '.join(uncovered)} (with 5 LSF widths to spare)")
    nodes = tuple(len(axes[a]) for a in AXES)
    flux = {name: np.empty(nodes + (len(wave),), dtype=np.float32) for name, wave in waves.items()}
    continuum = {name: np.empty_like(array) for name, array in flux.items()}
    rows = [(i, j) for i in range(nodes[0]) for j in range(nodes[1])]
    workers = workers or min(os.cpu_count() or 1, len(rows))
    with tqdm(total=int(np.prod(nodes)), desc=f"embedded template grid ({', '.join(instruments)})", unit="node",
              disable=not progress) as bar:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_embedded_row, settings, axes["T_eff"][i], axes["log_g"][j], axes["M_H"],
                                   instruments): (i, j) for i, j in rows}
            for future in as_completed(futures):
                i, j = futures[future]
                for name, row in future.result().items():
                    flux[name][i, j], continuum[name][i, j] = row[:, 0], row[:, 1]
                bar.update(nodes[2])
    return {name: TemplateGrid(axes=axes, wave=waves[name], flux=flux[name], continuum=continuum[name],
                               source="embedded",
                               meta={"synthesis": settings.to_dict(), "fingerprint": synthesis_fingerprint(),
                                     **({"instrument": name} if name != "mr" else {})})
            for name in instruments}


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
    """The embedded template grid of an instrument, synthesized once and cached as HDF5 under ``cache_dir``.

    A missing grid is built together with the missing grids of every other instrument the synthesis window covers
    (:func:`covered_instruments`): one synthesis serves them all, so ``specvit grid`` also caches the Gaia RVS grid
    of chapter 7.

    Parameters
    ----------
    settings, axes, progress, instrument
        As :func:`build_embedded_grids` (``instrument``: one of its ``instruments``).
    cache_dir : Path, optional
        Folder of the cache files ``embedded_<key>.h5`` (default ``config.cache_dir()``, i.e. ``data/cache``).

    Returns
    -------
    TemplateGrid
        The grid, read from the cache or built with :func:`build_embedded_grids`; ``meta["key"]`` names the cache
        file when built.

    Raises
    ------
    ValueError
        An unknown instrument, or one whose pixels the synthesis window does not cover.
    """
    axes = axes or BOSZ_AXES
    path = cache_file(settings, axes, instrument, cache_dir)
    if path.exists():
        return TemplateGrid.load(path)
    _instrument(instrument)
    missing = [name for name in covered_instruments(settings)
               if name != instrument and not cache_file(settings, axes, name, cache_dir).exists()]
    grids = build_embedded_grids(settings, axes, progress=progress, instruments=(instrument, *missing))
    for name, grid in grids.items():
        target = cache_file(settings, axes, name, cache_dir)
        grid.meta["key"] = target.stem
        grid.save(target)
    return grids[instrument]
