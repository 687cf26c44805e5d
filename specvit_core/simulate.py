"""Labels + observing conditions -> simulated PFS MR spectra, written as HDF5 shards with a manifest.

The data flow of the paper's section 4.1.1 and appendix G: labels drawn uniformly, templates interpolated on the
grid, observed through the MR arm (``noise.observe``: flux scaled to the i-band magnitude, per-pixel sigma from the
photon chain), median-normalized (section 3.2), and stored clean with their sigma so that training injects fresh
noise every epoch. Train shards, validation and test draw from independent seeds.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import __version__, files, paper
from .config import LABEL_RANGES, get_profile
from .data import MANIFEST, SpectraWriter, read_manifest
from .noise import draw_conditions, median_normalize, observe
from .spectra.grid import load_grid
from .spectra.templates import TemplateGrid

LABELS = ("T_eff", "log_g", "M_H")
CONDITIONS = ("seeing", "zenith_angle", "field_angle", "moon_zenith", "moon_target", "moon_phase")
PARAM_FIELDS = LABELS + ("mag", "snr", "norm") + CONDITIONS
CHUNK = 2000  # spectra simulated and written per step
COMPRESSION = {"none": {}, "lzf": {"compression": "lzf", "shuffle": True},
               "gzip": {"compression": "gzip", "compression_opts": 1, "shuffle": True}}


@dataclass(frozen=True)
class SimulationConfig:
    """What a dataset is made of; saved in its manifest.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Spectra per split (> 0).
    n_shards : int
        Number of train files ``train_000.h5, ...`` (1 <= n_shards <= n_train).
    mag_range : tuple of float
        (min, max) i-band AB magnitude, drawn uniformly.
    teff_range, logg_range, mh_range : tuple of float
        (min, max) of T_eff (K), log g (dex, cgs) and [M/H] (dex), drawn uniformly; inside the template grid.
    grid : str
        ``"embedded"`` or a folder of BOSZ files (:func:`~specvit_core.spectra.grid.load_grid`).
    compression : {"none", "lzf", "gzip"}
        HDF5 compression of flux and error.
    seed : int
        Root seed; each file draws from its own spawned seed.
    profile : str
        Name of the profile the sizes come from (``"custom"`` otherwise).

    Raises
    ------
    ValueError
        Sizes or ``n_shards`` not positive integers, ``n_shards > n_train``, an unknown ``compression``, or a range
        that is not a finite increasing pair.
    """

    n_train: int
    n_val: int
    n_test: int
    n_shards: int = 1
    mag_range: tuple = (20.5, 22.5)
    teff_range: tuple = LABEL_RANGES["T_eff"]
    logg_range: tuple = LABEL_RANGES["log_g"]
    mh_range: tuple = LABEL_RANGES["M_H"]
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
        """The configuration of a manifest's ``config`` (:meth:`to_dict` output; lists become tuples).

        Parameters
        ----------
        d : dict
            Field name -> value.

        Returns
        -------
        SimulationConfig
            The configuration.

        Raises
        ------
        TypeError
            An unknown field or a missing required one.
        ValueError
            Invalid values (see the class).
        """
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @classmethod
    def from_profile(cls, profile: str, **overrides) -> "SimulationConfig":
        """The configuration with the dataset sizes of a profile.

        Parameters
        ----------
        profile : str
            ``smoke``, ``quick``, ``cpu`` or ``paper``.
        **overrides
            Fields to set otherwise (e.g. ``seed``, ``compression``).

        Returns
        -------
        SimulationConfig
            The configuration.

        Raises
        ------
        ValueError
            An unknown profile or invalid values.
        TypeError
            An unknown field in ``overrides``.
        """
        p = get_profile(profile)
        base = dict(n_train=p.n_train, n_val=p.n_val, n_test=p.n_test, n_shards=p.n_shards, profile=p.name)
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict:
        """The configuration as JSON-ready data.

        Returns
        -------
        dict
            Field name -> value, tuples as lists.
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def splits(self) -> list[tuple[str, int]]:
        """The files of the dataset, in seed order: train shards (near-equal sizes), then val and test.

        Returns
        -------
        list of (str, int)
            (file stem, number of spectra), e.g. ``[("train_000", n), ..., ("val", n_val), ("test", n_test)]``.
        """
        sizes = np.diff(np.linspace(0, self.n_train, self.n_shards + 1).round().astype(int))
        return [(f"train_{i:03d}", int(n)) for i, n in enumerate(sizes)] + [("val", self.n_val), ("test", self.n_test)]


