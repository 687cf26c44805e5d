"""Shared fixtures: a tiny dataset folder in the paper's HDF5 schema (what specvit_core.simulate writes)."""
import json

import numpy as np
import pytest
import torch

from specvit_core.data import SpectraWriter
from specvit_core.simulate import CONDITIONS, SimulationConfig

N_PIX = 4096


def write_split(path, wave, flux, error, params, split="train", seed=0):
    """Write one HDF5 file in the paper schema (appendix L.9/K.2) with the package's writer; ``params`` is a
    structured array."""
    with SpectraWriter(path, wave, len(flux), dict(split=split, seed=seed, profile="test"), compression="gzip") as out:
        out.append(flux, error, params)


def toy_spectra(n, seed):
    """Median-normalized toy spectra whose line depths and continuum slope encode log g and T_eff.

    Returns wave (L,), flux and error (n, L) float32, and a structured params array with the simulator's fields.
    """
    rng = np.random.default_rng(seed)
    wave = np.linspace(7100.2136, 8849.7864, N_PIX)
    labels = dict(T_eff=rng.uniform(3750, 6000, n), log_g=rng.uniform(1.0, 5.0, n), M_H=rng.uniform(-2.5, 0.75, n),
                  mag=rng.uniform(20.5, 22.5, n))
    centers = np.linspace(7150, 8800, 60)
    depth = 0.1 + 0.12 * (labels["log_g"][:, None] - 1.0) * np.ones(60)  # (n, 60): lines deepen with log g
    profile = np.exp(-0.5 * ((wave[None, :] - centers[:, None]) / 3.0) ** 2)  # (60, L)
    slope = (labels["T_eff"][:, None] - 4875) / 20000 * (wave - wave.mean()) / 1750
    flux = (1 + slope) * (1 - depth @ profile) * 1e-17
    norm = np.median(flux, axis=1)
    snr = 30 - 4 * (labels["mag"] - 20.5)
    x = (flux / norm[:, None]).astype(np.float32)
    error = (np.sqrt(x + 0.3) / snr[:, None]).astype(np.float32)
    names = (*labels, "snr", *CONDITIONS, "norm")
    params = np.zeros(n, dtype=[(k, "f8") for k in names])
    for k, v in labels.items():
        params[k] = v
    params["snr"], params["norm"] = snr, norm
    for k in CONDITIONS:
        params[k] = rng.uniform(0, 1, n)
    return wave, x, error, params


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A dataset folder: train_000.h5 + train_001.h5 (128 each), val.h5 (64), test.h5 (64), manifest.json.

    Session-scoped: tests must not modify it (copy it first).
    """
    folder = tmp_path_factory.mktemp("tiny_dataset")
    files = {"train_000": ("train", 128, 1), "train_001": ("train", 128, 2), "val": ("val", 64, 3),
             "test": ("test", 64, 4)}
    for name, (split, n, seed) in files.items():
        write_split(folder / f"{name}.h5", *toy_spectra(n, seed), split=split, seed=seed)
    manifest = {f"{k}.h5": {"split": s, "n": n, "seed": seed} for k, (s, n, seed) in files.items()}
    (folder / "manifest.json").write_text(json.dumps({"profile": "test", "files": manifest}))
    return folder


@pytest.fixture(scope="session")
def small_simulation():
    """A SimulationConfig of 40 / 20 / 30 spectra inside the T_eff and [M/H] range of :func:`small_grid`."""
    return SimulationConfig(n_train=40, n_val=20, n_test=30, teff_range=(4000.0, 5000.0), mh_range=(-1.0, 0.5))


@pytest.fixture(scope="session")
def small_grid():
    """A small embedded template grid (T_eff 4000-5000, log g 1-5, [M/H] -1..0.5), synthesized once and cached in
    data/cache like the full grid (about a minute on 2 cores the first time)."""
    from specvit_core.spectra.embedded import embedded_grid

    axes = {"T_eff": np.arange(4000.0, 5001.0, 250.0), "log_g": np.arange(1.0, 5.01, 1.0),
            "M_H": np.array([-1.0, -0.5, 0.0, 0.5])}
    return embedded_grid(axes=axes, progress=False)


@pytest.fixture(scope="module")
def one_thread():
    """Small models gain nothing from threads; one thread avoids stalls on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
