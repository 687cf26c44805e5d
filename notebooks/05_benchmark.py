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
# # 5. The architecture benchmark
#
# **Learning goals.** How the paper compares nine architectures and three classical baselines on the same spectra
# (section 5.1): metrics with bootstrap confidence intervals grouped by family (Table 3, Figure 6), prediction
# diagnostics (Figure 7), errors by stellar type (Table 5), inference cost (Table 6), whether the best network beats
# LightGBM beyond the test-set noise (Tables 9 and 18); and the experiments that probe the comparison: swapped
# hyperparameters (Table 12, Figure 8), training-set size (Table 10, Figure 9), seeds (Table 11), patch sizes
# (Table 14), tokenizer stability (Table 15), fine-tuning to brighter stars (Table 4), and where SpecViT's attention
# falls on the spectrum (Figure 10).
#
# Every run is a folder under `runs/<profile>/` that this chapter trains when it is missing and reuses when it is
# there: the main comparison uses the folders of chapter 4 (`runs/<profile>/<arch>/`), the other experiments
# `runs/<profile>/benchmark/`. Re-run at another profile with
# `papermill notebooks/05_benchmark.ipynb out.ipynb -p profile cpu`, or for other architectures with
# `-p archs '["bilstm", "specvit"]'`.

# %% tags=["parameters"]
import os

profile = os.environ.get("SPECVIT_PROFILE", "quick")  # smoke | quick | cpu | paper
archs = None  # architectures to train for the main comparison; None: the profile's plan (all nine from cpu up)
reference = "lightgbm"  # the baseline the best network is tested against (Tables 9 and 18)

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue
from scipy.stats import spearmanr

from specvit_core import benchmark, interactive, metrics, paper, runs, tables
from specvit_core.attention import cls_attention, cls_attention_by_layer, logg_information_by_token
from specvit_core.baselines import run_baselines
from specvit_core.config import get_profile
from specvit_core.data import fixed_noisy, read_manifest, read_split
from specvit_core.report import plateau_warning, profile_banner, rounded
from specvit_core.simulate import ensure_dataset
from specvit_core.spectra import load_grid
from specvit_core.spectra.synthesis import DIAGNOSTIC_LINES

display(Markdown(profile_banner(profile)))
plan = benchmark.get_plan(profile)
dataset = ensure_dataset(profile)
FAMILY_COLORS = {"hybrid": "tab:blue", "recurrent": "tab:orange", "transformer": "tab:green", "cnn": "tab:purple",
                 "GBDT": "0.45", "linear": "0.6", "physics": "0.75"}

# %% [markdown]
# ## 5.1 The runs
#
# The networks train with their Table 1 configuration (loss, learning rate, weight decay by family) and the
# profile's epochs, batch size and model size; the baselines are those of chapter 3. At this profile the plan
# trains the architectures below; runs of any other architecture already in `runs/<profile>/` (from
# `specvit train --arch ...`) join the tables.

# %%
main = benchmark.main_runs(profile, archs or plan.main_archs, dataset)
run_baselines(profile, dataset_dir=dataset)
run_dirs = runs.list_runs(profile)
display(runs.run_summary(run_dirs))

# %% [markdown]
# ## 5.2 Table 3: performance by family
#
# R², MAE and σ_robust = 1.4826 MAD of the residuals on the test split, each with its bootstrap 95% interval
# (B resamples of the test spectra, appendix I). Families are ordered as in the paper, best R² first within each.

# %%
table = tables.comparison_table(run_dirs, n_boot=plan.n_boot)
display(tables.formatted_comparison(table))
networks = table[~table.family.isin(["GBDT", "linear", "physics"])]
best = networks.r2.idxmax()
glue("best_model", best, display=False)
glue("best_r2", rounded(table.loc[best, "r2"]), display=False)
glue("reference_r2", rounded(table.loc[reference, "r2"]), display=False)
glue("best_mae", rounded(table.loc[best, "mae"]), display=False)
glue("best_sigma_robust", rounded(table.loc[best, "sigma_robust"]), display=False)
glue("n_networks", len(networks), display=False)

# %% [markdown]
# The best network here is **{glue:text}`best_model`** with R² = {glue:text}`best_r2:.3f`, against
# {glue:text}`reference_r2:.3f` for LightGBM, out of {glue:text}`n_networks` networks trained at this profile. The
# paper's Table 3 (N = 2 x 10^5, ~4.8M parameters) has ConvStem+LSTM 0.729, BiLSTM 0.728, LSTMFormer 0.718, the pure
# transformers 0.709-0.716, the CNNs 0.640-0.687, LightGBM 0.614, Ridge 0.50 and template fitting 0.415.
#
# Our template fit searches the simulator's own templates, the very grid the spectra were made from: it suffers no
# model mismatch, which is why it can outrank the networks at small profiles, unlike in the paper, where template
# fitting to real-world templates came last (R² 0.415).
#
# ## 5.3 Figure 6: R² by family
#
# Bars with their bootstrap 95% intervals, coloured by family.