def check_within_grid(config: SimulationConfig, grid: TemplateGrid) -> None:
    """Check that the label ranges of ``config`` lie inside the template grid.

    Parameters
    ----------
    config : SimulationConfig
        The label ranges.
    grid : TemplateGrid
        The template grid.

    Raises
    ------
    ValueError
        If a label range leaves the grid.
    """
    for name, axis in zip(("teff_range", "logg_range", "mh_range"), LABELS):
        lo, hi = getattr(config, name)
        glo, ghi = grid.bounds[axis]
        if lo < glo or hi > ghi:
            raise ValueError(f"The {name} parameter, ({lo:g}, {hi:g}), lies outside the {axis} range of the grid "
                             f"[{glo:g}, {ghi:g}]")


def draw_labels(rng: np.random.Generator, n: int, config: SimulationConfig) -> np.ndarray:
    """Labels uniform in the configured T_eff, log g and [M/H] ranges.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draws.
    n : int
        Number of labels.
    config : SimulationConfig
        The label ranges.

    Returns
    -------
    ndarray, float64, shape (n, 3)
        Columns T_eff (K), log g (dex), [M/H] (dex).
    """
    ranges = np.array([config.teff_range, config.logg_range, config.mh_range], dtype=float)
    return rng.uniform(ranges[:, 0], ranges[:, 1], size=(n, 3))


def simulate_batch(grid: TemplateGrid, n: int, rng: np.random.Generator, config: SimulationConfig) -> dict:
    """Simulate ``n`` spectra: labels, magnitudes and conditions drawn, observed and median-normalized.

    Parameters
    ----------
    grid : TemplateGrid
        Template grid on the 4096-pixel MR wavelengths.
    n : int
        Number of spectra.
    rng : numpy.random.Generator
        Source of all draws.
    config : SimulationConfig
        Label and magnitude ranges.

    Returns
    -------
    dict
        ``flux`` and ``error``: float32, shape (n, 4096), clean normalized flux and its 1-sigma uncertainty;
        ``params``: structured array (n,) with fields :data:`PARAM_FIELDS` (labels, ``mag``, median ``snr``,
        ``norm`` = the median divided out, conditions).

    Raises
    ------
    ValueError
        Labels outside the grid, or a grid not on the MR wavelengths.
    """
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


def write_split(path: Path, grid: TemplateGrid, n: int, rng: np.random.Generator, config: SimulationConfig,
                attrs: dict, bar=None) -> None:
    """Simulate ``n`` spectra into the HDF5 file ``path`` (paper schema, :class:`~.data.SpectraWriter`).

    Parameters
    ----------
    path : Path
        The file, written atomically.
    grid : TemplateGrid
        Template grid.
    n : int
        Number of spectra.
    rng : numpy.random.Generator
        Source of the draws of this file.
    config : SimulationConfig
        Ranges and compression.
    attrs : dict
        File attributes (``split``, ``seed``, ...).
    bar : tqdm, optional
        Progress bar, advanced by the spectra written.

    Raises
    ------
    ValueError
        As :func:`simulate_batch`.
    """
    options = dict(chunks=(min(n, 64), grid.wave.size), **COMPRESSION[config.compression])
    with SpectraWriter(path, grid.wave, n, attrs, **options) as out:
        for start in range(0, n, CHUNK):
            batch = simulate_batch(grid, min(CHUNK, n - start), rng, config)
            out.append(batch["flux"], batch["error"], batch["params"])
            if bar is not None:
                bar.update(len(batch["flux"]))


def generate_dataset(out_dir: str | Path, config: SimulationConfig, grid: TemplateGrid | None = None,
                     overwrite: bool = False, progress: bool = True) -> dict:
    """Simulate a whole dataset (train shards, val, test) into ``out_dir`` and return its manifest.

    Every file is written atomically (:mod:`~specvit_core.files`). An interrupted run resumes: files already recorded
    in the progress file ``.manifest.partial.json`` (with matching checksums and configuration) are kept, temporary
    files it left are removed. A finished dataset (one with ``manifest.json``) or a partial one made with another
    configuration is never overwritten unless ``overwrite=True``.

    Parameters
    ----------
    out_dir : str or Path
        Dataset folder (created if missing).
    config : SimulationConfig
        What to simulate.
    grid : TemplateGrid, optional
        Template grid (default: the one ``config.grid`` names, loaded).
    overwrite : bool
        Replace a finished or differently configured dataset in ``out_dir``.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The manifest (also written to ``manifest.json``): ``config``, ``grid``, ``grid_meta``, ``specvit_core``
        (version) and ``files`` (per file: ``split``, ``n``, ``spawn_key``, ``sha256``).

    Raises
    ------
    FileExistsError
        If ``out_dir`` already holds a dataset and ``overwrite`` is False.
    ValueError
        If the configured label ranges leave the template grid.
    """
    out_dir = Path(out_dir)
    final, partial = out_dir / MANIFEST, out_dir / ".manifest.partial.json"
    done = {}
    if final.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a dataset (manifest.json); pass overwrite=True "
                              "(--overwrite on the command line) to replace it")
    if partial.exists() and not overwrite:
        previous = json.loads(partial.read_text())
        if previous["config"] != config.to_dict():
            raise FileExistsError(f"{out_dir} holds an interrupted dataset with another configuration; "
                                  "pass overwrite=True to replace it")
        done = {k: v for k, v in previous["files"].items()
                if (out_dir / k).exists() and files.sha256(out_dir / k) == v["sha256"]}
    grid = grid if grid is not None else load_grid(config.grid, progress=progress)
    check_within_grid(config, grid)
    if overwrite:
        final.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    files.remove_stale(out_dir)  # temporary files of an interrupted run
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
                                       "sha256": files.sha256(out_dir / name)}
            files.write_json(partial, manifest)
    files.write_json(final, manifest)
    partial.unlink(missing_ok=True)
    return manifest


