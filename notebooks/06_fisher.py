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
# # 6. The Fisher-information ceiling
#
# **Learning goals.** How well *any* unbiased estimator could infer log g from our simulated spectra (the paper's
# section 5.1.4 and appendices C and J): the Jacobian of the spectrum with respect to (T_eff, log g, [M/H]), the
# Fisher matrix under the simulator's noise, the Cramér-Rao bound marginalized over T_eff and [M/H] by a Schur
# complement, and its translation into an R² ceiling, R²_max = 1 - CRLB / Var(log g). We rebuild Table 13's
# ceiling, Figure 1 (right) and Figure 12, map the ceiling over the HR plane, read the low-SNR ceiling
# point-wise, and set every test star's own bound beside the best network's prediction of it.
#
# Every number on this page is computed here by `specvit_core.fisher`; re-run it at another profile with
# `papermill notebooks/06_fisher.ipynb out.ipynb -p profile smoke`.

# %% tags=["parameters"]
import os

profile = os.environ.get("SPECVIT_PROFILE", "quick")  # smoke | quick | cpu | paper
grid_source = "embedded"  # or the path of a folder of BOSZ files
map_mag = 22.0  # magnitude of the ceiling map (section 6.5)
low_mag = 22.5  # the lowest-SNR bin of Table 13 (section 6.6)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from specvit_core import fisher, interactive, metrics, noise, paper, runs
from specvit_core.config import data_dir
from specvit_core.report import best_network, profile_banner, rounded
from specvit_core.simulate import SimulationConfig
from specvit_core.spectra import load_grid
from specvit_core.spectra import synthesis
from specvit_core.spectra.synthesis import Synthesizer
from specvit_core.template_fit import template_fit
from specvit_core.transfer import CA_II_TRIPLET

display(Markdown(profile_banner(profile)))

# %% [markdown]
# ## 6.1 What the ceiling is computed on
#
# The networks see median-normalized spectra, x = f / median(f), with sigma divided by the same median
# (`noise.median_normalize`, as in the simulator), so the Fisher information is computed on x and its sigma. The
# forward model is the cubic-spline interpolant of the normalized template nodes. The noise is the simulator's
# photon-noise chain for 12 x 900 s exposures at **fixed** observing conditions, `noise.MEDIAN_CONDITIONS`, the
# midpoints of Table 2's ranges (the paper's appendix J does not say which conditions it fixed). The ceiling grid
# is that of appendix J.1; at the smoke profile every other node along each axis is used.

# %%
grid = load_grid(grid_source)
stride = 2 if profile == "smoke" else 1
axes = fisher.ceiling_axes(grid, stride=stride)
config = SimulationConfig.from_profile(profile)
label_variance = (config.logg_range[1] - config.logg_range[0]) ** 2 / 12
display(rounded(pd.Series(noise.MEDIAN_CONDITIONS, name="fixed condition").to_frame()))
print(", ".join(f"{a}: {v[0]:g}..{v[-1]:g} ({v.size} nodes)" for a, v in axes.items())
      + f"; Var(log g) = {label_variance:.3f} dex^2 (uniform labels in {config.logg_range})")

# %% [markdown]
# ## 6.2 Jacobians two ways
#
# The paper differentiates by central finite differences along the grid axes with the grid spacing as step (eq.
# J.1). We also take the exact derivative of the spline interpolant. For uniform nodes the two are tied by
# (s'ᵢ₋₁ + 4 s'ᵢ + s'ᵢ₊₁)/6 = central difference, so they differ only where the derivative itself curves over a
# grid step. The mismatch is measured in the noise-weighted norm |(J_fd - J_exact)/σ| / |J_exact/σ| at i = 21.5.

# %%
start = time.perf_counter()
labels, x, jac_fd = fisher.normalized_jacobian(grid, axes, "finite_difference")
_, _, jac_exact = fisher.normalized_jacobian(grid, axes, "exact")
sigma_215, _ = fisher.normalized_sigma(grid, axes, 21.5)
mismatch = pd.DataFrame(fisher.jacobian_mismatch(jac_fd, jac_exact, sigma_215), columns=fisher.AXES)
print(f"{len(labels)} grid points, both Jacobians in {time.perf_counter() - start:.1f} s")
display(rounded(mismatch.describe(percentiles=[0.5, 0.9, 0.99]).T[["50%", "90%", "99%", "max"]]))

