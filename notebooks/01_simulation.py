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
# # 1. Simulated PFS MR spectra
#
# **Learning goals.** How the training data of the paper are made (its section 4.1.1, Table 2 and appendix G):
# stellar templates on the BOSZ axes, the medium-resolution (MR) red arm of the Subaru Prime Focus Spectrograph, and
# the photon noise of a 12 x 900 s exposure; how the signal-to-noise ratio falls with magnitude; and where in the
# spectrum surface gravity leaves its mark.
#
# Every number on this page is computed here by `specvit_core`; re-run it at another profile with
# `papermill notebooks/01_simulation.ipynb out.ipynb -p profile smoke`.

# %% tags=["parameters"]
import os

profile = os.environ.get("SPECVIT_PROFILE", "quick")  # smoke | quick | cpu | paper
grid_source = "embedded"  # or the path of a folder of BOSZ files
seed = 0

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from specvit_core import noise, simulate
from specvit_core.config import data_dir, get_profile
from specvit_core.data import read_split
from specvit_core.instrument import MR_N_PIXELS, MR_WAVE_MAX, MR_WAVE_MIN, resolving_power
from specvit_core.report import profile_banner
from specvit_core.spectra import load_grid

display(Markdown(profile_banner(profile)))

# %% [markdown]
# ## 1.1 Simulation parameters (Table 2)
#
# The observing conditions are drawn uniformly per spectrum in these ranges; the spectrograph and label settings are
# those of the simulator's configuration.

# %%
config = simulate.SimulationConfig.from_profile(profile)
wave_mr = np.linspace(MR_WAVE_MIN, MR_WAVE_MAX, MR_N_PIXELS)
conditions = pd.DataFrame(
    [(name, f"{lo:g} - {hi:g}") for name, (lo, hi) in noise.TABLE2.items()]
    + [("exposure", f"{noise.N_EXPOSURES} x {noise.EXPOSURE_TIME:g} s")], columns=["condition", "range"])
spectrograph = pd.DataFrame([
    ("wavelength coverage", f"{MR_WAVE_MIN:.1f} - {MR_WAVE_MAX:.1f} A"),
    ("pixels", f"{MR_N_PIXELS}"),
    ("dispersion", f"{np.diff(wave_mr)[0]:.3f} A/pix"),
    ("resolving power", f"{resolving_power(MR_WAVE_MIN):.0f} - {resolving_power(MR_WAVE_MAX):.0f}"),
    ("resolution (FWHM)", f"{MR_WAVE_MIN / resolving_power(MR_WAVE_MIN):.2f} - {MR_WAVE_MAX / resolving_power(MR_WAVE_MAX):.2f} A"),
], columns=["spectrograph", "value"])
labels = pd.DataFrame([
    ("T_eff", f"{config.teff_range[0]:g} - {config.teff_range[1]:g} K"),
    ("log g", f"{config.logg_range[0]:g} - {config.logg_range[1]:g} dex"),
    ("[M/H]", f"{config.mh_range[0]:g} - {config.mh_range[1]:g} dex"),
    ("[alpha/Fe], v_los, E(B-V)", "0"),
    ("m_i", f"{config.mag_range[0]:g} - {config.mag_range[1]:g} mag"),
], columns=["label", "range"])
display(conditions, spectrograph, labels)

# %% [markdown]
# ## 1.2 Stellar templates
#
# The default templates come from the embedded line-formation model (Planck continuum, Boltzmann-Saha line
# strengths scaled with [M/H], pressure-broadened Voigt profiles, TiO bands; weak metal lines are a seeded
# statistical forest, a labelled stand-in for real line data), evaluated at R ~ 300,000 on the BOSZ axes, convolved
# with the MR line-spread function and cached. The grid is built once (about a minute) and reused.

# %%
grid = load_grid(grid_source)
print(f"grid from {grid.source}: " + ", ".join(f"{a} {lo:g}..{hi:g} ({len(grid.axes[a])} nodes)"
                                             for a, (lo, hi) in grid.bounds.items()))

# %% [markdown]
# How surface gravity changes the spectrum at fixed T_eff = 4500 K and [M/H] = 0: the Ca II triplet deepens and
# widens toward giants (low log g), the Na I doublet toward dwarfs, through the pressure dependence of the line
# opacity and damping.

# %%
loggs = np.arange(1.0, 5.01, 1.0)
spectra = grid.interpolate(np.column_stack([np.full(loggs.size, 4500.0), loggs, np.zeros(loggs.size)]))
windows = {"Ca II triplet": (8470, 8690), "Na I doublet": (8170, 8210)}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 1]})
for ax, (title, (lo, hi)) in zip(axes, windows.items()):
    m = (grid.wave > lo) & (grid.wave < hi)
    for logg, spec, color in zip(loggs, spectra, plt.cm.viridis(np.linspace(0, 0.9, loggs.size))):
        ax.plot(grid.wave[m], spec[m] / np.median(spec[m]), color=color, lw=1, label=f"log g = {logg:g}")
    ax.set(title=title, xlabel="wavelength [A]", ylabel="normalized flux")
axes[0].legend(ncol=5, fontsize=8, loc="lower left")
plt.tight_layout()

# %% [markdown]
# ## 1.3 Noise across the arm (Figure 3)
#
# Absolute and relative flux errors of a solar-type star (T_eff = 5750 K, log g = 4.5, [M/H] = 0) at several
# magnitudes, for median conditions (seeing 1.0", zenith 22.5 deg, field angle 0.3 deg, new moon). Sky emission
# lines and the telluric bands show as spikes; the relative error grows toward the red where the throughput falls.

