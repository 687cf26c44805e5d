"""Reading the HDF5 splits, the torch Dataset with on-the-fly noise (paper eq. 3) and label normalization.

A dataset is a folder with ``train_000.h5, train_001.h5, ...`` (shards, concatenated in order), ``val.h5`` and
``test.h5`` in the paper's schema (appendix L.9/K.2). The flux stored there is the clean, median-normalized
spectrum; :class:`NoisySpectra` draws the observational noise ``x + alpha * eps * sigma`` when a sample is read:
a fresh realization every epoch for training, one fixed realization (seed 42) for validation and test.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "val", "test")
WAVE_KEY = "spectrumdataset/wave"
FLUX_KEY = "dataset/arrays/flux/value"
ERROR_KEY = "dataset/arrays/error/value"
PARAMS_KEY = "dataset/params"
FIXED_NOISE_SEED = 42  # validation and test noise (methods draft, section 3.4)

_test_locked = contextvars.ContextVar("test_locked", default=False)


@contextlib.contextmanager
def lock_test_split():
    """Context in which :func:`read_split` refuses the test split (the training-time guardrail of appendix K.1.2)."""
    token = _test_locked.set(True)
    try:
        yield
    finally:
        _test_locked.reset(token)


@dataclass
class SpectraSplit:
    """One split in memory: ``wave`` (L,), ``flux`` and ``error`` (N, L) float32, ``params`` (N rows)."""

    wave: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    params: pd.DataFrame

    def __len__(self) -> int:
        return len(self.flux)

    def labels(self, name: str = "log_g") -> np.ndarray:
        """The column ``name`` of ``params`` as float64; an unknown name lists the columns."""
        if name not in self.params:
            raise KeyError(f"Unknown label {name!r}; the params table has: {', '.join(self.params.columns)}")
        return self.params[name].to_numpy(dtype=np.float64)


def split_files(dataset_dir, split: str) -> list[Path]:
    """The HDF5 files of ``split`` in ``dataset_dir``, train shards in order.

    Raises
    ------
    ValueError
        If ``split`` is not one of ``SPLITS``.
    FileNotFoundError
        If the folder or the split's files do not exist.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"The dataset folder {str(folder)!r} does not exist (simulate it first)")
    files = sorted(folder.glob("train_[0-9][0-9][0-9].h5")) if split == "train" else [folder / f"{split}.h5"]
    if not files or not files[0].is_file():
        pattern = "train_000.h5, train_001.h5, ..." if split == "train" else f"{split}.h5"
        raise FileNotFoundError(f"No {split} split in {str(folder)!r}: expected {pattern}")
    return files


def _read_file(path: Path, split: str, n: int | None) -> SpectraSplit:
    """The first ``n`` rows (all when None) of one HDF5 file, with its schema and split attribute checked."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("split", split) != split:
            raise ValueError(f"{path}: the file says split={f.attrs['split']!r} but is read as {split!r}; "
                             "files of different splits must not be swapped (leakage)")
        for key in (WAVE_KEY, FLUX_KEY, ERROR_KEY, PARAMS_KEY):
            if not isinstance(f.get(key), h5py.Dataset):
                raise ValueError(f"{path}: missing HDF5 dataset {key!r} (paper schema, appendix L.9)")
        rows = slice(None) if n is None else slice(0, n)
        wave = f[WAVE_KEY][:]
        flux = f[FLUX_KEY][rows].astype(np.float32, copy=False)
        error = f[ERROR_KEY][rows].astype(np.float32, copy=False)
        table = f[PARAMS_KEY][rows]
    if table.dtype.names is None:
        raise ValueError(f"{path}: {PARAMS_KEY!r} must be a compound (table) dataset; got dtype {table.dtype}")
    params = pd.DataFrame({k: table[k].astype(str) if table[k].dtype.kind == "S" else table[k]
                           for k in table.dtype.names})
    if flux.ndim != 2 or flux.shape[1] != wave.shape[0] or error.shape != flux.shape or len(params) != len(flux):
        raise ValueError(f"{path}: shapes disagree: wave {wave.shape}, flux {flux.shape}, error {error.shape}, "
                         f"params ({len(params)},); the rule is flux and error (N, len(wave)), params N rows")
    for name, arr in (("flux", flux), ("error", error)):
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            raise ValueError(f"{path}: {name} has NaN/inf values in {bad.sum()} spectra (first row "
                             f"{np.flatnonzero(bad)[0]}); every value must be finite")
    return SpectraSplit(wave, flux, error, params)


def read_split(dataset_dir, split: str, max_rows: int | None = None) -> SpectraSplit:
    """Read a split into memory, concatenating the train shards in order.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder (see the module docstring).
    split : {"train", "val", "test"}
    max_rows : int, optional
        Keep only the first ``max_rows`` spectra (read lazily shard by shard).

    Returns
    -------
    SpectraSplit

    Raises
    ------
    ValueError
        Unknown split, non-positive ``max_rows``, a file whose ``split`` attribute names another split, a
        missing HDF5 dataset, shapes that disagree (also between shards), non-finite flux/error values.
    FileNotFoundError
        Missing folder or split files.
    RuntimeError
        The test split inside :func:`lock_test_split` (during training).
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer or None; got {max_rows!r}")
    if split == "test" and _test_locked.get():
        raise RuntimeError("The test split is locked during training (only train and val may be read); "
                           "evaluate the test split after training with specvit_core.train.evaluate")
    parts = []
    for path in split_files(dataset_dir, split):
        left = None if max_rows is None else max_rows - sum(len(p) for p in parts)
        if left == 0:
            break
        parts.append(_read_file(path, split, left))
        if not np.array_equal(parts[-1].wave, parts[0].wave):
            raise ValueError(f"{path}: wavelength grid differs from that of {split_files(dataset_dir, split)[0]}")
    if len(parts) == 1:
        return parts[0]
    return SpectraSplit(parts[0].wave, np.concatenate([p.flux for p in parts]),
                        np.concatenate([p.error for p in parts]),
                        pd.concat([p.params for p in parts], ignore_index=True))


