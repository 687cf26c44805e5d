"""Benchmark (not a test): spectra simulated and written per second once the template grid is cached, with 1 and 2
writer processes, and the peak memory of simulating at the ``paper`` profile.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_simulate.py --n 20000

Reports, in one run on this machine:

* the rate of the whole writer (interpolation + noise model + normalization + HDF5 write) and of its parts;
* ``generate_dataset`` with ``workers=1`` and ``workers=2`` (``--n`` training spectra in 4 shards, val and test of
  1000), spectra/s each, and whether the two datasets are byte-identical (same manifest checksums);
* peak RSS of ``generate_dataset`` at the ``paper`` profile (5 shards, val 1000, test 10000) with ``n_train`` capped
  at ``--n`` and at half of it, ``workers=2``, each in a fresh process: the main process and the largest writer
  process. Memory stays flat in n: each process simulates and writes 2000 spectra at a time.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from specvit_core.noise import draw_conditions, observe
from specvit_core.simulate import SimulationConfig, generate_dataset, simulate_batch
from specvit_core.spectra import load_grid


def rate(n, seconds):
    return f"{n / seconds:10,.0f} spectra/s"


def parts(grid, config):
    """Rates of interpolation, noise model and a whole simulated batch of 2000 spectra."""
    rng = np.random.default_rng(0)
    labels = rng.uniform([3750, 1, -2.5], [6000, 5, 0.75], size=(2000, 3))
    t = time.perf_counter(); template = grid.interpolate(labels); t_interp = time.perf_counter() - t
    cond = draw_conditions(rng, 2000)
    t = time.perf_counter(); observe(grid.wave, template, rng.uniform(20.5, 22.5, 2000), cond); t_noise = time.perf_counter() - t
    t = time.perf_counter(); simulate_batch(grid, 2000, rng, config); t_batch = time.perf_counter() - t
    print(f"interpolation        {rate(2000, t_interp)}")
    print(f"noise model          {rate(2000, t_noise)}")
    print(f"simulate_batch       {rate(2000, t_batch)}")


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def workers_compare(grid, config):
    """generate_dataset with 1 and 2 writer processes: rates (per wall and per CPU second, the latter independent of
    what else the machine runs), and the checksums of the two datasets compared."""
    total = config.n_train + config.n_val + config.n_test
    checksums, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            t, cpu = time.perf_counter(), cpu_seconds()
            manifest = generate_dataset(Path(tmp) / f"w{workers}", config, grid, progress=False, workers=workers)
            seconds[workers], cpu = time.perf_counter() - t, cpu_seconds() - cpu
            checksums[workers] = {k: v["sha256"] for k, v in manifest["files"].items()}
            label = f"{workers} process{'es' if workers > 1 else '  '}"
            print(f"simulate + write, {label} {rate(total, seconds[workers])}, {total / cpu:6,.0f} per CPU second  "
                  f"({total} spectra, {config.n_shards} shards, HDF5, compression={config.compression})")
    print(f"2 processes / 1: {seconds[1] / seconds[2]:.2f}x; datasets byte-identical: {checksums[1] == checksums[2]}")


def peak_memory_case(n_train: int, workers: int) -> dict:
    """Simulate the paper profile capped at ``n_train`` into a temporary folder; peak RSS in MiB."""
    config = SimulationConfig.from_profile("paper", n_train=n_train)
    grid = load_grid(config.grid, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate_dataset(Path(tmp) / "paper", config, grid, progress=False, workers=workers)
        seconds = time.perf_counter() - t
    return {"n_train": n_train, "spectra": n_train + config.n_val + config.n_test, "seconds": seconds,
            "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_writer_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="training spectra to simulate (default: %(default)s)")
    parser.add_argument("--case", nargs=2, type=int, metavar=("N_TRAIN", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # one peak-memory measurement, in a fresh process
        print(json.dumps(peak_memory_case(*args.case)))
        return
    t0 = time.perf_counter()
    grid = load_grid("embedded")
    print(f"grid load (cached): {time.perf_counter() - t0:.2f} s")
    config = SimulationConfig(n_train=args.n, n_val=1000, n_test=1000, n_shards=4)
    parts(grid, config)
    workers_compare(grid, config)
    print(f"paper profile, workers=2: {'n_train':>8s} {'spectra':>8s} {'spectra/s':>10s} {'peak RSS main':>14s} "
          f"{'largest writer':>15s}  (MiB)")
    for n in (args.n // 2, args.n):
        out = subprocess.run([sys.executable, __file__, "--case", str(n), "2"], check=True, capture_output=True,
                             text=True).stdout
        r = json.loads(out)
        print(f"{'':26s}{r['n_train']:8d} {r['spectra']:8d} {r['spectra'] / r['seconds']:10,.0f} "
              f"{r['rss_main_mib']:14,.0f} {r['rss_writer_mib']:15,.0f}")


if __name__ == "__main__":
    main()
