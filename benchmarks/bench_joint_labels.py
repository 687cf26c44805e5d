"""Study (not a test): the effect on log g of predicting T_eff and [M/H] with it (the paper's first limitation).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_joint_labels.py --profile quick --arch resnet18_1d \
        --max-train 3000 --epochs 8

The same architecture is trained twice on the profile's dataset, with the same seed, spectra, noise, schedule and
model size: on log g alone, and on (log g, T_eff, [M/H]) jointly, log g first (the primary label, which selects the
checkpoint; each label z-scored on its own, the loss averaged over the three). Early stopping is off (patience =
epochs) so that both runs see the same number of epochs; each keeps its best epoch by validation log g MAE. The runs
go to ``runs/<profile>/joint_label_study/<arch>_<labels>_n<max_train>_e<epochs>_s<seed>/`` (a finished one is
reused). The script prints the test log g R^2 and MAE of both runs and the T_eff and [M/H] R^2 and MAE of the joint
run. One seed and a small training set: a demonstration of the option, not a measurement of the paper's setting.
"""
import argparse

import pandas as pd

from specvit_core import runs
from specvit_core.config import runs_dir
from specvit_core.simulate import ensure_dataset
from specvit_core.train import TrainConfig, train

JOINT = ("log_g", "T_eff", "M_H")
LABEL_SETS = {"log g alone": ("log_g",), "joint (log g, T_eff, [M/H])": JOINT}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="profile (default: %(default)s)")
    parser.add_argument("--arch", default="resnet18_1d", help="architecture (default: %(default)s)")
    parser.add_argument("--max-train", type=int, default=3000, help="training spectra (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of each run (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="training seed (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda (default: %(default)s)")
    args = parser.parse_args()
    dataset_dir = ensure_dataset(args.profile)
    study = runs_dir(args.profile) / "joint_label_study"
    rows = {}
    for name, labels in LABEL_SETS.items():
        run_dir = study / f"{args.arch}_{'-'.join(labels)}_n{args.max_train}_e{args.epochs}_s{args.seed}"
        config = TrainConfig(args.arch, args.profile, epochs=args.epochs, patience=args.epochs, seed=args.seed,
                             max_train=args.max_train, label=labels, device=args.device)
        metrics = train(config, dataset_dir, run_dir)
        row = {"log g R2": metrics["r2"], "log g MAE [dex]": metrics["mae"]}
        for label, unit in (("T_eff", "K"), ("M_H", "dex")):
            row |= {f"{label} R2": metrics.get(f"r2_{label}"), f"{label} MAE [{unit}]": metrics.get(f"mae_{label}")}
        rows[name] = row | {"best epoch": metrics["best_epoch"],
                            "train time [s]": runs.read_history(run_dir)["time"].sum()}
        print(f"{name}: test log g R^2 {metrics['r2']:.4f}, MAE {metrics['mae']:.4f} dex", flush=True)
    table = pd.DataFrame.from_dict(rows, orient="index")
    print(f"\n{args.arch}, {args.profile} profile, {args.max_train} training spectra, {args.epochs} epochs, seed "
          f"{args.seed}, {metrics['n']} test spectra (one seed: a demonstration):")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