def noisy_spectrum(flux: np.ndarray, error: np.ndarray, rng: np.random.Generator, alpha: float = 1.0) -> np.ndarray:
    """One noisy realization ``max(x + alpha * eps * sigma, 0)`` of a clean spectrum (paper eq. 3 and section 3.2).

    Parameters
    ----------
    flux, error : ndarray, shape (..., L)
        Clean normalized flux and its 1-sigma uncertainty.
    rng : numpy.random.Generator
        Source of ``eps ~ N(0, 1)``.
    alpha : float
        Noise-level scaling (1 = nominal instrument noise, 0 = none).

    Returns
    -------
    ndarray, float32, same shape; negative flux clipped at 0.
    """
    eps = rng.standard_normal(np.shape(flux), dtype=np.float32)
    return np.maximum(flux + np.float32(alpha) * eps * error, 0, dtype=np.float32)


def fixed_noisy(flux: np.ndarray, error: np.ndarray, seed: int = FIXED_NOISE_SEED, alpha: float = 1.0) -> np.ndarray:
    """The fixed noisy array that ``NoisySpectra(..., noise="fixed", seed=seed)`` serves, row by row.

    The noise of row ``i`` depends only on ``(seed, i)``, so baselines (Ridge, LightGBM) see exactly the same
    validation/test inputs as the networks, and a prefix of a split keeps its noise.

    Returns
    -------
    ndarray, float32, shape (N, L)
    """
    return np.stack([noisy_spectrum(f, e, np.random.default_rng((seed, i)), alpha)
                     for i, (f, e) in enumerate(zip(flux, error, strict=True))])


class NoisySpectra(Dataset):
    """Samples ``(x_noisy, y)`` with the noise of paper eq. 3 drawn on the fly.

    Parameters
    ----------
    flux, error : ndarray, shape (N, L)
        Clean normalized spectra and 1-sigma uncertainties.
    labels : array_like, shape (N,) or (N, k)
        Targets (already normalized by the caller, e.g. with :class:`LabelScaler`).
    noise : {"fresh", "fixed"}
        "fresh": a new realization every epoch, seeded by ``(seed, epoch, index)`` (call :meth:`set_epoch`);
        "fixed": one realization seeded by ``(seed, index)``, identical on every call (validation/test).
    seed : int
    alpha : float
        Noise-level scaling, >= 0 (0 disables the noise, as for fine-tuning on real spectra).

    Raises
    ------
    ValueError
        Unknown ``noise``, negative or non-finite ``alpha``, or lengths/shapes that disagree.
    """

    def __init__(self, flux, error, labels, *, noise: str = "fresh", seed: int = FIXED_NOISE_SEED,
                 alpha: float = 1.0):
        if noise not in ("fresh", "fixed"):
            raise ValueError(f"noise must be 'fresh' or 'fixed'; got {noise!r}")
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
        labels = np.asarray(labels, dtype=np.float32)
        self.flux = np.asarray(flux, dtype=np.float32)
        self.error = np.asarray(error, dtype=np.float32)
        self.labels = labels.reshape(len(labels), -1)  # (N, k)
        if self.flux.ndim != 2 or self.error.shape != self.flux.shape or len(self.labels) != len(self.flux):
            raise ValueError(f"flux and error must both be (N, L) and labels N long; got flux {self.flux.shape}, "
                             f"error {self.error.shape}, labels {labels.shape}")
        self.noise, self.seed, self.alpha, self.epoch = noise, int(seed), float(alpha), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the training noise realization (ignored for ``noise="fixed"``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.flux)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (self.seed, i) if self.noise == "fixed" else (self.seed, self.epoch, i)
        x = noisy_spectrum(self.flux[i], self.error[i], np.random.default_rng(key), self.alpha)
        return torch.from_numpy(x), torch.from_numpy(self.labels[i])


class LabelScaler:
    """z-score label normalization with training-set statistics (paper eq. 16).

    ``fit`` computes the mean and (population) standard deviation; ``transform`` and ``inverse`` apply
    ``y' = (y - mean) / std`` and its inverse. ``state_dict``/``from_state_dict`` store it in a checkpoint.
    """

    def __init__(self, mean: float | None = None, std: float | None = None):
        self.mean, self.std = mean, std

    def fit(self, y) -> LabelScaler:
        """Fit to labels ``y``; raises ValueError if they are empty, non-finite or constant."""
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0 or not np.isfinite(y).all():
            raise ValueError(f"labels must be a non-empty finite array; got {y.size} values, "
                             f"{np.count_nonzero(~np.isfinite(y))} non-finite")
        self.mean, self.std = float(y.mean()), float(y.std())
        if self.std == 0:
            raise ValueError(f"labels are constant ({self.mean}); a z-score needs a non-zero spread")
        return self

    def _check_fitted(self):
        if self.mean is None:
            raise RuntimeError("LabelScaler is not fitted; call fit(train_labels) first")

    def transform(self, y) -> np.ndarray:
        self._check_fitted()
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.std

    def inverse(self, y) -> np.ndarray:
        self._check_fitted()
        return np.asarray(y, dtype=np.float64) * self.std + self.mean

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state_dict(cls, state: dict) -> LabelScaler:
        return cls(state["mean"], state["std"])
