"""Study (not a test): learned against wavelength positions on spectra seen through a shifted wavelength window.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_positions.py --profile quick --arch convstem_lstm \
        --max-train 3000 --epochs 12 --shifts -64 0 8 16 64 256

One network is trained per encoding (``positions="learned"``, the paper's, and ``positions="wavelength"``) on the
profile's dataset into ``runs/<profile>/position_study/<arch>_<positions>_n<max_train>_e<epochs>/`` (reused when
it exists). Both are evaluated on the test spectra, with the fixed noise realization they are scored on, observed
through the MR window shifted by s pixels (s > 0 redwards): the noisy spectrum is resampled onto the shifted grid
with :func:`specvit_core.preprocess.resample`, as the transfer chapter resamples survey spectra, and the pixels it
does not cover (the last s, or the first |s| for s < 0) are filled with the continuum, as ``preprocess_spectrum``
fills them after normalization: 1.0 here, the median-normalized level of the simulated spectra (0.5 is the survey
pipeline's). The wavelength model is told the shifted wavelengths (``set_wavelength``); the learned one cannot be.
The script prints test R^2 and MAE against s for both.
"""
import argparse

import numpy as np
import pandas as pd

from specvit_core import runs
from specvit_core.config import get_profile, runs_dir
from specvit_core.data import NoisySpectra, fixed_noisy, read_split
from specvit_core.metrics import regression_metrics
from specvit_core.preprocess import resample
from specvit_core.simulate import ensure_dataset
from specvit_core.train import TrainConfig, predict_label, train

CONTINUUM = 1.0  # the median-normalized continuum of the simulated spectra (noise.median_normalize)
POSITIONS = ("learned", "wavelength")


def shifted_window(wave: np.ndarray, shift: int) -> np.ndarray:
    """The grid ``wave`` (linear) moved by ``shift`` pixels; its pixels inside ``wave`` are ``wave``'s own nodes."""
    index = np.arange(wave.size) + shift
    outside = wave[0] + index * (wave[-1] - wave[0]) / (wave.size - 1)
    return np.where((index >= 0) & (index < wave.size), wave[np.clip(index, 0, wave.size - 1)], outside)


def observe_through(wave: np.ndarray, flux: np.ndarray, wave_out: np.ndarray) -> np.ndarray:
    """Spectra ``flux`` (N, L) on ``wave`` resampled onto ``wave_out``, the uncovered pixels set to the continuum."""
    rows = []
    for spectrum in flux:
        out, _, covered = resample(wave, spectrum, None, wave_out)
        rows.append(np.where(covered, out, CONTINUUM))
    return np.asarray(rows, dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="profile (default: %(default)s)")
    parser.add_argument("--arch", default="convstem_lstm", help="a transformer or hybrid (default: %(default)s)")
    parser.add_argument("--max-train", type=int, default=3000, help="training spectra (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's)")
    parser.add_argument("--shifts", nargs="+", type=int, default=[-64, 0, 8, 16, 64, 256],
                        help="window shifts in pixels, > 0 redwards (default: %(default)s)")
    args = parser.parse_args()
    dataset_dir = ensure_dataset(args.profile)
    epochs = args.epochs or get_profile(args.profile).epochs
    study = runs_dir(args.profile) / "position_study"
    run_dirs = {}
    for positions in POSITIONS:
        run_dirs[positions] = study / f"{args.arch}_{positions}_n{args.max_train}_e{epochs}"
        metrics = train(TrainConfig(args.arch, args.profile, epochs=epochs, max_train=args.max_train,
                                    device="cpu", overrides={"positions": positions}), dataset_dir,
                        run_dirs[positions])
        print(f"{positions}: best epoch {metrics['best_epoch']}, test R^2 {metrics['r2']:.3f} (train's evaluation)")
    test = read_split(dataset_dir, "test")
    true, noisy = test.labels("log_g"), fixed_noisy(test.flux, test.error)  # the inputs the runs are scored on
    dispersion = float(np.mean(np.diff(test.wave)))
    rows = []
    for shift in args.shifts:
        wave_out = shifted_window(test.wave, shift)
        flux = observe_through(test.wave, noisy, wave_out)
        row = {"shift [pixels]": shift, "shift [A]": round(shift * dispersion, 1)}
        for positions, run_dir in run_dirs.items():
            model, ckpt = runs.load_model(run_dir)
            if positions == "wavelength":
                model.set_wavelength(wave_out)
            ds = NoisySpectra(flux, np.ones_like(flux), np.zeros(len(flux)), noise="fixed", alpha=0.0)
            scores = regression_metrics(true, predict_label(model, ckpt, ds, "cpu")[0])
            row |= {f"R2 {positions}": scores["r2"], f"MAE {positions} [dex]": scores["mae"]}
        rows.append(row)
        print(f"shift {shift:+d} pixels: R^2 learned {row['R2 learned']:.3f}, wavelength {row['R2 wavelength']:.3f}",
              flush=True)
    table = pd.DataFrame(rows).set_index("shift [pixels]")
    print(f"\n{args.arch}, {args.profile} profile, {args.max_train} training spectra, {len(true)} test spectra:")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