# %% [markdown]
# The full ceiling (every node, every magnitude) with each Jacobian; the timing is that of this machine.

# %%
timings = {}
points = {}
for method in fisher.METHODS:
    start = time.perf_counter()
    points[method] = fisher.ceiling_points(grid, axes=axes, method=method, label_variance=label_variance)
    timings[method] = time.perf_counter() - start
display(rounded(pd.Series(timings, name="seconds for 9 magnitudes x the grid"), 1).to_frame())

# %% [markdown]
# The median ceilings of the two Jacobians side by side.

# %%
both = pd.concat({m: fisher.ceiling_table(p).set_index("mag").r2_max_median for m, p in points.items()}, axis=1)
both["difference"] = both["exact"] - both["finite_difference"]
display(rounded(both, 4))

# %% [markdown]
# ## 6.3 Table 13: the ceiling per magnitude
#
# Median SNR of the grid's spectra, the median and 10/90 percentiles of R²_max over the grid (finite differences,
# the paper's method), the median Schur decay factor ρ, and the paper's values: its SNR, its 3D median (draft
# section 5.4) and its 5D median (Table 13; the 5D analysis adds [α/M] and [C/M], which our templates do not have).

# %%
points_fd = points["finite_difference"]
table = fisher.ceiling_table(points_fd)
display(rounded(table))

# %% [markdown]
# Benchmark runs, where they exist (`runs/<profile>/<arch>/`), add the best network's and LightGBM's R² in magnitude
# bins of the test set centred on the table's magnitudes (the test set spans i = 20.5-22.5, so only those bins have
# models), and the gap to the ceiling. The best network is the run with the highest test R² among those whose
# recorded family is a neural network (`report.best_network`); the baselines are never candidates. Template
# fitting in particular is not: it fits the spectra with the very templates the simulator made them from, so it has
# **no model mismatch** and is optimistic compared with the paper's template fit (chapter 3, section 3.7).

# %%
run_dirs = runs.list_runs(profile)
predictions = {name: runs.read_predictions(folder) for name, folder in run_dirs.items()}
best = best_network(run_dirs)
lgbm = "lightgbm" if "lightgbm" in predictions else None
print(f"runs found: {list(run_dirs) or 'none'}; best network: {best}; LightGBM: {lgbm}")

# %% [markdown]
# The table with the model columns (empty where no run exists).

# %%
edges = [20.5, 20.75, 21.25, 21.75, 22.25, 22.5]  # bins centred on 20.5, 21, 21.5, 22, 22.5 (half bins at the ends)
centres = [20.5, 21.0, 21.5, 22.0, 22.5]
model_r2 = pd.DataFrame(index=pd.Index(centres, name="mag"))
for name, arch in {"best network": best, "LightGBM": lgbm}.items():
    if arch is not None:
        by_bin = metrics.metrics_by_bins(predictions[arch].true, predictions[arch].pred, predictions[arch].mag, edges)
        model_r2[f"r2 {name} ({arch})"] = by_bin.r2.to_numpy()[:-1]
table13 = table.set_index("mag").join(model_r2, how="left")
if best is not None:
    table13["gap (ceiling - best network)"] = table13.r2_max_median - table13[f"r2 best network ({best})"]
display(rounded(table13))
glue("ceiling_gap", rounded(table13.loc[map_mag, "gap (ceiling - best network)"]) if best else float("nan"),
     display=False)
glue("ceiling_mag", map_mag, display=False)

# %% [markdown]
# ## 6.4 Figure 1 (right): R² against SNR
#
# The ceiling as a band (10-90% of the grid) around its median, against the median SNR of each magnitude, with the
# paper's 3D ceiling and, where runs exist, the models' test R² in SNR quintiles (the template fit's without model
# mismatch, see section 6.3). A model's quintiles are `interactive.snr_quantiles` (`metrics.metrics_by_quantile`
# over the test set's SNR), drawn at each bin's geometric centre, here and in the interactive version below.

