"""Benchmark (not a test): training-loader spectra/s and peak memory, in memory against streamed from HDF5 shards.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_loader.py --n 20000

Writes ``--n`` training spectra (random flux, the simulator's file layout: uncompressed, contiguous) as 4 shards in
a temporary folder, then reports, in one run on this machine:

* the noise of a batch of 256 shuffled rows: one numpy Generator per spectrum (the former ``NoisySpectra``) against
  ``data.noisy_rows`` (one counter-based Philox stream, drawn per batch), in microseconds per spectrum;
* spectra/s of a DataLoader (batch 256, shuffled, one epoch) with 0, 1 and 2 workers over ``NoisySpectra`` (split
  in memory), ``ShardedSpectra`` (streamed) and the former per-spectrum noise (in memory, no ``__getitems__``);
* peak RSS of each loader run (main process, and the largest worker), at ``--n`` and at half of it, each case in a
  fresh process: in memory it grows with n, streamed it does not.

The files stay in the page cache here: the streamed figures are those of a warm cache, not of a disk.
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
import torch
from torch.utils.data import DataLoader, Dataset

from specvit_core.data import NoisySpectra, ShardedSpectra, SpectraWriter, noisy_rows, read_labels, read_split

N_PIXELS, BATCH, SHARDS = 4096, 256, 4


class PerSampleNoise(Dataset):
    """The former sample path: one ``default_rng((seed, epoch, i))`` per spectrum, fetched one at a time."""

    def __init__(self, flux, error, labels, seed=42):
        self.flux, self.error, self.labels, self.seed, self.epoch = flux, error, labels, seed, 0

    def __len__(self):
        return len(self.flux)

    def __getitem__(self, i):
        eps = np.random.default_rng((self.seed, self.epoch, i)).standard_normal(N_PIXELS, dtype=np.float32)
        x = np.maximum(self.flux[i] + eps * self.error[i], 0, dtype=np.float32)
        return torch.from_numpy(x), torch.tensor([self.labels[i]], dtype=torch.float32)


def write_shards(folder: Path, n: int) -> None:
    """``SHARDS`` training shards of random spectra (positive flux, positive error) and a 1-spectrum-per-row table."""
    rng, wave = np.random.default_rng(0), np.linspace(7100.0, 8850.0, N_PIXELS)
    for k, rows in enumerate(np.array_split(np.arange(n), SHARDS)):
        with SpectraWriter(folder / f"train_{k:03d}.h5", wave, len(rows), {"split": "train"}) as out:
            for block in np.array_split(rows, max(1, len(rows) // 2000)):
                params = np.zeros(len(block), dtype=[("log_g", "f8")])
                params["log_g"] = rng.uniform(1, 5, len(block))
                out.append(rng.uniform(0.5, 1.5, (len(block), N_PIXELS)).astype(np.float32),
                           rng.uniform(0.01, 0.1, (len(block), N_PIXELS)).astype(np.float32), params)


def noise_timings(reps: int = 5) -> dict:
    """Microseconds per spectrum to draw the noise of 256 shuffled rows: per spectrum and per batch."""
    rng = np.random.default_rng(1)
    rows = rng.choice(1_000_000, BATCH, replace=False)
    flux, error = np.ones((BATCH, N_PIXELS), np.float32), np.full((BATCH, N_PIXELS), 0.1, np.float32)

    def per_spectrum():
        return np.stack([np.maximum(flux[j] + np.random.default_rng((42, 3, int(i))).standard_normal(
            N_PIXELS, dtype=np.float32) * error[j], 0, dtype=np.float32) for j, i in enumerate(rows)])

    def per_batch():
        return noisy_rows(flux, error, rows, 42, 3)

    best = {}
    for name, draw in (("per_spectrum", per_spectrum), ("batched", per_batch)):
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            draw()
            times.append(time.perf_counter() - start)
        best[name] = min(times) / BATCH * 1e6
    return best


def build(kind: str, folder: Path, max_rows: int) -> Dataset:
    """The training dataset of one case over the first ``max_rows`` spectra of the folder."""
    labels = read_labels(folder, "train", max_rows=max_rows)
    if kind == "stream":
        return ShardedSpectra(folder, "train", labels, max_rows=max_rows, seed=42)
    split = read_split(folder, "train", max_rows)
    if kind == "memory":
        return NoisySpectra(split.flux, split.error, labels, seed=42)
    return PerSampleNoise(split.flux, split.error, labels)


def run_case(kind: str, folder: Path, workers: int, max_rows: int) -> dict:
    """One epoch of a shuffled DataLoader over the case's dataset: spectra/s and peak RSS (MiB)."""
    torch.set_num_threads(1)
    ds = build(kind, folder, max_rows)
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, generator=torch.Generator())
    start, seen = time.perf_counter(), 0
    for x, _ in loader:
        seen += len(x)
    seconds = time.perf_counter() - start
    return {"kind": kind, "workers": workers, "n": max_rows, "spectra_per_s": seen / seconds,
            "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="training spectra (default: %(default)s)")
    parser.add_argument("--case", nargs=4, metavar=("KIND", "FOLDER", "WORKERS", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # one measurement, in a fresh process (its own peak RSS)
        kind, folder, workers, rows = args.case
        print(json.dumps(run_case(kind, Path(folder), int(workers), int(rows))))
        return
    print("noise of a batch of 256 rows, us per spectrum: " + ", ".join(
        f"{k} {v:.1f}" for k, v in noise_timings().items()))
    with tempfile.TemporaryDirectory() as tmp:
        write_shards(Path(tmp), args.n)
        print(f"{'dataset':>12s} {'workers':>7s} {'n':>7s} {'spectra/s':>10s} {'peak RSS main':>14s} "
              f"{'largest worker':>15s}  (MiB)")
        cases = [(kind, w, args.n) for kind in ("memory", "stream", "per_sample") for w in (0, 1, 2)]
        cases += [(kind, 0, args.n // 2) for kind in ("memory", "stream")]
        for kind, workers, rows in cases:
            out = subprocess.run([sys.executable, __file__, "--case", kind, tmp, str(workers), str(rows)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            print(f"{r['kind']:>12s} {r['workers']:7d} {r['n']:7d} {r['spectra_per_s']:10,.0f} "
                  f"{r['rss_main_mib']:14,.0f} {r['rss_worker_mib'] if workers else float('nan'):15,.0f}")


if __name__ == "__main__":
    main()
