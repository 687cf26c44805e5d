"""Labels + observing conditions -> simulated PFS MR spectra, written as HDF5 shards with a manifest.

The data flow of the paper's section 4.1.1 and appendix G: labels drawn uniformly, templates interpolated on the
grid, observed through the MR arm (``noise.observe``: flux scaled to the i-band magnitude, per-pixel sigma from the
photon chain), median-normalized (section 3.2), and stored clean with their sigma so that training injects fresh
noise every epoch. Train shards, validation and test draw from independent seeds.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .config import get_profile
from .noise import draw_conditions, observe
from .spectra.grid import TemplateGrid, load_grid

LABELS = ("T_eff", "log_g", "M_H")
CONDITIONS = ("seeing", "zenith_angle", "field_angle", "moon_zenith", "moon_target", "moon_phase")
PARAM_FIELDS = LABELS + ("mag", "snr", "norm") + CONDITIONS
CHUNK = 2000  # spectra simulated and written per step
COMPRESSION = {"none": {}, "lzf": {"compression": "lzf", "shuffle": True},
               "gzip": {"compression": "gzip", "compression_opts": 1, "shuffle": True}}


@dataclass(frozen=True)
class SimulationConfig:
    """What a dataset is made of; saved in its manifest."""

    n_train: int
    n_val: int
    n_test: int
    n_shards: int = 1
    mag_range: tuple = (20.5, 22.5)
    teff_range: tuple = (3750.0, 6000.0)
    logg_range: tuple = (1.0, 5.0)
    mh_range: tuple = (-2.5, 0.75)
    grid: str = "embedded"
    compression: str = "none"  # "none" (fastest to write and read), "lzf", or "gzip" (with shuffle: ~37% smaller)
    seed: int = 2025
    profile: str = field(default="custom")

    def __post_init__(self):
        for name in ("n_train", "n_val", "n_test", "n_shards"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"The {name} parameter, {value!r}, must be a positive integer")
        if self.compression not in COMPRESSION:
            raise ValueError(f"The compression parameter, {self.compression!r}, must be one of {list(COMPRESSION)}")
        if self.n_shards > self.n_train:
            raise ValueError(f"n_shards ({self.n_shards}) must not exceed n_train ({self.n_train})")
        for name in ("mag_range", "teff_range", "logg_range", "mh_range"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"The {name} parameter, ({lo}, {hi}), must be an increasing (min, max) pair")

    @classmethod
    def from_dict(cls, d: dict) -> "SimulationConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @classmethod
    def from_profile(cls, profile: str, **overrides) -> "SimulationConfig":
        """Dataset sizes of a profile (``smoke``, ``quick``, ``cpu``, ``paper``), with optional overrides."""
        p = get_profile(profile)
        base = dict(n_train=p.n_train, n_val=p.n_val, n_test=p.n_test, n_shards=p.n_shards, profile=p.name)
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def splits(self) -> list[tuple[str, int]]:
        """(file stem, number of spectra) of every file of the dataset, in seed order."""
        sizes = np.diff(np.linspace(0, self.n_train, self.n_shards + 1).round().astype(int))
        return [(f"train_{i:03d}", int(n)) for i, n in enumerate(sizes)] + [("val", self.n_val), ("test", self.n_test)]


def check_within_grid(config: SimulationConfig, grid: TemplateGrid) -> None:
    """Raise ValueError if the label ranges of ``config`` leave the template grid."""
    for name, axis in zip(("teff_range", "logg_range", "mh_range"), LABELS):
        lo, hi = getattr(config, name)
        glo, ghi = grid.bounds[axis]
        if lo < glo or hi > ghi:
            raise ValueError(f"The {name} parameter, ({lo:g}, {hi:g}), lies outside the {axis} range of the grid "
                             f"[{glo:g}, {ghi:g}]")


def draw_labels(rng: np.random.Generator, n: int, config: SimulationConfig) -> np.ndarray:
    """Labels (n, 3) uniform in the configured T_eff, log g and [M/H] ranges."""
    ranges = np.array([config.teff_range, config.logg_range, config.mh_range], dtype=float)
    return rng.uniform(ranges[:, 0], ranges[:, 1], size=(n, 3))


def median_normalize(flux: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divide each spectrum and its sigma by the spectrum's median (paper eq. 2); return both and the medians."""
    norm = np.median(flux, axis=-1, keepdims=True)
    if np.any(norm <= 0):
        raise ValueError("median flux must be positive for median normalization")
    return flux / norm, error / norm, norm[..., 0]