def snr_by_magnitude(grid: TemplateGrid, mags=tuple(paper.SNR_BY_MAG), n: int = 500, seed: int = 0,
                     config: SimulationConfig | None = None) -> "pandas.DataFrame":
    """Median per-spectrum SNR (median of flux / sigma) at each magnitude, with labels and conditions drawn as in
    the datasets, next to the paper's values where it gives them (``paper.SNR_BY_MAG``).

    Parameters
    ----------
    grid : TemplateGrid
        Template grid.
    mags : sequence of float
        i-band magnitudes (default: those of the paper's table).
    n : int
        Spectra per magnitude.
    seed : int
        Seed of the draws.
    config : SimulationConfig, optional
        Label ranges of the draws (default: the simulator's).

    Returns
    -------
    pandas.DataFrame
        One row per magnitude: ``mag_i``, ``snr_median``, ``snr_p10``, ``snr_p90``, ``paper``, ``ratio_to_paper``
        (``paper`` and the ratio NaN where the paper gives no value).

    Raises
    ------
    ValueError
        Label ranges of ``config`` outside the grid.
    """
    import pandas as pd

    config = config or SimulationConfig(n_train=1, n_val=1, n_test=1)
    rng = np.random.default_rng(seed)
    rows = []
    for mag in mags:
        batch = simulate_batch(grid, n, rng, SimulationConfig.from_dict({**config.to_dict(), "mag_range": (mag, mag + 1e-9)}))
        snr = batch["params"]["snr"]
        quoted = paper.SNR_BY_MAG.get(float(mag), np.nan)
        rows.append({"mag_i": mag, "snr_median": np.median(snr), "snr_p10": np.percentile(snr, 10),
                     "snr_p90": np.percentile(snr, 90), "paper": quoted, "ratio_to_paper": np.median(snr) / quoted})
    return pd.DataFrame(rows)


def ensure_dataset(profile: str, out_dir: str | Path | None = None, grid: TemplateGrid | None = None,
                   progress: bool = True, **overrides) -> Path:
    """The dataset of a profile: reused when ``out_dir`` already holds it with the same configuration, made otherwise.

    Parameters
    ----------
    profile : str
        ``smoke``, ``quick``, ``cpu`` or ``paper``: the dataset sizes.
    out_dir : str or Path, optional
        Dataset folder (default ``config.data_dir(profile)``).
    grid : TemplateGrid, optional
        Template grid (default: the one the configuration names, loaded).
    progress : bool
        Show progress bars.
    **overrides
        Fields of :class:`SimulationConfig` to set otherwise.

    Returns
    -------
    Path
        The dataset folder.

    Raises
    ------
    FileExistsError
        If ``out_dir`` holds a dataset made with another configuration (it is never replaced silently).
    ValueError
        An unknown profile, invalid overrides, or label ranges outside the grid.
    """
    from .config import data_dir

    config = SimulationConfig.from_profile(profile, **overrides)
    out_dir = Path(out_dir or data_dir(profile))
    grid = grid if grid is not None else load_grid(config.grid, progress=progress)
    existing = read_manifest(out_dir, required=False)
    if existing:
        if existing["config"] != config.to_dict() or existing["grid_meta"] != grid.meta:
            raise FileExistsError(
                f"{out_dir} holds a dataset made with another configuration or template grid; remove the folder "
                f"(or run `specvit simulate --profile {profile} --overwrite`) to make it anew")
        return out_dir
    generate_dataset(out_dir, config, grid, progress=progress)
    return out_dir