# %%
paper_points = {mag: (snr, paper.CEILING_3D[mag]) for mag, snr in paper.SNR_BY_MAG.items()}
fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.fill_between(table.snr, table.r2_max_p10, table.r2_max_p90, alpha=0.25, color="k", label="ceiling, 10-90% of grid")
ax.plot(table.snr, table.r2_max_median, "k--", label="ceiling, median (this simulator)")
ax.plot(*zip(*paper_points.values()), "r*", ms=9, label="paper, 3D median")
for arch, p in predictions.items():
    by_snr = interactive.snr_quantiles(p)
    ax.plot(by_snr.snr, by_snr.r2, "o-", label=arch)
ax.set(xscale="log", xlabel="median per-pixel SNR", ylabel="R² (log g)", ylim=(-0.05, 1.02))
ax.legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# **Interactive: the results dashboard's R²-against-SNR view.** The figure above in plotly, for the HTML book (the
# static one stays for the PDF). It belongs to the results dashboard but is kept in this chapter because the
# ceiling is computed here; chapter 05's dashboard (section 5.15) has the other views. Hover over the band or the
# dashed median for a magnitude's median SNR, median ceiling and 10-90% range of the grid, over a model's points for
# the SNR range of its quintile, its R² and the number of test spectra in it; click a legend entry to hide or show
# a model (double-click to show it alone).

# %%
r2_snr = interactive.r2_against_snr(table, predictions, paper_points)
interactive.show(r2_snr, div_id="r2-against-snr")

# %% [markdown]
# ## 6.5 The ceiling across the HR plane, and the Schur decay factor
#
# R²_max at i = `map_mag` on the (T_eff, log g) plane (median over [M/H]), and its spread with metallicity.

# %%
fig, axes_ = plt.subplots(1, 2, figsize=(12, 4))
ceiling_map = fisher.ceiling_map(points_fd, map_mag)
image = axes_[0].pcolormesh(ceiling_map.columns, ceiling_map.index, ceiling_map.to_numpy(), vmin=0, vmax=1, cmap="viridis")
fig.colorbar(image, ax=axes_[0], label="R²_max (median over [M/H])")
axes_[0].set(xlabel="T_eff [K]", ylabel="log g", title=f"i = {map_mag:g}")
axes_[0].invert_xaxis()
axes_[0].invert_yaxis()
by_mh = points_fd[np.isclose(points_fd.mag, map_mag)].pivot_table(index="M_H", columns="T_eff", values="r2_max")
by_mh.plot(ax=axes_[1], cmap="coolwarm", legend=False, xlabel="[M/H]", ylabel="R²_max (median over log g)")
axes_[1].legend(fontsize=7, ncol=2, title="T_eff")
plt.tight_layout()

# %% [markdown]
# The Schur decay factor ρ is the fraction of the log g information left after marginalizing over T_eff and
# [M/H]. It does not depend on an overall noise scale, only on how the noise is spread over the pixels (object
# versus sky), so it changes little with SNR; the dotted line is the paper's 3D value (`paper.SCHUR_DECAY`).

# %%
rho = points_fd.groupby("mag").rho.describe(percentiles=[0.1, 0.5, 0.9])
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.fill_between(table.snr, rho["10%"], rho["90%"], alpha=0.3, label="10-90% of grid")
ax.plot(table.snr, rho["50%"], "o-", label="median")
ax.axhline(paper.SCHUR_DECAY["3D"], color="r", ls=":", label="paper (3D)")
ax.set(xscale="log", xlabel="median per-pixel SNR", ylabel="Schur decay factor ρ", ylim=(0, 1))
ax.legend()
plt.tight_layout()

# %% [markdown]
# ## 6.6 Point-wise versus median reading at the lowest SNR
#
# At i = `low_mag` the paper's models reach a higher R² than its tabulated median 5D ceiling (last two rows). The ceiling
# is a point-wise bound whose distribution over the grid is broad and skewed, so its median is not the bound of a
# population. The population bound of an unbiased estimator that reaches the CRLB everywhere is
# 1 - mean(CRLB)/Var(log g); a biased estimator that shrinks toward the mean where the data are weak can do
# better still: with a Gaussian prior of the label variance the posterior variance is 1/(1/CRLB + 1/Var), which
# gives the (approximate, Gaussian-prior) Bayesian reading in the last row.

