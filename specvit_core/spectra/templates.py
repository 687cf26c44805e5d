"""The template grid type on the BOSZ axes, its cubic-spline interpolation (paper appendix G.2) and its HDF5 file.

A grid holds the templates already convolved with the MR line-spread function and sampled on the 4096-pixel
detector grid. Convolution and resampling are linear, so interpolating the convolved grid is the same as
convolving the interpolated high-resolution template, and far cheaper.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from scipy.interpolate import CubicSpline

from .. import files

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

    Parameters
    ----------
    axes : dict of str -> ndarray
        Increasing node values of ``T_eff`` (K), ``log_g`` (dex) and ``M_H`` (dex), in the order of ``AXES``.
    wave : ndarray, shape (n_pix,)
        Wavelengths, Angstrom.
    flux, continuum : ndarray, float32, shape (n_T, n_g, n_M, n_pix)
        Surface flux and its continuum, erg/s/cm^2/A.
    source : str
        ``"embedded"`` or the BOSZ folder.
    meta : dict
        JSON-ready description of how the grid was made (settings, cache key, ...).

    Raises
    ------
    ValueError
        If ``flux`` or ``continuum`` does not have the shape of the axes and wavelengths.
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
        """(min, max) of every axis.

        Returns
        -------
        dict of str -> (float, float)
            Axis name -> first and last node.
        """
        return {a: (float(self.axes[a][0]), float(self.axes[a][-1])) for a in AXES}

    def check_labels(self, labels: np.ndarray) -> np.ndarray:
        """Check that labels lie inside the grid.

        Parameters
        ----------
        labels : array_like, shape (N, 3) or (3,)
            (T_eff, log g, [M/H]) per spectrum.

        Returns
        -------
        ndarray, float64, shape (N, 3)
            The labels.

        Raises
        ------
        ValueError
            If the last axis is not of length 3, a label is not finite, or one lies outside the grid.
        """
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

    def interpolate(self, labels: np.ndarray, dtype=np.float32, chunk: int = 2048, continuum: bool = False
                    ) -> np.ndarray:
        """Templates at ``labels`` by cubic splines along each axis in turn.

        Parameters
        ----------
        labels : array_like, shape (N, 3)
            (T_eff, log g, [M/H]) inside the grid.
        dtype : numpy dtype
            Precision of the computation and of the result.
        chunk : int
            Labels per matrix product (bounds the memory).
        continuum : bool
            Interpolate the continuum (the spectrum without lines) instead of the flux.

        Returns
        -------
        ndarray, shape (N, n_pix)
            Interpolated flux (or continuum), erg/s/cm^2/A.

        Raises
        ------
        ValueError
            As :meth:`check_labels`.
        """
        labels = self.check_labels(labels)
        out = np.empty((len(labels), len(self.wave)), dtype=dtype)
        flat = (self.continuum.reshape(self._flat.shape) if continuum else self._flat).astype(dtype, copy=False)
        for start in range(0, len(labels), chunk):
            part = labels[start : start + chunk]
            out[start : start + chunk] = self._weights(part).astype(dtype) @ flat
        return out

    def jacobian(self, labels: np.ndarray) -> np.ndarray:
        """Exact derivatives of the interpolated template, d flux / d (T_eff, log_g, M_H).

        Parameters
        ----------
        labels : array_like, shape (N, 3)
            (T_eff, log g, [M/H]) inside the grid.

        Returns
        -------
        ndarray, float64, shape (N, n_pix, 3)
            Flux units per K, per dex and per dex.

        Raises
        ------
        ValueError
            As :meth:`check_labels`.
        """
        labels = self.check_labels(labels)
        flat = self._flat.astype(np.float64)
        return np.stack([self._weights(labels, derivative=i) @ flat for i in range(3)], axis=-1)

    def save(self, path: Path) -> None:
        """Write the grid to an HDF5 file atomically (:func:`~specvit_core.files.atomic_path`).

        Parameters
        ----------
        path : str or Path
            The file; missing parent folders are created.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for a in AXES:
                f[f"axes/{a}"] = self.axes[a]
            f["wave"] = self.wave
            f.create_dataset("flux", data=self.flux, compression="gzip", compression_opts=1)
            f.create_dataset("continuum", data=self.continuum, compression="gzip", compression_opts=1)
            f.attrs["source"] = self.source
            f.attrs["meta"] = json.dumps(self.meta)
            f.attrs["format_version"] = GRID_FORMAT_VERSION

    @classmethod
    def load(cls, path: Path) -> "TemplateGrid":
        """Read a grid written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
            The HDF5 file.

        Returns
        -------
        TemplateGrid
            The grid.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        KeyError
            If a dataset or attribute of the format is missing.
        """
        with h5py.File(path, "r") as f:
            return cls(
                axes={a: f[f"axes/{a}"][()] for a in AXES},
                wave=f["wave"][()],
                flux=f["flux"][()],
                continuum=f["continuum"][()],
                source=str(f.attrs["source"]),
                meta=json.loads(f.attrs["meta"]),
            )
