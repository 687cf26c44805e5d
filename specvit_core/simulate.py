"""Labels + observing conditions -> simulated PFS MR spectra, written as HDF5 shards with a manifest.

The data flow of the paper's section 4.1.1 and appendix G: labels drawn uniformly, templates interpolated on the
grid, observed through the MR arm (``noise.observe``: flux scaled to the i-band magnitude, per-pixel sigma from the
photon chain), median-normalized (section 3.2), and stored clean with their sigma so that training injects fresh
noise every epoch. Train shards, validation and test draw from independent seeds, so that several processes can
write them at once (``generate_dataset(..., workers=k)``, ``specvit simulate --workers k``) into the same dataset,
each holding 2000 spectra at a time: a million spectra take the memory of a thousand.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import __version__, files, paper
from .config import LABEL_RANGES, get_profile, require_integer
from .data import MANIFEST, SpectraWriter, read_manifest, split_of_file
from .noise import draw_conditions, median_normalize, observe
from .spectra.grid import load_grid
from .spectra.templates import TemplateGrid

LABELS = ("T_eff", "log_g", "M_H")
CONDITIONS = ("seeing", "zenith_angle", "field_angle", "moon_zenith", "moon_target", "moon_phase")
PARAM_FIELDS = LABELS + ("mag", "snr", "norm") + CONDITIONS
CHUNK = 2000  # spectra simulated and written per step
OBSERVATION_MODULES = ("noise", "instrument")  # the code that turns templates into observed spectra
PARTIAL = ".manifest.partial.json"  # the manifest of the files written so far, while a dataset is being written
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
        A field of the wrong type or value, named with its value and the rule: sizes or ``n_shards`` not positive
        integers, ``n_shards > n_train``, ``seed`` not an integer >= 0, a range that is not an increasing pair of
        finite numbers, an unknown ``compression``, ``grid`` or ``profile`` not a non-empty str. Integer and range
        fields are stored as ``int`` and tuples of ``float``.
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
        for name in ("n_train", "n_val", "n_test", "n_shards", "seed"):
            object.__setattr__(self, name, require_integer(name, getattr(self, name), minimum=0 if name == "seed" else 1))
        for name in ("mag_range", "teff_range", "logg_range", "mh_range"):
            object.__setattr__(self, name, _pair(name, getattr(self, name)))
        for name in ("grid", "profile"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"The {name} parameter, {value!r}, must be a non-empty str")
        if not isinstance(self.compression, str) or self.compression not in COMPRESSION:
            raise ValueError(f"The compression parameter, {self.compression!r}, must be one of {list(COMPRESSION)}")
        if self.n_shards > self.n_train:
            raise ValueError(f"n_shards ({self.n_shards}) must not exceed n_train ({self.n_train})")

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


def _pair(name: str, value) -> tuple[float, float]:
    """``value`` as a (min, max) tuple of floats if it is an increasing pair of finite numbers, else ValueError."""
    numbers = isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2 and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value)
    if not (numbers and np.isfinite(value).all() and value[0] < value[1]):
        raise ValueError(f"The {name} parameter, {value!r}, must be an increasing (min, max) pair of finite numbers")
    return float(value[0]), float(value[1])


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
    compression = COMPRESSION[config.compression]  # uncompressed: contiguous, the fastest layout to read rows from
    options = dict(chunks=(min(n, 64), grid.wave.size), **compression) if compression else {}
    with SpectraWriter(path, grid.wave, n, attrs, **options) as out:
        for start in range(0, n, CHUNK):
            batch = simulate_batch(grid, min(CHUNK, n - start), rng, config)
            out.append(batch["flux"], batch["error"], batch["params"])
            if bar is not None:
                bar.update(len(batch["flux"]))


def generate_dataset(out_dir: str | Path, config: SimulationConfig, grid: TemplateGrid | None = None,
                     overwrite: bool = False, progress: bool = True, workers: int = 1) -> dict:
    """Simulate a whole dataset (train shards, val, test) into ``out_dir`` and return its manifest.

    Every file is written atomically (:mod:`~specvit_core.files`), and the lock file ``<out_dir>.lock`` (beside the
    folder) keeps a second run from writing the same folder meanwhile. An interrupted run resumes: files already
    recorded in the progress file ``.manifest.partial.json`` (with matching checksums and configuration) are kept,
    temporary files it left are removed. A finished dataset (one with ``manifest.json``), a partial one made with
    another configuration, or a folder with other HDF5 files is never written into unless ``overwrite=True``; then
    the new dataset is written into ``<out_dir>.<pid>.new`` and replaces the folder as a whole at the end, so that
    no file of the old dataset survives (:func:`~specvit_core.files.staged_folder`).

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
    workers : int
        Processes that write files at once (>= 1): 1 writes them one after the other in this process; more spawn
        that many processes, each writing whole files (a train shard, val or test) with its own seeded generator
        and constant memory, so the dataset is byte-identical for any number of workers. The processes are
        spawned: in a script, call this under ``if __name__ == "__main__":``.

    Returns
    -------
    dict
        The manifest (also written to ``manifest.json``): ``config``, ``grid``, ``grid_meta``, ``specvit_core``
        (version) and ``files`` (per file, in split order: ``split``, ``n``, ``spawn_key``, ``sha256``).

    Raises
    ------
    FileExistsError
        If another process is writing ``out_dir`` (the message names the lock file, the owner's PID and host), if
        ``out_dir`` already holds a dataset or other HDF5 files and ``overwrite`` is False, or if ``overwrite`` is
        True but ``out_dir`` holds files that are not those of a dataset.
    ValueError
        If the configured label ranges leave the template grid, or ``workers`` is not a positive integer.

    Warns
    -----
    UserWarning
        When it takes over the lock of a killed run, or restores ``out_dir`` from the ``.old`` folder of an
        overwrite killed in the middle of its swap (:func:`~specvit_core.files.recover_staged`).
    """
    out_dir, workers = Path(out_dir), require_integer("workers", workers, minimum=1)
    with files.hold_lock(lock_file(out_dir)):
        files.recover_staged(out_dir)  # folders of killed overwrite runs
        if overwrite:
            _check_replaceable(out_dir)
        done = {} if overwrite else _check_folder(out_dir, config)
        grid = grid if grid is not None else load_grid(config.grid, progress=progress)
        check_within_grid(config, grid)
        if overwrite:
            with files.staged_folder(out_dir) as new:
                return _write_dataset(new, config, grid, {}, progress, out_dir.name, workers)
        out_dir.mkdir(parents=True, exist_ok=True)
        files.remove_stale(out_dir)  # temporary files of an interrupted run
        return _write_dataset(out_dir, config, grid, done, progress, out_dir.name, workers)


def observation_fingerprint() -> str:
    """SHA-256 of the observation code (:data:`OBSERVATION_MODULES`, docstrings and comments aside).

    A dataset records it in its manifest; one made by other noise or instrument code is not reused.

    Returns
    -------
    str
        64 hex digits.
    """
    return files.code_digest([Path(__file__).with_name(f"{name}.py") for name in OBSERVATION_MODULES])


def lock_file(out_dir: str | Path) -> Path:
    """The lock file that :func:`generate_dataset` holds while it writes ``out_dir``: ``<out_dir>.lock`` beside it.

    Parameters
    ----------
    out_dir : str or Path
        Dataset folder (symbolic links resolved, so that every path to the folder names the same lock).

    Returns
    -------
    Path
        The lock file (JSON ``pid``, ``host``, ``started`` while a run writes the folder).
    """
    folder = Path(os.path.realpath(out_dir))
    return folder.with_name(f"{folder.name}.lock")


def _check_folder(out_dir: Path, config: SimulationConfig) -> dict:
    """The files of an interrupted run of ``config`` in ``out_dir`` that can be kept (name -> manifest entry).

    Raises FileExistsError if ``out_dir`` holds a finished dataset, an interrupted one of another configuration,
    or HDF5 files that are not part of the dataset being resumed.
    """
    if (out_dir / MANIFEST).exists():
        raise FileExistsError(f"{out_dir} already holds a dataset (manifest.json); pass overwrite=True "
                              "(--overwrite on the command line) to replace it")
    partial, done = out_dir / PARTIAL, {}
    if partial.exists():
        previous = json.loads(partial.read_text())
        if previous["config"] != config.to_dict() or previous.get("observation") != observation_fingerprint():
            raise FileExistsError(f"{out_dir} holds an interrupted dataset with another configuration; "
                                  "pass overwrite=True to replace it")
        done = {k: v for k, v in previous["files"].items()
                if (out_dir / k).exists() and files.sha256(out_dir / k) == v["sha256"]}
    planned = {f"{stem}.h5" for stem, _ in config.splits()} if partial.exists() else set()
    foreign = sorted(p.name for p in out_dir.glob("*.h5") if p.name not in planned)
    if foreign:
        raise FileExistsError(f"{out_dir} holds HDF5 files that are not part of this dataset ({', '.join(foreign)}); "
                              "pass overwrite=True to replace the folder as a whole")
    return done


def _check_replaceable(out_dir: Path) -> None:
    """Raise FileExistsError unless ``out_dir`` may be replaced as a whole: missing, a dataset folder (with a
    manifest or a progress file), or holding only the files a dataset has."""
    if not out_dir.exists() or (out_dir / MANIFEST).exists() or (out_dir / PARTIAL).exists():
        return
    other = sorted(p.name for p in out_dir.iterdir()  # a split file, or its temporary copy <name>.<pid>.tmp
                   if split_of_file(re.sub(r"\.[0-9]+\.tmp$", "", p.name)) is None)
    if other:
        raise FileExistsError(f"{out_dir} is not a dataset folder (no {MANIFEST}) and holds other files "
                              f"({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}); overwrite replaces the "
                              "folder as a whole, so choose an empty or dataset folder")


def _write_dataset(out_dir: Path, config: SimulationConfig, grid: TemplateGrid, done: dict, progress: bool,
                   label: str, workers: int) -> dict:
    """Write the files of ``config`` not in ``done`` into the existing folder ``out_dir``, then its manifest."""
    partial = out_dir / PARTIAL
    seeds = np.random.SeedSequence(config.seed).spawn(len(config.splits()))
    manifest = {"config": config.to_dict(), "grid": grid.source, "grid_meta": grid.meta,
                "observation": observation_fingerprint(), "specvit_core": __version__, "files": dict(done)}
    tasks = [(stem, n, seed) for (stem, n), seed in zip(config.splits(), seeds) if f"{stem}.h5" not in done]
    with tqdm(total=sum(n for _, n, _ in tasks), desc=f"simulate {label}", unit="spectra",
              disable=not progress) as bar:
        for name, entry in _write_files(out_dir, tasks, config, grid, workers, bar):
            manifest["files"][name] = entry
            files.write_json(partial, manifest)
    manifest["files"] = {f"{stem}.h5": manifest["files"][f"{stem}.h5"] for stem, _ in config.splits()}
    files.write_json(out_dir / MANIFEST, manifest)
    partial.unlink(missing_ok=True)
    return manifest


def _write_files(out_dir: Path, tasks: list, config: SimulationConfig, grid: TemplateGrid, workers: int, bar):
    """Write the files ``tasks`` ((stem, n, seed) each) and yield (name, manifest entry) of each as it is done: in
    order in this process when one worker (or one file) is left, else in the order they finish in spawned
    processes. On an error the files not started are cancelled, those being written finish (and are yielded), then
    the error is raised."""
    workers = min(workers, len(tasks))
    if workers <= 1:
        for task in tasks:
            yield _write_file(out_dir, task, config, grid, bar)
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited locks or open HDF5 files
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(grid, os.getpid(), out_dir)) as pool:
        futures = {pool.submit(_write_file, out_dir, task, config): task[1] for task in tasks}
        failure = None
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    failure = failure or future.exception()
                    _cancel(futures)
                    continue
                bar.update(futures[future])
                yield future.result()
        finally:
            _cancel(futures)  # also when the caller stops early: only the files being written are waited for
    if failure is not None:
        raise failure


def _cancel(futures) -> None:
    """Cancel the futures that have not started."""
    for future in futures:
        future.cancel()


_worker_grid: TemplateGrid | None = None  # the template grid of a writer process (set by _start_worker)


def _start_worker(grid: TemplateGrid, parent: int, out_dir: Path) -> None:
    """Initialize a writer process: keep its template grid, and exit when ``parent`` dies, so that a killed run
    leaves no process writing into its folder ``out_dir`` while it is resumed."""
    global _worker_grid
    _worker_grid = grid
    threading.Thread(target=_exit_without, args=(parent, out_dir), daemon=True).start()


def _exit_without(parent: int, out_dir: Path) -> None:
    """Once this process's parent is no longer ``parent`` (it died and the process was re-parented), remove the
    temporary files this process writes in ``out_dir`` and exit."""
    while os.getppid() == parent:
        time.sleep(0.2)
    for tmp in out_dir.glob(f"*.{os.getpid()}.tmp"):
        tmp.unlink(missing_ok=True)
    os._exit(1)


def _write_file(out_dir: Path, task: tuple, config: SimulationConfig, grid: TemplateGrid | None = None,
                bar=None) -> tuple[str, dict]:
    """Write the file of ``task`` = (stem, n, seed) (with this writer process's grid when ``grid`` is None) and
    return its name and manifest entry."""
    stem, n, seed = task
    grid = grid if grid is not None else _worker_grid
    name, split = f"{stem}.h5", stem.split("_")[0]
    attrs = {"split": split, "seed": int(config.seed), "spawn_key": json.dumps(list(seed.spawn_key)),
             "profile": config.profile, "grid": grid.source}
    write_split(out_dir / name, grid, n, np.random.default_rng(seed), config, attrs, bar)
    return name, {"split": split, "n": n, "spawn_key": list(seed.spawn_key), "sha256": files.sha256(out_dir / name)}


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
        If ``out_dir`` holds a dataset made with another configuration (it is never replaced silently), or another
        process is writing it (:func:`generate_dataset`).
    ValueError
        An unknown profile, invalid overrides, or label ranges outside the grid.
    """
    from .config import data_dir

    config = SimulationConfig.from_profile(profile, **overrides)
    out_dir = Path(out_dir or data_dir(profile))
    grid = grid if grid is not None else load_grid(config.grid, progress=progress)
    existing = read_manifest(out_dir, required=False)
    if existing:
        if existing["config"] != config.to_dict() or existing["grid_meta"] != grid.meta or \
                existing.get("observation") != observation_fingerprint():
            raise FileExistsError(
                f"{out_dir} holds a dataset made with another configuration, template grid or noise model; remove "
                f"the folder (or run `specvit simulate --profile {profile} --overwrite`) to make it anew")
        return out_dir
    generate_dataset(out_dir, config, grid, progress=progress)
    return out_dir