# %%
low = points_fd[np.isclose(points_fd.mag, low_mag)]
readings = pd.Series({
    "median of point-wise R²_max": low.r2_max.median(),
    "mean of point-wise R²_max": low.r2_max.mean(),
    "share of grid with R²_max > 0.9": (low.r2_max > 0.9).mean(),
    "share of grid with R²_max < 0.05": (low.r2_max < 0.05).mean(),
    "population bound 1 - mean(CRLB)/Var": max(0.0, 1 - low.crlb.mean() / label_variance),
    "Bayesian reading 1 - mean(posterior var)/Var": 1 - np.mean(1 / (1 / low.crlb + 1 / label_variance)) / label_variance,
    "paper: median 5D ceiling (Table 13)": paper.CEILING_5D.get(low_mag, np.nan),
    "paper: SpecViT test R² (Table 13)": paper.TABLE13_R2["specvit"].get(low_mag, np.nan),
}, name=f"i = {low_mag:g}")
display(rounded(readings).to_frame())

# %% [markdown]
# Where the easy and the hard stars are at this magnitude: R²_max by T_eff and [M/H] (median over log g).

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.hist(low.r2_max, bins=np.linspace(0, 1, 21), color="0.5")
ax.axvline(low.r2_max.median(), color="k", ls="--", label="median")
ax.set(xlabel=f"R²_max at i = {low_mag:g}", ylabel="grid points")
ax.legend()
display(rounded(low.pivot_table(index="M_H", columns="T_eff", values="r2_max").iloc[::2], 2))

# %% [markdown]
# ## 6.7 Figure 12: residuals against the CRLB envelope
#
# For every test spectrum, the bound at its own labels, magnitude and observing conditions (`fisher.split_crlb`:
# `fisher.pointwise_crlb` with the exact Jacobian, computed once per dataset and cached beside the split as
# `crlb_test.csv`), set beside the best network's prediction of it (`fisher.star_ceiling`). An unbiased estimator
# at the bound would have 68% of its residuals within ±1 σ_CRLB; a model that shrinks toward the mean can beat that
# where the bound is loose.

# %%
if best is None:
    display(Markdown("*No evaluated network run exists for this profile yet: train one "
                     "(chapter 04) and re-run this page to see Figure 12 and the per-star ceiling.*"))
else:
    crlb = fisher.split_crlb(data_dir(profile), grid)
    stars = fisher.star_ceiling(predictions[best], crlb)
    print(f"{best}: {len(stars)} test spectra, sigma_CRLB from {stars.sigma_crlb.min():.3f} to "
          f"{stars.sigma_crlb.max():.3f} dex (median {stars.sigma_crlb.median():.3f})")

# %%
if best is not None:
    order = np.argsort(stars.snr.to_numpy())
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(stars.snr, stars.residual, s=3, alpha=0.4, label=f"{best} residuals")
    envelope = pd.Series(stars.sigma_crlb.to_numpy()[order]).rolling(51, center=True, min_periods=5).median()
    ax.plot(stars.snr.to_numpy()[order], 2 * envelope, "k-", label="±2 σ_CRLB (running median)")
    ax.plot(stars.snr.to_numpy()[order], -2 * envelope, "k-")
    ax.set(xlabel="SNR", ylabel="predicted - true log g [dex]", ylim=(-3, 3))
    ax.legend(fontsize=8)
    plt.tight_layout()

# %% [markdown]
# ## 6.8 The per-star ceiling
#
# Each star's residual in units of its own bound, z = (predicted - true) / σ_CRLB. For an efficient unbiased
# estimator z follows N(0, 1) (`tests/test_fisher.py` checks it with generalized least squares on a linear-Gaussian
# model). A star is **information-limited** when |residual| ≤ k σ_CRLB with k = `fisher.INFORMATION_LIMITED_K` = 2:
# its error is within what the noise of its own spectrum allows (95% of an efficient estimator's stars are; k = 1
# would call a third of them model-limited). Beyond that it is **model-limited**: the network, not the spectrum,
# loses the information. Within the bound does not mean optimal: a model that shrinks toward the mean label is
# biased and can have small |z| where the bound is loose (faint stars) while it misses the bright ones.

