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

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from specvit_core import fisher, interactive, noise, paper, simulate
from specvit_core.data import read_manifest, read_split
from specvit_core.instrument import MR_N_PIXELS, MR_WAVE_MAX, MR_WAVE_MIN, convolve_to_mr, resolving_power
from specvit_core.report import profile_banner
from specvit_core.spectra import load_grid, synthesis
from specvit_core.spectra.synthesis import SOLAR_CA_TRIPLET_EW, Synthesizer

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
# The default templates come from the embedded LTE synthesis (`specvit_core.spectra.synthesis`), built from real
# data and evaluated on the BOSZ axes, as the paper's BOSZ grid (Bohlin et al. 2017) is built with ATLAS/SYNTHE:
#
# * **atmospheres**: temperature, gas pressure and electron density on 80 depths from the atmosnet emulator of
#   C3K/ATLAS12 model atmospheres (Kurucz family, like BOSZ);
# * **lines**: the Gaia-ESO line list (Heiter et al. 2021), 8,371 neutral and singly ionized lines of 7000-9000 A
#   that reach 1 mA somewhere on the grid, plus the hydrogen Paschen lines; Saha-Boltzmann populations with
#   Irwin partition functions; Voigt profiles with ABO van der Waals, radiative and Stark damping;
# * **continuum**: H⁻ bound-free and free-free, H I, electron and Rayleigh scattering;
# * **transfer**: the formal solution of the plane-parallel transfer equation, flux by Gauss quadrature over angle;
# * **molecules**: TiO has no line data here; below 4250 K an approximate band absorption is applied, so the
#   coolest nodes (3500-4000 K) are the least realistic part of the grid; CN and other molecules are absent;
# * **extrapolated corners**: the nodes T_eff 6000-6250 K at log g 0 and 5250 K at log g 0-0.5 lie outside the C3K
#   atmospheres the emulator learned from, so their structure (and their very strong Ca II lines) is extrapolated.
#
# Microturbulence is 2 km/s for every star, as in BOSZ. Nothing in the synthesis was adjusted to a number of the
# paper. The grid is synthesized once (about ten minutes on two cores), convolved with the MR line-spread function
# and cached.

# %%
grid = load_grid(grid_source)
print(f"grid from {grid.source}: " + ", ".join(f"{a} {lo:g}..{hi:g} ({len(grid.axes[a])} nodes)"
                                             for a, (lo, hi) in grid.bounds.items()))

# %% [markdown]
# ### The Sun around the Ca II triplet
#
# The synthesis at the Sun's labels (T_eff = 5777 K, log g = 4.44, [M/H] = 0) at its full sampling
# (R = 200,000) and through the MR line-spread function, and the equivalent widths of the triplet lines alone next
# to the solar values, an independent check of the physics (nothing was fitted to them).

# %%
synthesizer = Synthesizer()
sun_flux, sun_cont = synthesizer.spectrum(5777.0, 4.44, 0.0)
sun_mr = convolve_to_mr(synthesizer.wave, sun_flux / sun_cont, grid.wave)
fig, ax = plt.subplots(figsize=(12, 3.5))
zoom = (synthesizer.wave > 8480) & (synthesizer.wave < 8680)
ax.plot(synthesizer.wave[zoom], (sun_flux / sun_cont)[zoom], lw=0.5, color="0.6", label="R = 200,000")
ax.plot(grid.wave, sun_mr, lw=1.2, color="tab:red", label="PFS MR")
ax.set(xlim=(8480, 8680), xlabel="wavelength [A]", ylabel="flux / continuum", title="The Sun (synthesis)")
ax.legend()
plt.tight_layout()

# %%
solar_cat = pd.DataFrame({"solar spectrum [A]": SOLAR_CA_TRIPLET_EW,
                          "synthesis [A]": {w: synthesizer.equivalent_width(5777.0, 4.44, 0.0, [w])
                                            for w in SOLAR_CA_TRIPLET_EW}})
solar_cat["ratio"] = solar_cat["synthesis [A]"] / solar_cat["solar spectrum [A]"]
display(solar_cat.rename_axis("Ca II line [A]").round(2))