def simulate_batch(grid: TemplateGrid, n: int, rng: np.random.Generator, config: SimulationConfig) -> dict:
    """Simulate ``n`` spectra: clean normalized flux (n, 4096), sigma (n, 4096) and a params record array."""
    labels = draw_labels(rng, n, config)
    mags = rng.uniform(*config.mag_range, size=n)
    conditions = draw_conditions(rng, n)
    template = grid.interpolate(labels)
    flux, sigma = observe(grid.wave, template, mags, conditions)
    snr = np.median(flux / sigma, axis=1)
    flux, sigma, norm = median_normalize(flux, sigma)
    params = np.zeros(n, dtype=[(name, "f8") for name in PARAM_FIELDS])
    for i, name in enumerate(LABELS):
        params[name] = labels[:, i]
    params["mag"], params["snr"], params["norm"] = mags, snr, norm
    for name in CONDITIONS:
        params[name] = conditions[name]
    return {"flux": flux.astype(np.float32), "error": sigma.astype(np.float32), "params": params}


def sha256(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_split(path: Path, grid: TemplateGrid, n: int, rng: np.random.Generator, config: SimulationConfig,
                attrs: dict, bar=None) -> None:
    """Simulate ``n`` spectra into the HDF5 file ``path`` (paper schema), atomically: temp file, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f["spectrumdataset/wave"] = grid.wave
            opts = dict(dtype="f4", chunks=(min(n, 64), grid.wave.size), **COMPRESSION[config.compression])
            flux = f.create_dataset("dataset/arrays/flux/value", shape=(n, grid.wave.size), **opts)
            error = f.create_dataset("dataset/arrays/error/value", shape=(n, grid.wave.size), **opts)
            params = []
            for start in range(0, n, CHUNK):
                batch = simulate_batch(grid, min(CHUNK, n - start), rng, config)
                flux[start : start + len(batch["flux"])] = batch["flux"]
                error[start : start + len(batch["flux"])] = batch["error"]
                params.append(batch["params"])
                if bar is not None:
                    bar.update(len(batch["flux"]))
            f["dataset/params"] = np.concatenate(params)
            f.attrs.update(attrs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def generate_dataset(out_dir: str | Path, config: SimulationConfig, grid: TemplateGrid | None = None,
                     overwrite: bool = False, progress: bool = True) -> dict:
    """Simulate a whole dataset (train shards, val, test) into ``out_dir`` and return its manifest.

    Every file is written atomically. An interrupted run resumes: files already recorded in the progress file
    ``.manifest.partial.json`` (with matching checksums and configuration) are kept. A finished dataset (one with
    ``manifest.json``) or a partial one made with another configuration is never overwritten unless
    ``overwrite=True``.

    Raises
    ------
    FileExistsError
        If ``out_dir`` already holds a dataset and ``overwrite`` is False.
    ValueError
        If the configured label ranges leave the template grid.
    """
    out_dir = Path(out_dir)
    final, partial = out_dir / "manifest.json", out_dir / ".manifest.partial.json"
    done = {}
    if final.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a dataset (manifest.json); pass overwrite=True "
                              "(--overwrite on the command line) to replace it")
    if partial.exists() and not overwrite:
        previous = json.loads(partial.read_text())
        if previous["config"] != config.to_dict():
            raise FileExistsError(f"{out_dir} holds an interrupted dataset with another configuration; "
                                  "pass overwrite=True to replace it")
        done = {k: v for k, v in previous["files"].items() if (out_dir / k).exists() and sha256(out_dir / k) == v["sha256"]}
    grid = grid if grid is not None else load_grid(config.grid, progress=progress)
    check_within_grid(config, grid)
    if overwrite:
        final.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(config.seed).spawn(len(config.splits()))
    manifest = {"config": config.to_dict(), "grid": grid.source, "grid_meta": grid.meta,
                "specvit_core": __version__, "files": dict(done)}
    total = sum(n for stem, n in config.splits() if f"{stem}.h5" not in done)
    with tqdm(total=total, desc=f"simulate {out_dir.name}", unit="spectra", disable=not progress) as bar:
        for (stem, n), seed in zip(config.splits(), seeds):
            name = f"{stem}.h5"
            if name in done:
                continue
            split = stem.split("_")[0]
            attrs = {"split": split, "seed": int(config.seed), "spawn_key": json.dumps(list(seed.spawn_key)),
                     "profile": config.profile, "grid": grid.source}
            write_split(out_dir / name, grid, n, np.random.default_rng(seed), config, attrs, bar)
            manifest["files"][name] = {"split": split, "n": n, "spawn_key": list(seed.spawn_key),
                                       "sha256": sha256(out_dir / name)}
            _write_json(partial, manifest)
    _write_json(final, manifest)
    partial.unlink(missing_ok=True)
    return manifest


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


#: Median per-pixel SNR over the Table 2 conditions, 12 x 900 s (paper Table 13 and appendix J).
PAPER_SNR = {18.0: 87.4, 20.0: 24.0, 21.5: 7.1, 22.0: 4.6, 22.5: 3.0, 23.0: 1.9}


def snr_by_magnitude(grid: TemplateGrid, mags=tuple(PAPER_SNR), n: int = 500, seed: int = 0,
                     config: SimulationConfig | None = None) -> "pandas.DataFrame":
    """Median per-spectrum SNR (median of flux / sigma) at each magnitude, with labels and conditions drawn as in
    the datasets, next to the paper's values where it gives them."""
    import pandas as pd

    config = config or SimulationConfig(n_train=1, n_val=1, n_test=1)
    rng = np.random.default_rng(seed)
    rows = []
    for mag in mags:
        batch = simulate_batch(grid, n, rng, SimulationConfig.from_dict({**config.to_dict(), "mag_range": (mag, mag + 1e-9)}))
        snr = batch["params"]["snr"]
        paper = PAPER_SNR.get(float(mag), np.nan)
        rows.append({"mag_i": mag, "snr_median": np.median(snr), "snr_p10": np.percentile(snr, 10),
                     "snr_p90": np.percentile(snr, 90), "paper": paper, "ratio_to_paper": np.median(snr) / paper})
    return pd.DataFrame(rows)


def ensure_dataset(profile: str, out_dir: str | Path | None = None, grid: TemplateGrid | None = None,
                   progress: bool = True, **overrides) -> Path:
    """The dataset of a profile: reused when ``out_dir`` already holds it with the same configuration, made otherwise.

    Raises
    ------
    FileExistsError
        If ``out_dir`` holds a dataset made with another configuration (it is never replaced silently).
    """
    from .config import data_dir

    config = SimulationConfig.from_profile(profile, **overrides)
    out_dir = Path(out_dir or data_dir(profile))
    grid = grid if grid is not None else load_grid(config.grid, progress=progress)
    manifest = out_dir / "manifest.json"
    if manifest.exists():
        existing = json.loads(manifest.read_text())
        if existing["config"] != config.to_dict() or existing["grid_meta"] != grid.meta:
            raise FileExistsError(
                f"{out_dir} holds a dataset made with another configuration or template grid; remove the folder "
                f"(or run `specvit simulate --profile {profile} --overwrite`) to make it anew")
        return out_dir
    generate_dataset(out_dir, config, grid, progress=progress)
    return out_dir