# %%
if best is not None:
    z_range = np.linspace(-6, 6, 49)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.hist(np.clip(stars.z, -6, 6), bins=z_range, density=True, color="0.6", label=f"{best} (|z| > 6 at the edges)")
    ax.plot(z_range, np.exp(-z_range**2 / 2) / np.sqrt(2 * np.pi), "k--", label="N(0, 1): efficient estimator")
    ax.set(xlabel="z = residual / σ_CRLB", ylabel="density")
    ax.legend(fontsize=8)
    plt.tight_layout()
    limits = stars.limit.value_counts().reindex(fisher.LIMITS, fill_value=0)
    display(rounded(pd.DataFrame({"stars": limits, "share": limits / len(stars)})))

# %% [markdown]
# The network's R² against the ceiling of the same stars, R²_max = 1 - mean(CRLB) / Var(true log g) of the group,
# by magnitude bin and by stellar type (giants log g < 2.5, dwarfs > 4.0; the R² of a narrow group uses its own
# small label variance, so both R² and R²_max are lower there), with the median |z| and the shares within 1 and 2
# σ_CRLB (68% and 95% for an efficient estimator). R²_max is floored at 0 where the group's mean bound exceeds its
# label variance (faint bins, narrow types); their ratio then reads "n/a".

# %%
if best is not None:
    summary = fisher.ceiling_summary(stars, np.linspace(*config.mag_range, 5))
    display(rounded(summary).fillna("n/a"))
    overall = summary.loc[("all", "all")]
    display(Markdown(
        f"At the **`{profile}`** profile, {np.mean(stars.limit == fisher.LIMITS[0]):.0%} of {best}'s "
        f"{int(overall.n)} test stars are "
        f"information-limited and its R² is {overall.r2:.3f} against a per-star ceiling of {overall.r2_max:.3f}"
        + ("." if profile == "paper" else
           f". The `{profile}` profile is a demonstration of the method with a small, briefly trained network, "
           "not a result: run the chapter at `cpu` or `paper` for the numbers to read.")))

# %% [markdown]
# ## 6.9 Where the log g information sits
#
# The templates are an LTE synthesis from real line data and model atmospheres (chapter 1), and nothing in them
# was adjusted to the paper's ceiling: the table of section 6.3 is a *result* to compare, not a target. Which lines
# carry it: for a few stars, the log g derivative of the continuum-normalized spectrum from each species' lines
# alone, weighted by the simulator's noise at i = 21.5, gives each species' share of the conditional log g
# information Σ (∂x/∂log g)² / σ² (blends make the shares approximate; TiO is not included).

# %%
synthesizer = Synthesizer()
stars = {"red-clump giant": (4750.0, 2.5, -0.5), "K dwarf": (4750.0, 4.5, 0.0), "G dwarf": (5750.0, 4.5, 0.0),
         "metal-poor giant": (4500.0, 1.5, -2.0), "F subgiant": (6000.0, 3.5, -1.0)}
if profile == "smoke":
    stars = dict(list(stars.items())[:1])
budget = {}
for name, (teff, logg, mh) in stars.items():
    response = synthesis.gravity_response_by_species(synthesizer, teff, logg, mh)
    sigma_star, _ = fisher.normalized_sigma(grid, {"T_eff": [teff], "log_g": [logg], "M_H": [mh]}, 21.5)
    budget[name] = pd.Series({k: float(np.sum((v / sigma_star[0]) ** 2)) for k, v in response.items()})
budget = pd.DataFrame(budget)
display((budget / budget.sum()).round(3).style.format("{:.1%}").set_caption("share of the log g information at i = 21.5"))

# %% [markdown]
# The ceiling against T_eff (median over log g and [M/H]) at three magnitudes, where the paper finds the hot stars
# with strong Ca II the easiest.

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for mag in (21.5, 22.0, 22.5):
    by_teff = points_fd[np.isclose(points_fd.mag, mag)].groupby("T_eff").r2_max.median()
    ax.plot(by_teff.index, by_teff.to_numpy(), "o-", label=f"i = {mag:g}")
