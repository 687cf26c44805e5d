# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Verification: no leak, no silent wrong number, nothing lost
#
# **Learning goals.** What the paper's appendices D and K promise about the data, and how this supplement checks
# it on the data it actually used: a dataset is its manifest (files, row counts, SHA-256, seeds, grid identity);
# the train, validation and test spectra are disjoint; the test split is never read while a model is fitted; a run
# remembers the data it was evaluated on; R² does not depend on a linear normalization of the labels; the same
# profile and seed give the same numbers; and bad input is refused with a message that names the file, the field,
# the rows and the rule.
#
# The same checks run from the shell: `specvit verify --profile quick` (add `--json` for machines, `--runs
# runs/quick` to check the runs). Training and the baselines run the cheap part of them before they read data.

# %% tags=["parameters"]
import os

profile = os.environ.get("SPECVIT_PROFILE", "quick")  # smoke | quick | cpu | paper

# %%
import tempfile

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from specvit_core import metrics, runs, simulate
from specvit_core.baselines import run_baselines
from specvit_core.config import runs_dir
from specvit_core.data import LabelScaler, read_manifest, read_split
from specvit_core.refusals import refusal_table
from specvit_core.report import profile_banner
from specvit_core.spectra import load_grid
from specvit_core.train import TrainConfig, train
from specvit_core.verify import verify_dataset, verify_runs

display(Markdown(profile_banner(profile)))
pd.set_option("display.max_colwidth", 160)

# %% [markdown]
# ## 8.1 The data contract of the profile's dataset (appendix K)
#
# Every check of `specvit verify` on the dataset chapter 1 made: the manifest, files not listed in it (a shard of an
# earlier generation would be read as training data), row counts and split attributes, each file's SHA-256, and
# the content hash of every spectrum (labels and clean flux), which must not repeat within or across splits.

# %%
dataset = simulate.ensure_dataset(profile)
report = verify_dataset(dataset)
display(pd.DataFrame(report.to_dict()["findings"]))
print("verdict:", "the contract holds" if report.ok else f"{len(report.errors)} violation(s)")

# %% [markdown]
# ## 8.2 Runs and the data they were evaluated on
#
# Each run records the SHA-256 of its dataset's manifest; a run whose dataset was regenerated since is reported
# here, and training refuses to evaluate old weights on new data.

# %%
run_report = verify_runs(runs_dir(profile))
display(pd.DataFrame(run_report.to_dict()["findings"]))

# %% [markdown]
# ## 8.3 R² does not depend on a linear normalization of the labels (appendix D)
#
# The networks predict z-scored labels y' = (y - μ)/σ with the training set's μ and σ. R² is invariant under any
# affine map y -> a y + b applied to labels and predictions alike, while MAE scales with |a|. Shown on Ridge's test
# predictions (chapter 3's run, fitted here if missing).

# %%
run_baselines(profile, ("ridge",), dataset_dir=dataset, progress=False)
pred = runs.read_predictions(runs_dir(profile) / "ridge")
scaler = LabelScaler().fit(read_split(dataset, "train").labels())
maps = {"dex": (1.0, 0.0), "z-score (training μ, σ)": (1 / scaler.std, -scaler.mean / scaler.std),
        "a = -3.7, b = 12": (-3.7, 12.0)}
invariance = pd.DataFrame({name: {"R²": metrics.r2(a * pred.true + b, a * pred.pred + b),
                                  "MAE": metrics.mae(a * pred.true + b, a * pred.pred + b)}
                           for name, (a, b) in maps.items()}).T
invariance["R² - R²(dex)"] = invariance["R²"] - invariance.loc["dex", "R²"]
display(invariance)

# %% [markdown]
# ## 8.4 Reproducibility
#
# The same architecture, profile and seed trained twice from scratch into two folders (a small run: 256 spectra,
# one epoch) must give identical metrics on the CPU: data order and noise depend only on (seed, epoch, index).

# %%
config = TrainConfig(arch="deep_cnn", profile=profile, size="smoke", epochs=1, max_train=256, batch_size=32,
                     device="cpu")
with tempfile.TemporaryDirectory() as work:
    twice = pd.DataFrame({name: train(config, dataset, f"{work}/{name}", resume=False) for name in ("first", "second")})
display(twice.loc[["n", "r2", "mae", "sigma_robust", "bias", "best_epoch"]])
same = twice.loc[["r2", "mae", "sigma_robust", "bias"], "first"].equals(twice.loc[["r2", "mae", "sigma_robust",
                                                                                   "bias"], "second"])
print("identical metrics:", same)

# %% [markdown]
# ## 8.5 Bad input and what the user sees
#
# Each case damages a fresh copy of the profile's dataset the way it happens in practice and calls the package as a
# user would. "accepted" in the exception column would mean the package let the case through.

# %%
grid = load_grid(read_manifest(dataset)["config"]["grid"])
display(refusal_table(dataset, grid))

# %% [markdown]
# ## About
#
# Code: `specvit_core/verify.py` (the contract, `specvit verify`), `specvit_core/refusals.py` (the cases above),
# `specvit_core/data.py` (value checks when a split is read, the test-split lock), `specvit_core/simulate.py`
# (whole-folder overwrite, the writer's lock). Tests: `tests/test_verify.py`, `tests/test_refusals.py`,
# `tests/test_data.py`, `tests/test_simulate.py`.
