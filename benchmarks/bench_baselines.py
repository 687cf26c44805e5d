"""Benchmark (not a test): throughput of the classical baselines in spectra per second (the paper's Table 6).

    .venv/bin/python benchmarks/bench_baselines.py --n-train 2000 --n-test 10000 --trees 1000 --n-fit 200

Simulates spectra with the embedded grid (labels, magnitudes and conditions as in the datasets, one noise
realization each), fits Ridge (one alpha, 1e5 as in Table 3) and LightGBM (exactly ``--trees`` trees, as the
paper's 1000), then times their predictions on ``--n-test`` spectra, and the template fit (appendix H) on
``--n-fit`` spectra with 1 and with all worker processes.
"""
import argparse
import os
import time

import numpy as np

from specvit_core.baselines import fit_lightgbm, fit_ridge
from specvit_core.noise import noisy_spectrum
from specvit_core.simulate import SimulationConfig, simulate_batch
from specvit_core.spectra import load_grid
from specvit_core.template_fit import template_fit


def rate(n, seconds):
    return f"{n / seconds:12,.0f} spectra/s  ({n} in {seconds:.2f} s)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=2000, help="training spectra (default: %(default)s)")
    parser.add_argument("--n-test", type=int, default=10000, help="spectra predicted (default: %(default)s)")
    parser.add_argument("--trees", type=int, default=1000, help="LightGBM trees (default: %(default)s)")
    parser.add_argument("--n-fit", type=int, default=200, help="spectra template-fitted (default: %(default)s)")
    args = parser.parse_args()
    grid = load_grid("embedded", progress=False)
    config = SimulationConfig(n_train=1, n_val=1, n_test=1)
    rng = np.random.default_rng(0)
    data = {}
    for name, n in (("train", args.n_train), ("val", 500), ("test", args.n_test)):
        batch = simulate_batch(grid, n, rng, config)
        data[name] = (noisy_spectrum(batch["flux"], batch["error"], rng), batch["error"], batch["params"]["log_g"])
    (x, _, y), (xv, _, yv), (xt, et, _) = data["train"], data["val"], data["test"]
    cores = os.cpu_count() or 1
    print(f"{args.n_train} training spectra, {cores} cores")

    t = time.perf_counter(); ridge, alpha, _ = fit_ridge(x, y, xv, yv, alphas=[1e5]); fit = time.perf_counter() - t
    t = time.perf_counter(); ridge.predict(xt); print(f"Ridge predict        {rate(len(xt), time.perf_counter() - t)}"
                                                       f"   fit {fit:.1f} s")
    t = time.perf_counter()
    lgbm, _ = fit_lightgbm(x, y, xv, yv, n_estimators=args.trees, early_stopping=args.trees, num_threads=cores)
    fit = time.perf_counter() - t
    t = time.perf_counter(); lgbm.predict(xt, num_threads=cores)
    print(f"LightGBM predict     {rate(len(xt), time.perf_counter() - t)}   fit {fit:.1f} s, "
          f"{lgbm.num_trees()} trees")
    for workers in sorted({1, cores}):
        t = time.perf_counter()
        result = template_fit(xt[:args.n_fit], et[:args.n_fit], grid, workers=workers, progress=False)
        print(f"template fit ({workers} proc) {rate(args.n_fit, time.perf_counter() - t)}   "
              f"median {result.nfev.median():.0f} chi2 evaluations per start")


if __name__ == "__main__":
    main()