# %%
fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1))
y = np.arange(len(table))[::-1]
ax.barh(y, table.r2, color=[FAMILY_COLORS[f] for f in table.family],
        xerr=[table.r2 - table.r2_low, table.r2_high - table.r2], capsize=3)
ax.set_yticks(y, table.index)
ax.set(xlabel="test $R^2$ (log g)", title=f"Figure 6 at profile {profile}")
for family, color in FAMILY_COLORS.items():
    if family in set(table.family):
        ax.barh([], [], color=color, label=family)
ax.legend(loc="lower right", fontsize=8)
plt.tight_layout()

# %% [markdown]
# ## 5.4 Figure 7: predicted against true, and the residuals
#
# The best network and LightGBM coloured by point density (1:1 line dashed), and the residual distributions of the
# best network, LightGBM and Ridge.

# %%
preds = {name: runs.read_predictions(run_dirs[name]) for name in (best, reference, "ridge")}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
for ax, name in zip(axes[:2], (best, reference)):
    p = preds[name]
    ax.hexbin(p.true, p.pred, gridsize=35, extent=(0.8, 5.2, 0.8, 5.2), mincnt=1, cmap="viridis", bins="log")
    ax.plot([0.8, 5.2], [0.8, 5.2], "k--", lw=1)
    ax.set(title=f"{name}: R² = {metrics.r2(p.true, p.pred):.3f}", xlabel="true log g", ylabel="predicted log g",
           xlim=(0.8, 5.2), ylim=(0.8, 5.2))
for name, p in preds.items():
    axes[2].hist(p.pred - p.true, bins=60, range=(-3, 3), histtype="step", lw=1.5,
                 label=f"{name} (MAE = {metrics.mae(p.true, p.pred):.3f})")
axes[2].set(xlabel="predicted - true log g [dex]", ylabel="spectra", title="residuals")
axes[2].legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# ## 5.5 Table 5: MAE by stellar type
#
# Giants (log g < 2.5), subgiants (2.5-4.0) and dwarfs (> 4.0). The paper: SpecViT 0.430 / 0.414 / 0.475,
# LightGBM 0.665 / 0.381 / 0.620, Ridge 0.805 / 0.416 / 0.755.

# %%
type_mae = tables.stellar_type_mae(run_dirs)
display(rounded(type_mae, 3))

# %% [markdown]
# ## 5.6 Table 6: inference cost
#
# Time to predict the test split on this machine: the networks now, with batches of 256 (on the GPU when there is
# one); LightGBM and Ridge as measured when they were fitted (chapter 3, same machine). The paper measured 897
# spectra/s for SpecViT on a V100 and 94,262 and 296,931 spectra/s for LightGBM and Ridge on its CPU.

# %%
cost = tables.inference_cost(run_dirs, dataset)
display(cost.style.format({"params": lambda p: "" if pd.isna(p) else f"{p:,.0f}", "seconds": "{:.3f}",
                           "throughput": "{:,.0f}"}))
glue("catalog_minutes", float(1e6 / cost.loc[best, "throughput"] / 60), display=False)

# %% [markdown]
# At this rate the best network would label a survey catalogue of 10^6 spectra in
# {glue:text}`catalog_minutes:.0f` minutes on this machine (the paper: ~19 minutes on one V100).
#
# ## 5.7 Tables 9 and 18: is the best network better than LightGBM?
#
# The best network's R² with its bootstrap interval and standard error, and the paired bootstrap of the R²
# difference against LightGBM on the same resampled test spectra, with the one-sided p-value (the fraction of
# resamples where the network is not better), beside the paper's Table 9 (SpecViT at N = 10^6; the paper gives no
# paired difference there: "n/a").

# %%
sig = tables.significance(run_dirs, best, reference, n_boot=plan.n_boot)
table9 = {**paper.TABLE9, "model": "specvit", "r2_low": paper.TABLE9["r2_ci"][0], "r2_high": paper.TABLE9["r2_ci"][1]}
display(pd.DataFrame({"this build": pd.Series(sig, dtype=object),
                      "paper (Table 9)": pd.Series({k: table9.get(k, "n/a") for k in sig}, dtype=object)}))
