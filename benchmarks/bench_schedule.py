"""Study (not a test): learning-rate schedules at a small profile, to leave the R^2 ~ 0 plateau.

    .venv/bin/python benchmarks/bench_schedule.py --profile quick --archs specvit bilstm \
        --settings 1:0 3:1 10:1

Each setting is ``LR_SCALE:WARMUP_EPOCHS``: the peak learning rate over Table 1's value for the family, and the
epochs of linear warm-up before the cosine decay (``1:0`` is the paper's schedule). Every run trains on the
profile's dataset (made when missing) into ``runs/<profile>/schedule_study/<arch>_lr<scale>_w<warmup>[_p<patience>]/`` and is
reused when it exists; the script prints validation R^2 per epoch and the test metrics of the best checkpoint.
"""
import argparse

import pandas as pd

from specvit_core.benchmark import train_runs
from specvit_core.config import runs_dir
from specvit_core.models import build_model
from specvit_core.simulate import ensure_dataset
from specvit_core.train import FAMILY_DEFAULTS, TrainConfig


def setting(text: str) -> tuple[float, float]:
    """``"3:1"`` -> (3.0, 1.0)."""
    scale, warmup = text.split(":")
    return float(scale), float(warmup)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="profile (default: %(default)s)")
    parser.add_argument("--archs", nargs="+", default=["specvit"], help="architectures (default: %(default)s)")
    parser.add_argument("--settings", nargs="+", type=setting, default=[(1.0, 0.0), (3.0, 1.0), (10.0, 1.0)],
                        help="LR_SCALE:WARMUP_EPOCHS pairs (default: 1:0 3:1 10:1)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's)")
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience (default: the profile's; set it to the epochs to see the whole "
                             "schedule)")
    args = parser.parse_args()
    dataset_dir = ensure_dataset(args.profile)
    configs = {}
    for arch in args.archs:
        table1_lr = FAMILY_DEFAULTS[build_model(arch, "smoke").config["family"]]["lr"]
        for scale, warmup in args.settings:
            name = f"{arch}_lr{scale:g}_w{warmup:g}" + (f"_p{args.patience}" if args.patience else "")
            configs[name] = TrainConfig(arch=arch, profile=args.profile, lr=table1_lr * scale, warmup_epochs=warmup,
                                        epochs=args.epochs, patience=args.patience)
    metrics = train_runs(configs, dataset_dir, args.profile, root=runs_dir(args.profile) / "schedule_study")
    curves = pd.DataFrame({name: pd.read_csv(f"{row.run_dir}/history.csv").set_index("epoch").val_r2
                           for name, row in metrics.iterrows()})
    pd.set_option("display.width", 200)
    print("validation R^2 per epoch\n", curves.round(3).to_string())
    print("\ntest metrics of the best checkpoint\n", metrics[["r2", "mae", "sigma_robust"]].round(3).to_string())


if __name__ == "__main__":
    main()
