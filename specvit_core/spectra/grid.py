"""Template grids on the BOSZ axes, cached as HDF5, and their cubic-spline interpolation (paper appendix G.2).

A grid holds the templates already convolved with the MR line-spread function and sampled on the 4096-pixel
detector grid. Convolution and resampling are linear, so interpolating the convolved grid is the same as
convolving the interpolated high-resolution template, and far cheaper.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from scipy.interpolate import CubicSpline
from tqdm.auto import tqdm

from ..instrument import lsf_matrix, mr_wavelength
from . import atmosphere, atomic, opacity, synthesis
from .synthesis import SynthesisSettings, Synthesizer

AXES = ("T_eff", "log_g", "M_H")
BOSZ_AXES = {
    "T_eff": np.arange(3500.0, 6250.1, 250.0),
    "log_g": np.arange(0.0, 5.01, 0.5),
    "M_H": np.arange(-2.5, 0.751, 0.25),
}
GRID_FORMAT_VERSION = 1


@dataclass
class TemplateGrid:
    """Templates on a regular (T_eff, log_g, M_H) grid, sampled on the MR detector wavelengths.

    Attributes
    ----------
    axes : dict of name -> 1-D node array, in the order of ``AXES``
    wave : (n_pix,) wavelengths, Angstrom
    flux, continuum : (n_T, n_g, n_M, n_pix) float32, erg/s/cm^2/A (surface flux)
    source : str, ``"embedded"`` or the BOSZ folder
    """

    axes: dict
    wave: np.ndarray
    flux: np.ndarray
    continuum: np.ndarray
    source: str = "embedded"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        shape = tuple(len(self.axes[a]) for a in AXES) + (len(self.wave),)
        if self.flux.shape != shape or self.continuum.shape != shape:
            raise ValueError(f"grid flux has shape {self.flux.shape}, expected {shape} from the axes and wavelengths")
        self._flat = self.flux.reshape(-1, len(self.wave))
        self._splines = {a: CubicSpline(self.axes[a], np.eye(len(self.axes[a]))) for a in AXES}

    @property
    def bounds(self) -> dict:
        """(min, max) of every axis."""
        return {a: (float(self.axes[a][0]), float(self.axes[a][-1])) for a in AXES}

    def check_labels(self, labels: np.ndarray) -> np.ndarray:
        """Return ``labels`` as an (N, 3) float array; raise ValueError for labels outside the grid."""
        labels = np.atleast_2d(np.asarray(labels, dtype=float))
        if labels.shape[-1] != 3:
            raise ValueError(f"labels must have shape (N, 3) for {AXES}, got {labels.shape}")
        if not np.all(np.isfinite(labels)):
            raise ValueError("labels contain NaN or infinite values")
        for i, a in enumerate(AXES):
            lo, hi = self.bounds[a]
            bad = (labels[:, i] < lo) | (labels[:, i] > hi)
            if np.any(bad):
                raise ValueError(
                    f"{a} = {labels[bad, i][0]:g} lies outside the template grid [{lo:g}, {hi:g}] "
                    f"({int(bad.sum())} of {len(labels)} labels)"
                )
        return labels

    def _weights(self, labels: np.ndarray, derivative: int | None = None) -> np.ndarray:
        """Spline weights (N, n_T * n_g * n_M); ``derivative`` differentiates along that axis index."""
        w = [self._splines[a](labels[:, i], nu=1 if derivative == i else 0) for i, a in enumerate(AXES)]
        return np.einsum("ni,nj,nk->nijk", *w).reshape(len(labels), -1)

    def interpolate(self, labels: np.ndarray, dtype=np.float32, chunk: int = 2048) -> np.ndarray:
        """Templates at ``labels`` (N, 3) by cubic splines along each axis in turn: (N, n_pix) of ``dtype``."""
        labels = self.check_labels(labels)
        out = np.empty((len(labels), len(self.wave)), dtype=dtype)
        flat = self._flat.astype(dtype, copy=False)
        for start in range(0, len(labels), chunk):
            part = labels[start : start + chunk]
            out[start : start + chunk] = self._weights(part).astype(dtype) @ flat
        return out

    def jacobian(self, labels: np.ndarray) -> np.ndarray:
        """Exact derivatives of the interpolated template, d flux / d (T_eff, log_g, M_H): (N, n_pix, 3)."""
        labels = self.check_labels(labels)
        flat = self._flat.astype(np.float64)
        return np.stack([self._weights(labels, derivative=i) @ flat for i in range(3)], axis=-1)

    def save(self, path: Path) -> None:
        """Write the grid to an HDF5 file atomically (temporary file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with h5py.File(tmp, "w") as f:
            for a in AXES:
                f[f"axes/{a}"] = self.axes[a]
            f["wave"] = self.wave
            f.create_dataset("flux", data=self.flux, compression="gzip", compression_opts=1)
            f.create_dataset("continuum", data=self.continuum, compression="gzip", compression_opts=1)
            f.attrs["source"] = self.source
            f.attrs["meta"] = json.dumps(self.meta)
            f.attrs["format_version"] = GRID_FORMAT_VERSION
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "TemplateGrid":
        """Read a grid written by :meth:`save`."""
        with h5py.File(path, "r") as f:
            return cls(
                axes={a: f[f"axes/{a}"][()] for a in AXES},
                wave=f["wave"][()],
                flux=f["flux"][()],
                continuum=f["continuum"][()],
                source=str(f.attrs["source"]),
                meta=json.loads(f.attrs["meta"]),
            )


def _code_without_docs(path: Path) -> str:
    """The syntax tree of a module without its docstrings (comments are not part of it)."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def synthesis_fingerprint() -> str:
    """SHA-256 of the synthesis code (docstrings and comments aside) and its packaged data: a change to either
    rebuilds cached grids."""
    digest = hashlib.sha256()
    for module in (atmosphere, atomic, opacity, synthesis):
        digest.update(_code_without_docs(module.__file__).encode())
    for path in (atomic.LINE_LIST_PATH, atomic.PARTITION_FUNCTION_PATH, atmosphere.DATA_FILE):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _grid_key(settings: SynthesisSettings, axes: dict) -> str:
    """Cache key: the synthesis settings, the axes and the fingerprint of the synthesis code and data."""
    payload = json.dumps(
        {"settings": settings.to_dict(), "axes": {a: np.asarray(axes[a]).tolist() for a in AXES},
         "v": GRID_FORMAT_VERSION, "synthesis": synthesis_fingerprint()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@functools.cache
def _synthesizer_and_lsf(settings: SynthesisSettings) -> tuple[Synthesizer, object]:
    """One synthesizer and MR line-spread matrix per worker process."""
    synthesizer = Synthesizer(settings)
    return synthesizer, lsf_matrix(synthesizer.wave)


def _embedded_row(settings: SynthesisSettings, teff: float, logg: float, mh_nodes) -> np.ndarray:
    """Flux and continuum (n_M, 2, n_pix) of the nodes at one (T_eff, log g), convolved to the MR arm."""
    synthesizer, matrix = _synthesizer_and_lsf(settings)
    return np.asarray([[matrix @ a for a in synthesizer.spectrum(teff, logg, mh)] for mh in mh_nodes],
                      dtype=np.float32)


def build_embedded_grid(settings: SynthesisSettings = SynthesisSettings(), axes: dict | None = None,
                        progress: bool = True, workers: int | None = None) -> TemplateGrid:
    """Synthesize every grid node (:class:`~.synthesis.Synthesizer`) and convolve it to the MR arm.

    The processes (one per core) take one (T_eff, log g) row of [M/H] nodes at a time; about 0.5-1 s per node on
    one core.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    axes = {a: np.asarray(v, dtype=float) for a, v in (axes or BOSZ_AXES).items()}
    wave = mr_wavelength()
    shape = tuple(len(axes[a]) for a in AXES) + (len(wave),)
    flux = np.empty(shape, dtype=np.float32)
    continuum = np.empty(shape, dtype=np.float32)
    rows = [(i, j) for i in range(shape[0]) for j in range(shape[1])]
    workers = workers or min(os.cpu_count() or 1, len(rows))
    with tqdm(total=int(np.prod(shape[:3])), desc="embedded template grid", unit="node", disable=not progress) as bar:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_embedded_row, settings, axes["T_eff"][i], axes["log_g"][j], axes["M_H"]): (i, j)
                       for i, j in rows}
            for future in as_completed(futures):
                i, j = futures[future]
                row = future.result()
                flux[i, j], continuum[i, j] = row[:, 0], row[:, 1]
                bar.update(shape[2])
    return TemplateGrid(axes=axes, wave=wave, flux=flux, continuum=continuum, source="embedded",
                        meta={"synthesis": settings.to_dict(), "fingerprint": synthesis_fingerprint()})


def embedded_grid(settings: SynthesisSettings = SynthesisSettings(), axes: dict | None = None,
                  cache_dir: Path | None = None, progress: bool = True) -> TemplateGrid:
    """The embedded template grid, synthesized once and cached as HDF5 under ``cache_dir`` (``data/cache``)."""
    from ..config import cache_dir as default_cache

    axes = axes or BOSZ_AXES
    key = _grid_key(settings, axes)
    path = Path(cache_dir or default_cache()) / f"embedded_{key}.h5"
    if path.exists():
        return TemplateGrid.load(path)
    grid = build_embedded_grid(settings, axes, progress=progress)
    grid.meta["key"] = f"embedded_{key}"
    grid.save(path)
    return grid


def load_grid(grid: str | Path = "embedded", **kwargs) -> TemplateGrid:
    """``"embedded"`` (default) for the built-in model, or the path of a folder of BOSZ files."""
    if str(grid) == "embedded":
        return embedded_grid(**kwargs)
    from .bosz import read_bosz_folder

    return read_bosz_folder(grid, **kwargs)