glue("delta_r2", rounded(sig["delta_r2"]), display=False)
glue("delta_r2_low", rounded(sig["delta_r2_low"]), display=False)
glue("delta_r2_high", rounded(sig["delta_r2_high"]), display=False)
glue("p_value", float(sig["p_value"]), display=False)

# %% [markdown]
# ΔR² = {glue:text}`delta_r2:.3f` (95% interval {glue:text}`delta_r2_low:.3f` to {glue:text}`delta_r2_high:.3f`,
# p = {glue:text}`p_value:.3f`).
#
# ## 5.8 Table 12 and Figure 8: swapping hyperparameters
#
# SpecViT trained with the BiLSTM's Table 1 configuration (MSE, lr 3e-4, weight decay 1e-4) and the BiLSTM with
# SpecViT's (L1, lr 1e-4, weight decay 1e-2), next to each with its own. The paper's Table 12 (`paper_r2`): SpecViT
# lost little, the BiLSTM collapsed.

# %%
cross = benchmark.cross_configuration_runs(profile, plan, dataset)
cross = cross.assign(native=cross.configuration.eq("native")).sort_values(["architecture", "native"],
                                                                         ascending=[False, False])
cross["paper_r2"] = [paper.TABLE12[key]["r2"] for key in zip(cross.architecture, cross.configuration)]
display(rounded(cross[["architecture", "configuration", "loss", "lr", "weight_decay", "status", "r2", "mae",
                       "sigma_robust", "paper_r2"]], 4))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar([0, 1, 3, 4], cross.r2.fillna(0), color=["tab:blue" if n else "tab:red" for n in cross.native])
ax.set_xticks([0, 1, 3, 4], [f"{a}\n{c}" for a, c in zip(cross.architecture, cross.configuration)], fontsize=8)
ax.axhline(0, color="k", lw=0.8)
ax.set(ylabel="test $R^2$", title="Figure 8: own (blue) vs the other's (red) configuration")
plt.tight_layout()
display(Markdown(plateau_warning(cross.r2, "the cross-configuration experiment")))

# %% [markdown]
# ## 5.9 Figure 9 and Table 10: training-set size
#
# Test R² of the plan's networks, LightGBM and Ridge trained on the first N spectra of the training set (the
# largest N reuses the main runs), then the paper's Table 10 (N = 5 x 10^4 to 10^6; "n/a": not given at that N).

# %%
scaling = benchmark.scaling_runs(profile, plan, dataset)
display(rounded(scaling.pivot(index="n_train", columns="model", values="r2"), 3))
display(rounded(pd.DataFrame(paper.TABLE10).T.rename_axis("paper: N"), 3).fillna("n/a"))
fig, ax = plt.subplots(figsize=(6.5, 4))
for model, rows in scaling.groupby("model", sort=False):
    ax.plot(rows.n_train, rows.r2, "o" + ("--" if model in ("lightgbm", "ridge") else "-"), label=model)
ax.set(xscale="log", xlabel="training spectra N", ylabel="test $R^2$", title="Figure 9")
ax.legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# ## 5.10 Table 11: seeds
#
# The best architecture of the paper, ConvStem+LSTM, trained with two seeds (initialization, data order and
# training noise all change) on the plan's ablation set. The paper's two seeds agreed to ΔR² < 0.001.

# %%
seeds = benchmark.seed_runs(profile, "convstem_lstm", plan, dataset)
summary = seeds[["r2", "mae", "sigma_robust"]]
display(rounded(pd.concat([summary, summary.mean().to_frame("mean").T, summary.std().to_frame("std").T]), 4))
display(Markdown(plateau_warning(seeds.r2, "the seed experiment")))

# %% [markdown]
# ## 5.11 Table 14: patch size
#
# SpecViT (Conv1D tokenizer, non-overlapping patches) with patches of 16, 32 and 64 pixels, trained on the plan's
# ablation set. The paper (50k-spectrum regime): test R² 0.554 (16), 0.449 (32), 0.496 (64).

# %%
patches = benchmark.patch_size_runs(profile, plan, dataset)
display(rounded(patches[["best_val_r2", "r2", "mae", "status"]], 4))
display(Markdown(plateau_warning(patches.r2, "the patch-size experiment")))

# %% [markdown]
# ## 5.12 Table 15: Conv1D against sliding-window tokenization
#
# Both tokenizers compute the same kind of token (a linear map of each patch); they differ in how the gradient
# reaches the weights. Each trains with several seeds; a run counts as finished when its loss stayed finite and its
# best validation R² exceeds 0.05 (the paper's sliding-window runs collapsed to a constant prediction, R² ≈ 0:
# 0 of 15 finished, against 23 of 79 Conv1D runs). A run that trained to its last epoch below that reads
# `collapsed` in the table of runs, one whose loss became infinite `diverged`.

