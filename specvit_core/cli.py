"""The ``specvit`` command: simulate, verify, models, train, baselines, benchmark, preprocess, predict, book."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import DEFAULT_PROFILE, PROFILES, data_dir


def _simulate(args: argparse.Namespace) -> int:
    from .simulate import SimulationConfig, generate_dataset

    overrides = {k: v for k, v in dict(n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                                       n_shards=args.shards, seed=args.seed, grid=args.grid,
                                       compression=args.compression).items() if v is not None}
    if args.mag:
        overrides["mag_range"] = tuple(args.mag)
    config = SimulationConfig.from_profile(args.profile, **overrides)
    out = args.out or data_dir(args.profile)
    manifest = generate_dataset(out, config, overwrite=args.overwrite, workers=args.workers)
    print(f"wrote {sum(f['n'] for f in manifest['files'].values())} spectra to {out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .verify import verify_dataset, verify_runs

    report = verify_dataset(args.data or data_dir(args.profile), hashes=not args.no_hashes)
    if args.runs:
        report.findings += verify_runs(args.runs).findings
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def _models(args: argparse.Namespace) -> int:
    from .models import describe_models

    rows = describe_models(args.size)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['name']:15s} {row['family']:12s} {row['n_params']:>12,d}")
    return 0


def _grid(args: argparse.Namespace) -> int:
    from .spectra import load_grid
    from .spectra.embedded import cache_file, covered_instruments, embedded_grid
    from .spectra.synthesis import SynthesisSettings

    if args.source == "embedded":  # one synthesis makes the grid of every instrument (MR, Gaia RVS)
        grids = {name: embedded_grid(instrument=name) for name in covered_instruments(SynthesisSettings())}
    else:
        grids = {"mr": load_grid(args.source)}
    for name, grid in grids.items():
        cached = f"; cached as {cache_file(instrument=name)}" if grid.source == "embedded" else ""
        print(f"{name} template grid from {grid.source}: " + ", ".join(
            f"{a} {lo:g}..{hi:g} ({len(grid.axes[a])} nodes)" for a, (lo, hi) in grid.bounds.items())
            + f"; {grid.wave.size} pixels{cached}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import runs_dir
    from .simulate import ensure_dataset
    from .train import TrainConfig, train

    config = TrainConfig(arch=args.arch, profile=args.profile, epochs=args.epochs, patience=args.patience,
                         batch_size=args.batch_size, loss=args.loss, lr=args.lr, warmup_epochs=args.warmup_epochs,
                         seed=args.seed, max_train=args.max_train, max_steps=args.max_steps, device=args.device,
                         init_from=args.init_from, num_workers=args.num_workers, precision=args.precision,
                         **({"label": tuple(args.labels)} if args.labels else {}))
    dataset = args.data or ensure_dataset(args.profile)  # the profile's dataset, simulated when missing
    metrics = train(config, dataset, (args.runs or runs_dir(args.profile)) / args.arch, resume=not args.no_resume)
    if metrics:  # rank 0 under torchrun
        print(json.dumps(metrics, indent=2))
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from .baselines import run_baselines
    from .simulate import ensure_dataset

    dataset = args.data or ensure_dataset(args.profile)
    table = run_baselines(args.profile, tuple(args.only), dataset_dir=dataset, runs_root=args.runs,
                          recompute=args.recompute)
    print(table.to_string())
    return 0


BENCHMARK_EXPERIMENTS = ("main", "cross-config", "scaling", "seeds", "patch-sizes", "tokenizers", "high-snr")


def _benchmark(args: argparse.Namespace) -> int:
    from . import benchmark
    from .simulate import ensure_dataset

    plan = benchmark.get_plan(args.profile)
    dataset = ensure_dataset(args.profile)
    experiments = {
        "main": lambda: benchmark.main_runs(args.profile, args.archs or plan.main_archs, dataset),
        "cross-config": lambda: benchmark.cross_configuration_runs(args.profile, plan, dataset),
        "scaling": lambda: benchmark.scaling_runs(args.profile, plan, dataset),
        "seeds": lambda: benchmark.seed_runs(args.profile, "convstem_lstm", plan, dataset),
        "patch-sizes": lambda: benchmark.patch_size_runs(args.profile, plan, dataset),
        "tokenizers": lambda: benchmark.tokenizer_stability(args.profile, plan, dataset)[1],
        "high-snr": lambda: benchmark.high_snr_runs(args.profile, plan, dataset),
    }
    for name in args.experiments:
        table = experiments[name]()
        shown = [c for c in ("model", "architecture", "configuration", "training", "tokenizer", "n_train", "status",
                             "runs", "finished", "r2", "mae", "sigma_robust") if c in table.columns]
        print(f"\n== {name} ==\n{table[shown].to_string()}", flush=True)
    return 0


def _loader_options(args: argparse.Namespace) -> dict:
    """The survey loader's options given on the command line (generic tables and DESI's HDF5 need them)."""
    options = {}
    if args.survey == "table":
        if args.medium is None or args.frame is None:
            raise ValueError("--survey table needs --medium {air,vacuum} and --frame {rest,observed}: a generic "
                             "table does not say in which medium and frame its wavelengths are")
        options.update(medium=args.medium, rest_frame=args.frame == "rest")
    if args.wavelength is not None:
        options["wavelength"] = args.wavelength
    return options


def _preprocess(args: argparse.Namespace) -> int:
    from .transfer import survey_dataset

    manifest = survey_dataset(args.survey, args.spectra, args.out, labels_path=args.labels,
                              labels_survey=args.labels_survey, overwrite=args.overwrite, **_loader_options(args))
    counts = ", ".join(f"{k} {v}" for k, v in manifest.get("counts", {}).items())
    splits = ", ".join(f"{f['split']} {f['n']}" for f in manifest["files"].values())
    print(f"wrote {args.out} ({splits}; {counts})")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from . import files
    from .transfer import predict_dataset, predict_files

    if (args.data is None) == (not args.spectra):
        raise ValueError("give either --data DIR (a dataset folder) or --spectra PATH... with --survey")
    if args.data is not None:
        table = predict_dataset(args.run, args.data, device=args.device)
    else:
        if args.survey is None:
            raise ValueError("--spectra needs --survey to say which loader reads the files")
        table = predict_files(args.run, args.survey, args.spectra, labels_path=args.labels,
                              labels_survey=args.labels_survey, device=args.device, **_loader_options(args))
    files.write_text(args.out, table.to_csv(index=False))
    print(f"wrote {len(table)} predictions to {args.out}")
    return 0


def _add_survey_options(parser, required: bool) -> None:
    """The options that say how to read survey files (shared by preprocess and predict)."""
    from .surveys import SURVEYS

    parser.add_argument("--survey", required=required, choices=SURVEYS,
                        help="which archive format the files are in: " + ", ".join(SURVEYS))
    parser.add_argument("--spectra", nargs="+", type=Path, required=required, metavar="PATH",
                        help="the survey's files (apStar/aspcapStar FITS, DESI coadd FITS or appendix-L.1 HDF5, "
                        "Gaia RVS CSV/ECSV/FITS, or a table with targetid, wavelength, flux[, error])")
    parser.add_argument("--labels", type=Path, help="catalogue of labels (allStar FITS, DESI MWS VAC, Gaia table, or "
                        "CSV with targetid, T_eff, log_g, M_H[, vrad]); without it the spectra are unlabelled")
    parser.add_argument("--labels-survey", choices=SURVEYS, help="column convention of --labels (default: --survey)")
    parser.add_argument("--medium", choices=["air", "vacuum"], help="wavelength medium (--survey table only)")
    parser.add_argument("--frame", choices=["rest", "observed"], help="wavelength frame (--survey table only)")
    parser.add_argument("--wavelength", type=Path, help="text file of wavelengths (DESI appendix-L.1 HDF5 without "
                        "its own wavelength dataset)")


def _add_transfer_parsers(sub) -> None:
    pre = sub.add_parser(
        "preprocess", help="turn survey spectra into a dataset (paper appendix L)",
        description="Read survey files as the archive serves them, match a labels catalogue by target id, keep the "
        "labels inside the ranges of appendix L.2, move each spectrum to the rest frame and to air, resample it "
        "onto the 4096-pixel grid (flux 0.5 / error inf where it has no data), mask spikes, estimate its SNR, "
        "median-normalize it, split 80/10/10 with seed 42 and write train_000.h5, val.h5, test.h5 and "
        "manifest.json. Without --labels every spectrum goes to test.h5, for specvit predict.")
    _add_survey_options(pre, required=True)
    pre.add_argument("--out", type=Path, required=True, help="the dataset folder to write")
    pre.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    pre.set_defaults(func=_preprocess)

    pred = sub.add_parser(
        "predict", help="predict log g of survey spectra with a trained run",
        description="Apply a run's best checkpoint to a dataset folder (every split; e.g. from specvit preprocess) "
        "or to survey files preprocessed on the fly, and write a CSV: targetid, <label>_pred for each label of the "
        "run (log_g_pred by default), <label>_pred_sigma (a run trained with --loss gaussian_nll) and the labels "
        "when known.")
    pred.add_argument("--run", type=Path, required=True, help="a run folder with best.pt (e.g. runs/quick/specvit)")
    pred.add_argument("--data", type=Path, help="a dataset folder")
    _add_survey_options(pred, required=False)
    pred.add_argument("--out", type=Path, default=Path("predictions.csv"), help="CSV to write (default: %(default)s)")
    pred.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    pred.set_defaults(func=_predict)


def _book(args: argparse.Namespace) -> int:
    from .book import build_book

    build_book(args.profile, only=args.only, execute=not args.no_execute, strict=args.strict)
    return 0


def _add_train_parser(sub, profiles: list[str]) -> None:
    from .data import LABEL_COLUMNS
    from .models import list_models
    from .train import LOSSES

    archs = list_models()
    train = sub.add_parser(
        "train", help="train one architecture on a simulated dataset",
        description="Train one architecture on a simulated dataset and evaluate it on the test split. Loss, "
        "learning rate and weight decay default to the paper's Table 1 for the family; epochs, batch size, patience "
        "and model size to the profile. An interrupted run resumes from its last.pt. Several processes: "
        "torchrun --nproc_per_node=K -m specvit_core.train ARGS.")
    train.add_argument("--arch", required=True, choices=archs, metavar="ARCH", help=f"architecture: {', '.join(archs)}")
    train.add_argument("--profile", default=DEFAULT_PROFILE, choices=profiles, help="profile (default: %(default)s)")
    train.add_argument("--epochs", type=int, help="override the profile's epochs")
    train.add_argument("--patience", type=int, help="override the profile's early-stopping patience (epochs "
                       "without a better validation MAE); raise it with --epochs for models that sit on a plateau first")
    train.add_argument("--batch-size", type=int, help="override the profile's batch size")
    train.add_argument("--loss", choices=list(LOSSES), help="training loss (default: Table 1's for the family); "
                       "gaussian_nll adds a Gaussian NLL head (mean and log-variance) and writes pred_sigma")
    train.add_argument("--lr", type=float, help="peak learning rate (default: Table 1's times the profile's lr_scale)")
    train.add_argument("--warmup-epochs", type=float,
                       help="linear learning-rate warm-up before the cosine decay (default: the profile's)")
    train.add_argument("--labels", nargs="+", choices=LABEL_COLUMNS, metavar="LABEL",
                       help=f"labels to predict jointly ({', '.join(LABEL_COLUMNS)}), the primary one first: it "
                       "selects the checkpoint and fills the true/pred columns; the others are written as "
                       "true_<label>/pred_<label> (default: log_g alone)")
    train.add_argument("--seed", type=int, default=42, help="training seed (default: %(default)s)")
    train.add_argument("--max-train", type=int, help="use only the first N training spectra")
    train.add_argument("--max-steps", type=int, help="pause (resumable: run the same command again) after this many "
                                                     "optimizer steps, e.g. to fit a cluster's time limit")
    train.add_argument("--init-from", help="fine-tune: start from this checkpoint (best.pt of a run of the same "
                       "architecture and size) and its label scaling")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    train.add_argument("--num-workers", type=int, help="DataLoader workers (default: 0 on CPU, <= 8 on CUDA)")
    train.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                       help="forward-pass arithmetic: auto = mixed precision on CUDA; on a CPU with AMX/AVX512-BF16, "
                       "bf16 autocast for the recurrent and CNN networks and fp32 for the others; bf16 = bf16 "
                       "autocast, also on CPU; fp32 = full precision (default: %(default)s)")
    train.add_argument("--data", type=Path, help="dataset folder (default: data/<profile>, simulated if missing)")
    train.add_argument("--runs", type=Path, help="runs folder; the run goes to RUNS/<arch> (default: runs/<profile>)")
    train.add_argument("--no-resume", action="store_true", help="start afresh even if RUNS/<arch>/last.pt exists")
    train.set_defaults(func=_train)


def _add_verify_parser(sub, profiles: list[str]) -> None:
    ver = sub.add_parser(
        "verify", help="check a dataset folder against its manifest (the data contract)",
        description="Check a dataset folder against its manifest.json (paper appendix K): no unlisted HDF5 file "
        "(e.g. a stale train shard of an earlier generation), no listed file missing, row counts and split "
        "attributes as listed, SHA-256 as listed (cached in .verify_cache.json), and no spectrum repeated within "
        "or across train/val/test. Exit status 0 when the contract holds, 1 when it does not.")
    where = ver.add_mutually_exclusive_group()
    where.add_argument("--profile", default=DEFAULT_PROFILE, choices=profiles,
                       help="verify the profile's dataset, data/<profile> (default: %(default)s)")
    where.add_argument("--data", type=Path, help="verify this dataset folder")
    ver.add_argument("--no-hashes", action="store_true", help="skip the SHA-256 comparison")
    ver.add_argument("--runs", type=Path, help="also check that the evaluated runs under RUNS still point at "
                     "the data they recorded (their dataset's manifest SHA-256)")
    ver.add_argument("--json", action="store_true", help="print the report as JSON")
    ver.set_defaults(func=_verify)


def build_parser() -> argparse.ArgumentParser:
    """The ``specvit`` argument parser: subcommands simulate, verify, grid, models, train, preprocess, predict,
    baselines, benchmark, book.

    Returns
    -------
    argparse.ArgumentParser
        Each subcommand sets ``func``, the handler that takes the parsed namespace and returns the exit status.
    """
    parser = argparse.ArgumentParser(prog="specvit", description="SpecViT supplement: simulate PFS MR spectra, "
                                     "list and train the paper's architectures, build the book.")
    sub = parser.add_subparsers(dest="command", required=True)
    profiles = list(PROFILES)

    sim = sub.add_parser("simulate", help="simulate a dataset of PFS MR spectra (HDF5 shards + manifest)",
                         description="Simulate train shards, val and test splits at a profile's sizes.")
    sim.add_argument("--profile", default=DEFAULT_PROFILE, choices=profiles, help="sizes (default: %(default)s)")
    sim.add_argument("--out", help="output folder (default: data/<profile>)")
    sim.add_argument("--n-train", type=int, help="training spectra (overrides the profile)")
    sim.add_argument("--n-val", type=int, help="validation spectra")
    sim.add_argument("--n-test", type=int, help="test spectra")
    sim.add_argument("--shards", type=int, help="number of training shards")
    sim.add_argument("--mag", type=float, nargs=2, metavar=("MIN", "MAX"), help="i-band magnitude range (20.5 22.5)")
    sim.add_argument("--seed", type=int, help="base seed of the dataset")
    sim.add_argument("--grid", help='"embedded" (default) or a folder of BOSZ files')
    sim.add_argument("--compression", choices=["none", "lzf", "gzip"],
                     help="HDF5 compression of flux and error (default none: fastest; gzip is ~37%% smaller)")
    sim.add_argument("--workers", type=int, default=1,
                     help="processes writing files at once, one file each (default: %(default)s); the dataset is "
                          "identical for any number")
    sim.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    sim.set_defaults(func=_simulate)

    _add_verify_parser(sub, profiles)

    grid = sub.add_parser("grid", help="synthesize (or reuse) the embedded template grids",
                          description="Synthesize the LTE templates on the BOSZ axes once for the MR arm and the Gaia "
                                      "RVS (chapter 7), cached in data/cache (~10 min on 2 cores), or read a BOSZ folder.")
    grid.add_argument("--source", default="embedded", help='"embedded" (default) or a folder of BOSZ files')
    grid.set_defaults(func=_grid)

    mod = sub.add_parser("models", help="list the architectures with their parameter counts")
    mod.add_argument("--size", default="paper", help="model size: smoke, quick, cpu, paper (default: %(default)s)")
    mod.add_argument("--json", action="store_true", help="print JSON")
    mod.set_defaults(func=_models)

    _add_train_parser(sub, profiles)
    _add_transfer_parsers(sub)

    base = sub.add_parser("baselines", help="fit LightGBM, Ridge and template fitting on a profile's data",
                          description="Fit the classical baselines on the train/val splits, evaluate on test, and "
                                      "write runs/<profile>/<baseline>/ (reused unless --recompute).")
    base.add_argument("--profile", default=DEFAULT_PROFILE, choices=profiles, help="profile (default: %(default)s)")
    base.add_argument("--only", nargs="+", default=["ridge", "lightgbm", "template"],
                      choices=["ridge", "lightgbm", "template"], help="baselines to run (default: all three)")
    base.add_argument("--data", help="dataset folder (default: data/<profile>, simulated if missing)")
    base.add_argument("--runs", help="runs folder (default: runs/<profile>)")
    base.add_argument("--recompute", action="store_true", help="refit even when a matching run exists")
    base.set_defaults(func=_baselines)

    bench = sub.add_parser(
        "benchmark", help="run the experiments of the benchmark chapter (paper section 5.1)",
        description="Train (or reuse) the runs of chapter 05's experiments at a profile and print their test "
                    "metrics. Main runs go to runs/<profile>/<arch>/, the others to runs/<profile>/benchmark/; "
                    "finished runs are reused, interrupted ones resumed. Sizes: specvit_core.benchmark.PLANS.")
    bench.add_argument("--profile", default=DEFAULT_PROFILE, choices=profiles, help="profile (default: %(default)s)")
    bench.add_argument("--experiments", nargs="+", default=list(BENCHMARK_EXPERIMENTS), choices=BENCHMARK_EXPERIMENTS,
                       metavar="NAME", help=f"experiments to run (default: all): {', '.join(BENCHMARK_EXPERIMENTS)}")
    bench.add_argument("--archs", nargs="+", metavar="ARCH",
                       help="architectures of the main comparison (default: the profile's plan; see specvit models)")
    bench.set_defaults(func=_benchmark)

    book = sub.add_parser("book", help="execute the chapters with papermill and build the Jupyter Book")
    book.add_argument("--profile", default=DEFAULT_PROFILE, choices=profiles, help="profile (default: %(default)s)")
    book.add_argument("--only", nargs="+", help="execute only chapters whose names start with these (e.g. 01)")
    book.add_argument("--no-execute", action="store_true", help="render the already executed chapters")
    book.add_argument("--strict", action="store_true",
                      help="fail on any Sphinx warning (jupyter-book build -W -n --keep-going)")
    book.set_defaults(func=_book)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``specvit`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 1 when ``specvit verify`` found a violation of the data contract, 2 when the
        command failed with a ValueError, FileExistsError, FileNotFoundError, PermissionError or TrainingDiverged
        (the message goes to stderr).

    Raises
    ------
    SystemExit
        From argparse, on invalid arguments (status 2) or ``--help`` (status 0).
    """
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from .train import TrainingDiverged

    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError, TrainingDiverged) as err:
        print(f"specvit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