# %% [markdown]
# ### A giant and a dwarf at the same T_eff and [M/H]
#
# T_eff = 4750 K, [M/H] = 0 at log g = 2.5 (a red-clump giant) and 4.5 (a K dwarf), from the grid, through the MR
# arm: the whole window and three gravity-sensitive regions.

# %%
pair = grid.interpolate([[4750.0, 2.5, 0.0], [4750.0, 4.5, 0.0]])
pair = pair / np.median(pair, axis=1, keepdims=True)
regions = {"whole window": (7100, 8850), "Na I 8183/8195": (8160, 8220), "Ca II triplet": (8480, 8680),
           "Mg I 8807": (8780, 8830)}
fig, axes = plt.subplots(2, 2, figsize=(12, 6))
for ax, (title, (lo, hi)) in zip(axes.ravel(), regions.items()):
    m = (grid.wave > lo) & (grid.wave < hi)
    for spec, label, color in zip(pair, ("giant, log g = 2.5", "dwarf, log g = 4.5"), ("tab:red", "tab:blue")):
        ax.plot(grid.wave[m], spec[m], lw=0.8, color=color, label=label)
    ax.set(title=title, xlabel="wavelength [A]", ylabel="flux / median")
axes[0, 0].legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# **Interactive.** A giant, a subgiant and a dwarf (log g = 1.5, 3.5, 4.5) at the same T_eff = 4750 K and
# [M/H] = 0, continuum-normalized, with the gravity-sensitive lines named: Ca II triplet, Na I doublet, Mg I 8807,
# the K I resonance doublet and the hydrogen Paschen lines the synthesis includes (Pa 13, 15 and 16 fall on the
# Ca II lines). Drag to zoom, double-click to reset, or jump to a species with the buttons.

# %%
explorer = interactive.spectrum_explorer(grid, teff=4750.0, mh=0.0, loggs=(1.5, 3.5, 4.5))
interactive.show(explorer, div_id="spectrum-explorer")

# %% [markdown]
# ### What changes with log g, species by species
#
# The derivative of the continuum-normalized MR spectrum with respect to log g at the midpoint (T_eff = 4750 K,
# log g = 3.5, [M/H] = 0), computed from each species' lines alone, and each species' share of the summed squared
# response (equal noise in every pixel; chapter 6 weighs it with the real noise). Ionized lines (Ca II, Fe II,
# Ti II) strengthen toward low gravity; pressure-broadened neutral lines (Na I, Mg I) toward high gravity.

# %%
response = synthesis.gravity_response_by_species(synthesizer, 4750.0, 3.5, 0.0)
share = pd.Series({k: float(np.sum(v**2)) for k, v in response.items()})
share = (share / share.sum()).sort_values(ascending=False)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1, 2]})
share.plot.barh(ax=axes[0], color="0.4")
axes[0].set(xlabel="share of the squared log g response", title="by species")
axes[0].invert_yaxis()
for name in share.index[:4]:
    axes[1].plot(grid.wave, response[name], lw=0.6, label=name)
axes[1].set(xlabel="wavelength [A]", ylabel="d(F/F_c) / d log g [1/dex]", title="the four largest")
axes[1].legend(fontsize=8, ncol=4)
plt.tight_layout()

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
# magnitudes, for median conditions (`noise.MEDIAN_CONDITIONS`, the midpoints of the Table 2 ranges, printed below).
# Sky emission lines and the telluric bands show as spikes; the relative error grows toward the red where the
# throughput falls.

# %%
print("median conditions: " + ", ".join(f"{k} {v:g}" for k, v in noise.MEDIAN_CONDITIONS.items()))
mags = np.array([18.0, 19.0, 20.0, 21.0, 22.0, 23.0])
cond = {k: np.full(mags.size, v) for k, v in noise.MEDIAN_CONDITIONS.items()}
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
# observing conditions drawn as in the datasets, next to the values the paper quotes (its Table 13). Nothing in the
# noise model is fitted to these values: its variance is the paper's eq. G.4 (object + sky photon noise + read noise
# and dark current), its instrument, atmosphere and sky come from the PFS exposure-time calculator, so
# `ratio_to_paper` compares two independent routes to the same SNR.