# %%
stability_runs, stability = benchmark.tokenizer_stability(profile, plan, dataset)
display(rounded(stability, 4))
display(rounded(stability_runs[["tokenizer", "seed", "status", "best_val_r2", "r2"]], 4))
display(Markdown(plateau_warning(stability_runs.r2, "the tokenizer experiment")))
seeded = stability_runs.set_index(["tokenizer", "seed"]).run_dir
differences = [runs.read_predictions(seeded["Conv1D", s]).pred - runs.read_predictions(seeded["sliding window", s]).pred
               for s in plan.stability_seeds]
glue("tokenizer_max_diff", max(float(np.max(np.abs(d))) for d in differences), display=False)

# %% [markdown]
# The largest difference between the two tokenizers' test predictions at the same seed is
# {glue:text}`tokenizer_max_diff:.2g` dex. Our two tokenizers are initialized from the same random numbers (a
# Conv1D kernel of shape (D, 1, P) and a Linear weight of shape (D, P), both with fan-in P), so in full precision
# they compute the same function and receive the same gradients up to rounding: the instability the paper saw
# does not come from the unfold + Linear path itself. Its appendix points to larger gradients in its sliding-window
# implementation under FP16 mixed precision, which this comparison on the CPU in FP32 does not reproduce.

# %% [markdown]
# ## 5.13 Table 4: fine-tuning to brighter stars
#
# ConvStem+LSTM and the BiLSTM, pre-trained on the benchmark's i = 20.5-22.5 spectra, fine-tuned on a separate
# dataset at i = 18.75-19.25 (SNR ~ 21); the same networks trained on that dataset from scratch for as many epochs
# show what the pre-training brings. The paper's Table 4 (2 x 10^5 mag-19 spectra, fine-tuned only) is in the
# `paper_*` columns of the fine-tuned rows.

# %%
high_snr = benchmark.high_snr_runs(profile, plan, dataset)
for metric in ("r2", "sigma_robust"):
    high_snr[f"paper_{metric}"] = [paper.TABLE4[m][metric] if t == "fine-tuned" and m in paper.TABLE4 else np.nan
                                   for m, t in zip(high_snr.model, high_snr.training)]
display(rounded(high_snr[["model", "training", "pretrained_r2", "status", "r2", "mae", "sigma_robust", "paper_r2",
                          "paper_sigma_robust"]], 4).fillna("n/a"))
bright = read_split(benchmark.high_snr_dataset(profile, plan), "test")
glue("bright_snr", float(np.median(bright.params.snr)), display=False)

# %% [markdown]
# The median SNR of the mag-19 test spectra is {glue:text}`bright_snr:.1f`. The paper quotes SNR ≈ 21 for its
# mag-19 set, but its own SNR-magnitude relation (87.4 at i = 18 and 24.0 at i = 20, the one the simulator is
# calibrated to in chapter 1) puts i = 19 between those, near 45; we follow the relation.
#
# ## 5.14 Figure 10: where the attention falls
#
# CLS-to-patch attention of the best transformer or hybrid run, averaged over its layers, heads and the test
# spectra, normalized to a maximum of 1, over an example spectrum (the brightest test spectrum). The grey curve is
# where the log g information is: the Fisher information (∂x/∂log g)² / σ² of the templates per token, averaged
# over the grid at i = 21.5 (chapter 6). Vertical lines mark the strong lines of the window.

# %%
attentive = [n for n in networks.index if table.loc[n, "family"] in ("transformer", "hybrid")]
shown = max(attentive, key=lambda n: table.loc[n, "r2"])
test = read_split(dataset, "test", max_rows=256)
noisy = fixed_noisy(test.flux, test.error)  # the inputs the network is scored on
attention = cls_attention(run_dirs[shown], noisy, test.wave)
grid = load_grid(read_manifest(dataset)["config"]["grid"])
information = logg_information_by_token(grid, attention)
rho = spearmanr(attention.attention, information).statistic
glue("attention_model", shown, display=False)
glue("attention_rho", rounded(rho, 2), display=False)

fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 6.5), sharex=True, height_ratios=(1, 1.2))
example = int(np.argmax(test.params.snr))
top.plot(test.wave, noisy[example], lw=0.4, color="0.6", label="observed (noisy)")
top.plot(test.wave, test.flux[example], lw=0.6, color="k", label="template")
top.set(ylim=(0, 1.1 * np.percentile(noisy[example], 99.5)), ylabel="normalized flux", title=f"example test spectrum (SNR {test.params.snr[example]:.0f}, "
        f"log g {test.params.log_g[example]:.2f})")
