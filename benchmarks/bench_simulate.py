"""Benchmark (not a test): spectra simulated and written per second once the template grid is cached.

    .venv/bin/python benchmarks/bench_simulate.py --n 20000

Reports the rate of the whole writer (interpolation + noise model + normalization + HDF5 write) and of its
parts, in one run, on this machine.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from specvit_core.noise import draw_conditions, observe
from specvit_core.simulate import SimulationConfig, generate_dataset, simulate_batch
from specvit_core.spectra import load_grid


def rate(n, seconds):
    return f"{n / seconds:10,.0f} spectra/s"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="training spectra to simulate (default: %(default)s)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    grid = load_grid("embedded")
    print(f"grid load (cached): {time.perf_counter() - t0:.2f} s")
    config = SimulationConfig(n_train=args.n, n_val=1000, n_test=1000, n_shards=2)
    rng = np.random.default_rng(0)
    labels = rng.uniform([3750, 1, -2.5], [6000, 5, 0.75], size=(2000, 3))
    t = time.perf_counter(); template = grid.interpolate(labels); t_interp = time.perf_counter() - t
    cond = draw_conditions(rng, 2000)
    t = time.perf_counter(); observe(grid.wave, template, rng.uniform(20.5, 22.5, 2000), cond); t_noise = time.perf_counter() - t
    t = time.perf_counter(); simulate_batch(grid, 2000, rng, config); t_batch = time.perf_counter() - t
    print(f"interpolation        {rate(2000, t_interp)}")
    print(f"noise model          {rate(2000, t_noise)}")
    print(f"simulate_batch       {rate(2000, t_batch)}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate_dataset(Path(tmp) / "bench", config, grid, progress=False)
        total = args.n + 2000
        print(f"simulate + write     {rate(total, time.perf_counter() - t)}  ({total} spectra, HDF5, compression={config.compression})")


if __name__ == "__main__":
    main()