# %%
n_snr = {"smoke": 100, "quick": 400}.get(profile, 1000)
snr_table = simulate.snr_by_magnitude(grid, mags=fisher.MAGNITUDES, n=n_snr,
                                      seed=seed)
display(snr_table.round(3))

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ax.fill_between(snr_table.mag_i, snr_table.snr_p10, snr_table.snr_p90, alpha=0.3, label="10-90% of spectra")
ax.semilogy(snr_table.mag_i, snr_table.snr_median, "o-", label="this simulator (median)")
ax.semilogy(list(paper.SNR_BY_MAG), list(paper.SNR_BY_MAG.values()), "k*", ms=10, label="paper")
ax.set(xlabel="i-band magnitude [AB]", ylabel="median per-pixel SNR")
ax.legend()
plt.tight_layout()

# %% [markdown]
# **Interactive: the SNR explorer.** One red-clump giant (T_eff = 4750 K, log g = 2.5, [M/H] = -0.5) observed under
# the median conditions at i = 19.0 to 23.0 mag: move the slider to watch the spectrum sink into the noise. Each
# step is labelled with the median per-pixel SNR at that magnitude; the noise is one seeded draw of the package's
# chain (`noise.observe`, `noise.median_normalize`, `noise.noisy_spectrum`), the same draw scaled by each
# magnitude's sigma.

# %%
explorer = interactive.snr_explorer(grid, labels=(4750.0, 2.5, -0.5), seed=seed)
interactive.show(explorer, div_id="snr-explorer")

# %% [markdown]
# ## 1.5 Example spectra (Figure 4)
#
# One star (T_eff = 4750 K, log g = 2.5, [M/H] = -0.5, a red-clump giant) observed at four magnitudes: the clean
# template (grey) under one noisy realization drawn from the per-pixel sigma as the training inputs are (paper
# eq. 3, negative flux clipped at 0).

# %%
show_mags = np.array([20.5, 21.5, 22.0, 22.5])
cond4 = {k: np.full(show_mags.size, v) for k, v in noise.MEDIAN_CONDITIONS.items()}
clean, sigma4 = noise.observe(grid.wave, np.repeat(grid.interpolate([[4750.0, 2.5, -0.5]]), 4, axis=0), show_mags, cond4)
clean, sigma4, _ = noise.median_normalize(clean, sigma4)
noisy = noise.noisy_spectrum(clean, sigma4, np.random.default_rng(seed))
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
manifest = read_manifest(dataset)
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

# %% [markdown]
# **Interactive: stellar types.** The test split's labels on the T_eff - log g plane, coloured by the stellar types
# of the paper's Tables 5 and 8 (giants log g < 2.5, subgiants 2.5-4.0, dwarfs log g > 4.0); hover for a star's
# labels, magnitude and SNR.

# %%
chart = interactive.stellar_type_chart(splits["test"].params, title=f"Test split, profile {profile}")
interactive.show(chart, div_id="stellar-types")

# %%
summary = pd.concat({name: s.params[["mag", "snr"]].describe(percentiles=[0.1, 0.5, 0.9]).T for name, s in splits.items()})
display(summary.round(2))

# %% [markdown]
# ## About
#
# The embedded templates are an LTE synthesis in place of BOSZ (Bohlin et al. 2017), which the paper uses; pass
# `grid_source` with a folder of BOSZ files (`.asc`, `.asc.bz2` or `.fits`) to use the real grid. Their physics is
# tested against solar equivalent widths and textbook trends in `tests/test_synthesis.py`. The noise model's
# instrument, atmosphere and sky constants were fitted once to PFS exposure-time-calculator outputs and its variance
# is the paper's eq. G.4, with nothing fitted to the paper's SNR values; see `specvit_core/noise.py`. Data of this
# page: `data/<profile>/` with its `manifest.json`.