# %%
mags = np.array([18.0, 19.0, 20.0, 21.0, 22.0, 23.0])
median_conditions = {"seeing": 1.0, "zenith_angle": 22.5, "field_angle": 0.3, "moon_zenith": 60.0,
                     "moon_target": 120.0, "moon_phase": 0.0}
cond = {k: np.full(mags.size, v) for k, v in median_conditions.items()}
template = np.repeat(grid.interpolate([[5750.0, 4.5, 0.0]]), mags.size, axis=0)
flux, sigma = noise.observe(grid.wave, template, mags, cond)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for f, s, mag, color in zip(flux, sigma, mags, plt.cm.plasma(np.linspace(0, 0.85, mags.size))):
    axes[0].semilogy(grid.wave, s, color=color, lw=0.6, label=f"i = {mag:g}")
    axes[1].semilogy(grid.wave, s / f, color=color, lw=0.6)
axes[0].set(xlabel="wavelength [A]", ylabel=r"$\sigma_F$ [erg s$^{-1}$ cm$^{-2}$ A$^{-1}$]")
axes[1].set(xlabel="wavelength [A]", ylabel=r"$\sigma_F / F$")
axes[0].legend(fontsize=8, ncol=2)
plt.tight_layout()

# %% [markdown]
# ## 1.4 Signal-to-noise ratio against magnitude
#
# The median per-pixel SNR (median of flux / sigma over the spectrum, then the median over spectra) with labels and
# observing conditions drawn as in the datasets, next to the values the paper quotes (its Table 13). The noise model
# is calibrated to agree within 10%.

# %%
n_snr = {"smoke": 100, "quick": 400}.get(profile, 1000)
snr_table = simulate.snr_by_magnitude(grid, mags=(18.0, 19.0, 20.0, 20.5, 21.0, 21.5, 22.0, 22.5, 23.0), n=n_snr,
                                      seed=seed)
display(snr_table.round(3))

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ax.fill_between(snr_table.mag_i, snr_table.snr_p10, snr_table.snr_p90, alpha=0.3, label="10-90% of spectra")
ax.semilogy(snr_table.mag_i, snr_table.snr_median, "o-", label="this simulator (median)")
ax.semilogy(list(simulate.PAPER_SNR), list(simulate.PAPER_SNR.values()), "k*", ms=10, label="paper")
ax.set(xlabel="i-band magnitude [AB]", ylabel="median per-pixel SNR")
ax.legend()
plt.tight_layout()

# %% [markdown]
# ## 1.5 Example spectra (Figure 4)
#
# One star (T_eff = 4750 K, log g = 2.5, [M/H] = -0.5, a red-clump giant) observed at four magnitudes: the clean
# template (grey) under one noisy realization drawn from the per-pixel sigma.

# %%
show_mags = np.array([20.5, 21.5, 22.0, 22.5])
cond4 = {k: np.full(show_mags.size, v) for k, v in median_conditions.items()}
clean, sigma4 = noise.observe(grid.wave, np.repeat(grid.interpolate([[4750.0, 2.5, -0.5]]), 4, axis=0), show_mags, cond4)
clean, sigma4, _ = simulate.median_normalize(clean, sigma4)
noisy = noise.add_noise(clean, sigma4, np.random.default_rng(seed))
fig, axes = plt.subplots(4, 1, figsize=(12, 9), sharex=True)
for ax, mag, c, n, s in zip(axes, show_mags, clean, noisy, sigma4):
    ax.plot(grid.wave, n, lw=0.4, color="tab:blue")
    ax.plot(grid.wave, c, lw=0.8, color="0.3")
    ax.set(ylim=(-0.5, 2.5), ylabel="flux / median")
    ax.text(0.01, 0.85, f"i = {mag:g}, SNR = {np.median(c / s):.1f}", transform=ax.transAxes)
axes[-1].set_xlabel("wavelength [A]")
plt.tight_layout()

# %% [markdown]
# ## 1.6 The datasets of this profile
#
# Train shards, validation and test splits are drawn with independent seeds and written as HDF5 files in the
# paper's schema (clean median-normalized flux, per-pixel sigma, a table of labels, magnitude, SNR and observing
# conditions) with a manifest of checksums. An existing dataset with the same configuration is reused.

# %%
dataset = simulate.ensure_dataset(profile, grid=grid if grid_source != "embedded" else None)
splits = {name: read_split(dataset, name) for name in ("train", "val", "test")}
manifest = json.loads((dataset / "manifest.json").read_text())
display(pd.DataFrame(manifest["files"]).T[["split", "n", "sha256"]])

# %%
fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
for name, s in splits.items():
    for ax, col in zip(axes, ["T_eff", "log_g", "M_H", "snr"]):
        ax.hist(s.params[col], bins=30, histtype="step", density=True, label=name)
        ax.set_xlabel(col)
axes[3].set_xscale("log")
axes[0].legend()
plt.tight_layout()

# %%
summary = pd.concat({name: s.params[["mag", "snr"]].describe(percentiles=[0.1, 0.5, 0.9]).T for name, s in splits.items()})
display(summary.round(2))

# %% [markdown]
# ## About
#
# The embedded templates stand in for BOSZ (Bohlin et al. 2017), which the paper uses; pass `grid_source` with a
# folder of BOSZ files (`.asc`, `.asc.bz2` or `.fits`) to use the real grid. The noise model's constants were
# calibrated once against the PFS exposure-time calculator and the paper's SNR values; see
# `specvit_core/noise.py`. Data of this page: `data/<profile>/` with its `manifest.json`.
