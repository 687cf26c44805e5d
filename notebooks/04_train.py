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
# # 4. Training one architecture
#
# **Learning goals.** How the paper trains its networks (section 3.7, Table 1, Figure 5): z-scored log g labels,
# fresh heteroscedastic noise drawn from the stored sigma every epoch (eq. 3), AdamW with a cosine schedule,
# gradient clipping, the best checkpoint by validation MAE, and early stopping; then what the trained model gets
# right and wrong on the test split.
#
# Re-run for another model with `papermill notebooks/04_train.ipynb out.ipynb -p arch bilstm`, or from the shell with
# `specvit train --arch bilstm --profile quick` (the same run folder). A finished run is reused, an interrupted one
# resumes from its last checkpoint, and a GPU is used when present.

# %% tags=["parameters"]
import os

profile = os.environ.get("SPECVIT_PROFILE", "quick")  # smoke | quick | cpu | paper
arch = "convstem_lstm"  # any name of `specvit models`
epochs = None  # None: the profile's epochs

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from specvit_core import runs
from specvit_core.config import runs_dir
from specvit_core.metrics import metrics_by_stellar_type
from specvit_core.report import profile_banner, rounded
from specvit_core.simulate import ensure_dataset
from specvit_core.train import TrainConfig, train

display(Markdown(profile_banner(profile)))

# %% [markdown]
# ## 4.1 The run
#
# The dataset of the profile (made by chapter 1, or now) and the run folder `runs/<profile>/<arch>/` with its
# configuration, history, checkpoints, test predictions and metrics.

# %%
dataset = ensure_dataset(profile)
run_dir = runs_dir(profile) / arch
config = TrainConfig(arch=arch, profile=profile, epochs=epochs)
metrics = train(config, dataset, run_dir)
run_config = runs.read_config(run_dir)
display(pd.Series(run_config, dtype=object).to_frame("value"))

# %% [markdown]
# ## 4.2 Training curves (Figure 5)
#
# Training and validation MAE, validation R^2 and the loss by epoch; the dashed line marks the epoch whose
# checkpoint was kept (best validation MAE).

# %%
history = runs.read_history(run_dir)
best = int(metrics["best_epoch"])
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
axes[0].plot(history.epoch, history.train_mae, label="train")
axes[0].plot(history.epoch, history.val_mae, label="validation")
axes[0].set(ylabel="MAE [dex]")
axes[1].plot(history.epoch, history.val_r2, color="tab:green")
axes[1].set(ylabel="validation $R^2$")
axes[2].plot(history.epoch, history.train_loss, label="train")
axes[2].plot(history.epoch, history.val_loss, label="validation")
axes[2].set(ylabel=f"loss ({run_config['loss']})")
for ax in axes:
    ax.axvline(best, ls="--", color="0.5")
    ax.set_xlabel("epoch")
axes[0].legend()
plt.tight_layout()

# %% [markdown]
# ## 4.3 Test metrics
#
# On the test split with its one fixed noise realization (seed 42): R^2, MAE, robust scatter
# sigma_robust = 1.4826 MAD of the residuals, and bias.
#
# At the `smoke` and `quick` profiles a network trained with fresh noise every epoch is far from converged: the
# paper trains 2 x 10^5 spectra for over a hundred epochs, while `quick` sees 6,000 spectra for 12 epochs, so the
# R^2 here can sit well below the classical baselines of chapter 3. Use the `cpu` profile on a workstation, or
# `paper` on a GPU, to approach the paper's numbers.

# %%
display(pd.Series(metrics).to_frame(arch))

# %% [markdown]
# ## 4.4 Predicted against true log g
#
# Each test spectrum coloured by its SNR; the right panel shows the residuals against true log g, where the
# regression toward the mean at the edges of the label range is visible.

# %%
pred = runs.read_predictions(run_dir)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
sc = axes[0].scatter(pred.true, pred.pred, c=np.log10(pred.snr), s=6, cmap="viridis")
axes[0].plot([1, 5], [1, 5], "k--", lw=1)
axes[0].set(xlabel="true log g", ylabel="predicted log g", aspect="equal")
plt.colorbar(sc, ax=axes[0], label="log10 SNR")
axes[1].scatter(pred.true, pred.pred - pred.true, s=6, alpha=0.5)
axes[1].axhline(0, color="k", lw=1)
axes[1].set(xlabel="true log g", ylabel="residual [dex]")
plt.tight_layout()

# %% [markdown]
# ## 4.5 Residuals by SNR and by stellar type
#
# The scatter grows as the SNR falls.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(pred.snr, pred.pred - pred.true, s=6, alpha=0.5)
ax.set(xscale="log", xlabel="median per-pixel SNR", ylabel="residual [dex]")
ax.axhline(0, color="k", lw=1)
plt.tight_layout()

# %% [markdown]
# By stellar type (giants log g < 2.5, subgiants 2.5-4, dwarfs > 4): the errors, MAE and σ_robust (dex), are the
# numbers to compare between the types; the last two columns are the spread of the true labels in each type and the
# R² it gives.

# %%
by_type = metrics_by_stellar_type(pred.true.to_numpy(), pred.pred.to_numpy())
display(rounded(by_type[["n", "mae", "sigma_robust", "bias", "rmse", "label_std", "r2"]]))
glue("giants_label_std", rounded(by_type.loc["giants", "label_std"]), display=False)
glue("all_label_std", rounded(by_type.loc["all", "label_std"]), display=False)
glue("giants_rmse", rounded(by_type.loc["giants", "rmse"]), display=False)
glue("giants_r2", rounded(by_type.loc["giants", "r2"]), display=False)
glue("all_r2", rounded(by_type.loc["all", "r2"]), display=False)

# %% [markdown]
# R² within a type is not comparable with the overall R². It is 1 - (RMSE / σ_label)², with σ_label the spread of
# the true log g *inside* the type: {glue:text}`giants_label_std:.2f` dex for the giants, against
# {glue:text}`all_label_std:.2f` dex for the whole test set. The same errors therefore give a far lower R² in a
# narrow type: the giants' RMSE of {glue:text}`giants_rmse:.2f` dex gives R² = {glue:text}`giants_r2:.2f` there,
# next to {glue:text}`all_r2:.2f` overall. A negative R² in a type means that its errors exceed the spread of its
# own labels (within the type, its mean would be a better guess); whether the model does better or worse on a type
# is read from its MAE and σ_robust.

# %% [markdown]
# ## About
#
# The engine is `specvit_core/train.py`; the run folder holds `config.json`, `history.csv`, `last.pt`, `best.pt`,
# `test_predictions.csv` and `metrics.json`. Checkpoints load with `torch.load(..., weights_only=True)`. On a GPU,
# mixed precision and DataLoader workers are switched on automatically; several GPUs: `torchrun --nproc_per_node=K
# -m specvit_core.train --arch convstem_lstm --profile paper`.
