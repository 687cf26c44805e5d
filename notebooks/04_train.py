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
from specvit_core.metrics import COVERAGE_LEVELS, metrics_by_stellar_type, regression_metrics, reliability_curve
from specvit_core.report import PLATEAU_R2, profile_banner, rounded
from specvit_core.simulate import ensure_dataset
from specvit_core.train import TrainConfig, train
from specvit_core.uncertainty import MC_DRAWS, calibration_table, mc_noise_predictions

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
# ## 4.6 Predictive uncertainty
#
# The paper gives one number per star (section 3.7). Two uncertainties can be set beside it
# (`specvit_core.uncertainty`):
#
# - a **Gaussian NLL head**: the network predicts a mean and a log-variance of log g per star and trains on the
#   Gaussian negative log-likelihood (`specvit train --loss gaussian_nll`, as astroNN and SpectraFM do) instead of
#   Table 1's loss; its sigma is the scatter it expects for the one noisy spectrum it sees;
# - **Monte-Carlo noise marginalization**: every test star is predicted again under K realizations of the noise of
#   eq. 3, seeded apart from the test split's fixed realization (seed 42); the spread of these predictions is how
#   far the observational noise alone moves the estimate, the dispersion that eq. 15 averages over.
#
# The total sigma adds the two in quadrature (the standard deviation of the mixture of the K Gaussian predictions).
# Calibrated sigmas put 68.3% of the residuals inside +-1 sigma and 95.4% inside +-2 sigma, and their RMS (the
# sharpness) equals the RMSE. The run is ResNet-18, the architecture that leaves the constant-prediction plateau at
# the `quick` profile, trained (or reused) in `runs/<profile>/uncertainty/resnet18_1d_gaussian_nll/` with the
# profile's settings; K per profile is `specvit_core.uncertainty.MC_DRAWS` (small at `smoke`, to stay fast).

# %%
nll_arch = "resnet18_1d"
nll_dir = runs_dir(profile) / "uncertainty" / f"{nll_arch}_gaussian_nll"
nll_metrics = train(TrainConfig(arch=nll_arch, profile=profile, epochs=epochs, loss="gaussian_nll"), dataset, nll_dir)
nll_pred = runs.read_predictions(nll_dir)  # the fixed test noise (seed 42): pred and the head's pred_sigma
mc = mc_noise_predictions(nll_dir, "test", MC_DRAWS[profile])
sigmas = {"NLL head": nll_pred.pred_sigma.to_numpy(), "MC spread": mc.spread, "total": mc.sigma_total}
point = pd.DataFrame({"fixed noise (seed 42)": regression_metrics(nll_pred.true, nll_pred.pred),
                      f"mean over {len(mc.seeds)} draws": regression_metrics(mc.true, mc.mean)}).T
display(Markdown(
    f"**{nll_arch} with the Gaussian NLL head at `{profile}`** (test R² {nll_metrics['r2']:.3f}, best epoch "
    f"{nll_metrics['best_epoch']}; {len(mc.seeds)} noise draws). "
    + ("Small-profile results: a demonstration of the method, not the paper's numbers." if profile != "paper" else "")
    + (f" **The run has not left the constant-prediction plateau (R² < {PLATEAU_R2})**: its sigmas describe a "
       "constant prediction." if nll_metrics["r2"] < PLATEAU_R2 else "")))
display(rounded(point[["n", "r2", "mae", "rmse", "sigma_robust", "bias"]]))

# %% [markdown]
# The point estimates above: the prediction for the test spectra as observed (one noise realization) and the mean
# over the noise draws, which only a simulation can give. Below, the calibration of the three sigmas as
# uncertainties of the observed prediction: the head's sigma for that spectrum, the spread and the total from the
# draws. Coverage is the observed fraction of residuals inside the +-1 sigma (nominal 0.683) and +-2 sigma (0.954)
# intervals; the sharpness (RMS sigma) and the median sigma stand beside the residual scatter, RMSE and
# sigma_robust (dex).

# %%
calibration = calibration_table(nll_pred.true, nll_pred.pred, sigmas)
display(rounded(calibration))
nominal = COVERAGE_LEVELS["coverage_68"]
tolerance = 2 * np.sqrt(nominal * (1 - nominal) / len(nll_pred))  # 2 binomial standard errors of calibrated sigmas
display(Markdown("; ".join(
    f"{name}: {row.coverage_68:.1%} inside +-1 sigma and {row.coverage_95:.1%} inside +-2 sigma ("
    + ("too narrow" if row.coverage_68 < nominal - tolerance else "too wide" if row.coverage_68 > nominal + tolerance
       else "calibrated within 2 binomial s.e.") + " at 68.3%)" for name, row in calibration.iterrows()) + "."))

# %% [markdown]
# **Reliability diagram.** Observed against nominal coverage of the central intervals from 5% to 95%: on the
# diagonal the sigmas are calibrated, below it they are too small (overconfident), above it too large. The grey
# band is the binomial scatter (+-2 standard errors) of calibrated sigmas on this many test stars. Right: the
# sigmas against the SNR, with the absolute residuals of the observed prediction in grey.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
for (name, sigma), style in zip(sigmas.items(), ("o-", "s-", "x--")):
    curve = reliability_curve(nll_pred.true, nll_pred.pred, sigma)
    axes[0].plot(curve.expected, curve.observed, style, ms=4, label=name)
axes[0].fill_between(curve.expected, curve.expected - 2 * curve.binomial_se, curve.expected + 2 * curve.binomial_se,
                     color="0.85", label="calibrated +-2 s.e.")
axes[0].plot([0, 1], [0, 1], "k--", lw=1)
axes[0].set(xlabel="nominal coverage", ylabel="observed coverage", xlim=(0, 1), ylim=(0, 1), aspect="equal",
            title=f"{nll_arch}, Gaussian NLL head ({profile})")
axes[0].legend(fontsize=8)
axes[1].scatter(nll_pred.snr, np.abs(nll_pred.pred - nll_pred.true), s=4, color="0.75", label="|residual|")
for (name, sigma), marker in zip(sigmas.items(), ("o", "s", "x")):
    axes[1].scatter(nll_pred.snr, sigma, s=6, marker=marker, alpha=0.6, label=name)
axes[1].set(xscale="log", yscale="log", xlabel="median per-pixel SNR", ylabel="sigma or |residual| [dex]")
axes[1].legend(fontsize=8, markerscale=3)
plt.tight_layout()

# %% [markdown]
# ## About
#
# The engine is `specvit_core/train.py`; the run folder holds `config.json`, `history.csv`, `last.pt`, `best.pt`,
# `test_predictions.csv` (with `pred_sigma` for a run with the Gaussian NLL head) and `metrics.json`; Monte-Carlo
# noise marginalization and the calibration table are in `specvit_core/uncertainty.py`, the coverage, reliability
# and sharpness metrics in `specvit_core/metrics.py`. Checkpoints load with `torch.load(..., weights_only=True)`.
# On a GPU, mixed precision and DataLoader workers are switched on automatically; several GPUs:
# `torchrun --nproc_per_node=K -m specvit_core.train --arch convstem_lstm --profile paper`.