top.legend(loc="lower left", fontsize=8)
bottom.step(attention.wave_center, attention.attention, where="mid", label=f"{shown} CLS attention")
bottom.step(attention.wave_center, information, where="mid", color="0.5", label="log g Fisher information")
bottom.set(xlabel="wavelength [Å]", ylabel="normalized", ylim=(0, 1.25))
for name, wave in DIAGNOSTIC_LINES:
    for ax in (top, bottom):
        ax.axvline(wave, color="tab:red", lw=0.6, alpha=0.5)
    if name != "O I" or abs(wave - 7774.17) < 0.01:  # one label for the O I triplet
        bottom.text(wave, 1.22, f"{name} {wave:.0f}", rotation=90, fontsize=7, ha="right", va="top")
bottom.legend(loc="center left", fontsize=8)
plt.tight_layout()

# %% [markdown]
# Spearman's rank correlation between {glue:text}`attention_model`'s attention and the log g information per
# token is ρ = {glue:text}`attention_rho:.2f` (1: the attention ranks the tokens as the information does; 0: no
# relation). The paper's SpecViT attended to the Ca II triplet and Mg I 8807.
#
# **Interactive: the attention explorer.** The same run's CLS attention per layer and per head (averaged over the
# same test spectra, not over layers and heads): move the slider through the layers. The colour is the attention in
# units of a uniform one (1 / (N + 1) for each of the N tokens and the CLS token), so 1 means no preference; the
# dotted lines mark the gravity-sensitive lines of chapter 1 (K I, Na I, the Ca II triplet, Mg I and the Paschen
# series) through the example spectrum and the heat map, and the buttons zoom on each species.

# %%
tokens, layer_weights = cls_attention_by_layer(run_dirs[shown], noisy, test.wave)
explorer = interactive.attention_explorer(tokens, layer_weights, test.wave, noisy[example], model=shown)
interactive.show(explorer, div_id="attention-explorer")

# %% [markdown]
# ## 5.15 The results in one figure
#
# **Interactive: the results dashboard.** The buttons switch between R² with its bootstrap 95% interval by
# architecture, grouped by family (Table 3, Figure 6), R² against the training-set size (section 5.9), the MAE by
# stellar type (Table 5) and predicted against true log g for the best network, LightGBM and Ridge (Figure 7).
# Hover for the numbers; click a legend entry to hide it. A view whose runs are missing at this profile is left
# out.

# %%
dashboard = interactive.results_dashboard(table, scaling=scaling, type_mae=type_mae, predictions=preds)
interactive.show(dashboard, div_id="results-dashboard")

# %% [markdown]
# ## What this profile shows, and what it does not
#
# Small profiles train small networks on a few thousand spectra for a few epochs, so the networks here are far
# from the paper's convergence (chapter 4): read the tables as a working demonstration of every experiment of
# section 5.1, not as a reproduction of its numbers. Run the chapter at `cpu` on a workstation, or at `paper` on a
# GPU, for the paper's scale (`specvit book --profile paper` or papermill with `-p profile paper`).
#
# The transformers are the most affected: their training loss stays flat at the constant-prediction level for the
# first epochs (the paper's SpecViT needed ~100 epochs to converge, its Figure 5), so a short cosine schedule with
# early stopping ends before they leave that plateau. To see SpecViT learn at this profile, give it a longer
# schedule and patience, for example
# `specvit train --arch specvit --profile quick --epochs 40 --patience 40 --runs runs/quick_long`
# (the README gives the time it took on a 2-core CPU), and compare its `metrics.json` with the table above.

# %%
display(pd.Series({"profile": profile, "training spectra": get_profile(profile).n_train,
                   "epochs": get_profile(profile).epochs, "model size": get_profile(profile).model_size,
                   **{k: str(v) for k, v in vars(plan).items()}}, name="plan").to_frame())

# %% [markdown]
# ## About
#
# Code: `specvit_core/benchmark.py` (plans and experiments), `specvit_core/tables.py` (the tables),
# `specvit_core/attention.py` (Figure 10), `specvit_core/interactive.py` (the attention explorer and the results
# dashboard), `specvit_core/runs.py` (run folders), `specvit_core/train.py` (every network run),
# `specvit_core/baselines.py`, `specvit_core/metrics.py` (bootstrap, paired bootstrap). Tests:
# `tests/test_benchmark.py`, `tests/test_interactive.py`. The plans per profile are `specvit_core.benchmark.PLANS`.