ax.set(xlabel="T_eff [K]", ylabel="median R²_max", ylim=(0, 1))
ax.legend()
plt.tight_layout()

# %% [markdown]
# The physics must stay plausible: the summed equivalent width of the Ca II triplet (real stars: roughly 6-8 Å for
# solar-metallicity dwarfs, 8-10 Å for giants, 2-4 Å for giants at [Fe/H] = -2).

# %%
cat = list(CA_II_TRIPLET)
cases = {"dwarf 5500 K, log g 4.5, [M/H] 0": (5500, 4.5, 0.0), "giant 4500 K, log g 2.5, [M/H] 0": (4500, 2.5, 0.0),
         "giant 4500 K, log g 1.5, [M/H] -2": (4500, 1.5, -2.0)}
display(rounded(pd.Series({k: synthesizer.equivalent_width(*v, cat) for k, v in cases.items()}, name="CaT EW [A]"), 2)
        .to_frame())

# %% [markdown]
# ## 6.10 Template fitting against the bound
#
# At high SNR a χ² template fit (`specvit_core.template_fit`, appendix H) is close to an efficient estimator, so the
# scatter of its log g over noise realizations should not fall below the CRLB by more than the sampling noise of
# the comparison (the variance of n draws has a relative standard error of sqrt(2/(n-1))). One red-clump-like
# star at i = 19; the bound from the exact Jacobian, the derivative of the same spline model the fit uses. The fit
# uses the simulator's own grid (no model mismatch, as an efficiency test needs); a real model's systematic errors
# (chapter 3, section 3.7) would add a bias the bound does not describe.

# %%
n_fit = 8 if profile == "smoke" else 40
star = {"T_eff": np.array([4500.0]), "log_g": np.array([2.5]), "M_H": np.array([-0.5])}
_, x_star, jac_star = fisher.normalized_jacobian(grid, star, "exact")
sigma_star, snr_star = fisher.normalized_sigma(grid, star, 19.0)
noisy = noise.noisy_spectrum(np.repeat(x_star, n_fit, axis=0), np.repeat(sigma_star, n_fit, axis=0),
                             np.random.default_rng(0))
fit = template_fit(noisy, np.repeat(sigma_star, n_fit, axis=0), grid, progress=False)

# %% [markdown]
# Ratio of the fit's variance to the bound, with its sampling uncertainty.

# %%
crlb_star = fisher.marginal_crlb(jac_star, sigma_star, fisher.LOGG)[0]
ratio = np.var(fit.log_g, ddof=1) / crlb_star
display(rounded(pd.Series({"SNR": snr_star[0], "sigma_CRLB [dex]": np.sqrt(crlb_star),
                           "fit scatter [dex]": np.std(fit.log_g, ddof=1), "variance ratio fit / CRLB": ratio,
                           "its standard error": ratio * np.sqrt(2 / (n_fit - 1))}), 4).to_frame(f"n = {n_fit}"))

# %% [markdown]
# ## About
#
# The ceiling is 3D (T_eff, log g, [M/H]); the paper's Table 13 quotes a 5D ceiling that also marginalizes over
# [α/M] and [C/M] (2-3 nodes each in BOSZ), which lowers it at low SNR (appendix J.5). Differences from the paper to
# keep in mind: the ceiling grid's observing conditions are fixed at the midpoints of Table 2 (the paper does not
# say; the per-star bounds of sections 6.7-6.8 use each spectrum's own); appendix
# J.1 gives [M/H] as "14 nodes spanning -0.25 to +0.75", which cannot both hold on the BOSZ steps, and we use the
# 14 nodes -2.5..+0.75 of the training labels; the paper does not say whether it normalizes the spectra before
# differentiating, we do, as the networks see them. The Fisher matrix ignores the dependence of sigma on the labels
# (J^T Σ⁻¹ J, eq. J.2). The per-star bounds of a dataset's test split are computed once and kept in the dataset
# folder (`crlb_test.csv`, one row per spectrum in the split's order); delete the file to recompute them. Code:
# `specvit_core/fisher.py`, `specvit_core/interactive.py` (the interactive R²-against-SNR view); tests:
# `tests/test_fisher.py`, `tests/test_interactive.py`.
