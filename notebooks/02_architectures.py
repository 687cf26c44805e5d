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
# # 2. The nine architectures
#
# **Learning goals.** The models the paper compares at matched capacity (its sections 3.3-3.7, Tables 1 and 3): how
# each turns a 4096-pixel spectrum into one number, how its ~4.8 million parameters are spent, how far one token or
# feature sees along the spectrum, and how fast it runs on the machine that executes this page.
#
# Every model is made by one call, `build_model(name, size)`; `size="paper"` gives the paper's configuration and
# the smaller sizes keep the same topology for CPU profiles.

# %% tags=["parameters"]
import os

profile = os.environ.get("SPECVIT_PROFILE", "quick")  # smoke | quick | cpu | paper
throughput_batch = 32

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from specvit_core import interactive
from specvit_core.attention import cls_attention, token_windows
from specvit_core.config import get_profile, runs_dir
from specvit_core.data import fixed_noisy, read_split
from specvit_core.instrument import mr_wavelength, resolving_power
from specvit_core.models import build_model, describe_models, list_models
from specvit_core.models.inspect import component_params, inference_throughput, layer_shapes, receptive_field
from specvit_core.models.transformer import WAVE_REFERENCE
from specvit_core.paper import CONVSTEM_LSTM_PARAMS
from specvit_core.report import profile_banner
from specvit_core.runs import is_evaluated, load_model
from specvit_core.simulate import ensure_dataset

display(Markdown(profile_banner(profile)))
size = get_profile(profile).model_size

# %% [markdown]
# ## 2.1 Parameter counts at the paper's size
#
# Our implementation of every architecture at `size="paper"`, next to the count the paper quotes (Table 3). The
# registry's test asserts that each lies within 5% of the paper's.

# %%
paper = pd.DataFrame(describe_models("paper")).set_index("name")
paper["ratio_to_paper"] = paper.n_params / paper.paper_params
display(paper[["family", "n_params", "paper_params", "ratio_to_paper", "description"]])

# %% [markdown]
# ## 2.2 Where the parameters go
#
# Parameters per component (class token and learned positions, tokenizer or CNN stem, BiLSTM bridge, encoder,
# head). For the hybrid ConvStem+LSTM the paper quotes the stem, the BiLSTM and the 5-layer ViT separately
# (`specvit_core.paper.CONVSTEM_LSTM_PARAMS`); they are shown beside ours (our bridge adds its 2h -> D projection and
# LayerNorm, eq. 12).

# %%
components = pd.DataFrame({name: component_params(build_model(name, "paper")) for name in list_models()}).T.fillna(0)
display(components.astype(int))
hybrid = pd.DataFrame({"ours": components.loc["convstem_lstm", list(CONVSTEM_LSTM_PARAMS)],
                       "paper": pd.Series(CONVSTEM_LSTM_PARAMS)})
display(hybrid.assign(ratio_to_paper=hybrid.ours / hybrid.paper).rename_axis("convstem_lstm"))

# %%
ax = (components / 1e6).plot.barh(stacked=True, figsize=(9, 4.5), colormap="tab10")
ax.set(xlabel="parameters [millions]", title="Parameter budget by component (size = paper)")
ax.invert_yaxis()
plt.tight_layout()

# %% [markdown]
# ## 2.3 Tensor shapes through the network
#
# Shapes after each top-level component for a batch of two spectra, at this profile's model size
# (`size` = the profile's `model_size`): tokens are (B, N, D), CNN features (B, C, L').

# %%
shapes = {name: layer_shapes(build_model(name, size)) for name in list_models()}
display(pd.DataFrame([(name, step, str(shape)) for name, rows in shapes.items() for step, shape in rows],
                     columns=["model", "after", "shape"]).set_index(["model", "after"]))

# %% [markdown]
# ## 2.4 Receptive fields
#
# How many pixels influence one token (for the tokenizers) or one position of the last CNN feature map, measured
# from gradients, and what that spans on the MR wavelength grid: Angstrom and resolution elements (FWHM = lambda / R,
# the median over the arm). A patch tokenizer's token covers a few resolution elements; the ConvStem's and the
# overlapping tokenizer's fields, about twice as wide, see a whole line profile with its wings.

# %%
wave = mr_wavelength()
dispersion = float(np.mean(np.diff(wave)))  # A per pixel (the grid is linear)
resolution = float(np.median(wave / resolving_power(wave)))  # A, FWHM
fields = pd.Series({name: receptive_field(build_model(name, "paper")) for name in list_models()}, name="pixels")
display(pd.DataFrame({"receptive field [pixels]": fields, "[A]": (fields * dispersion).round(1),
                      "[resolution elements]": (fields * dispersion / resolution).round(1)}))
print(f"a {fields['specvit']}-pixel patch spans {fields['specvit'] * dispersion:.1f} A, "
      f"{fields['specvit'] * dispersion / resolution:.1f} resolution elements of {resolution:.2f} A")

# %% [markdown]
# ## 2.5 The 256 patches over a spectrum
#
# SpecViT's tokenizer cuts the 4096 pixels into non-overlapping patches of P = 16 pixels (paper eq. 4:
# N = (L - P) / S + 1 = 256 tokens) and embeds each as one token: everything the encoder learns about the spectrum
# passes through these 256 tokens. Below, the patches over a test spectrum of this profile (the one of highest SNR
# among the first 64, noise included, as the networks read it).
#
# **Interactive: the tokenization visualizer.** Hover on a patch for its wavelength range and pixels; the buttons
# zoom on the gravity-sensitive lines, where a few patches hold a whole line. When this profile's SpecViT run
# exists (chapter 4), the patches are coloured by its CLS attention (averaged over layers, heads and the 64 test
# spectra, normalized to a maximum of 1, as in chapter 5's Figure 10) and the hover gives each patch's weight; on
# a first build of the book this chapter runs before any network is trained, and the patches alternate in two
# colours.

# %%
test = read_split(ensure_dataset(profile), "test", max_rows=64)
specvit_config = build_model("specvit", size).config
tokens = token_windows(test.wave, specvit_config["patch_size"], specvit_config["stride"])
noisy = fixed_noisy(test.flux, test.error)  # the inputs the networks are scored on
example = int(np.argmax(test.params.snr))
specvit_run = runs_dir(profile) / "specvit"
weights = cls_attention(specvit_run, noisy, test.wave).attention if is_evaluated(specvit_run) else None
star = test.params.iloc[example]
visualizer = interactive.tokenization_visualizer(
    test.wave, noisy[example], tokens, attention=weights,
    title=f"test spectrum (log g = {star.log_g:.2f}, SNR {star.snr:.0f}): ")
interactive.show(visualizer, div_id="tokenization-visualizer")

# %% [markdown]
# ## 2.6 Token positions: learned, or a function of wavelength
#
# Attention does not know the order of its tokens; positions added to the tokens tell it. The paper's transformers
# learn one position vector per token index (`pos_embedding`, (N + 1) x D parameters): pixel k of the input is
# assumed to lie at wavelength k of the MR grid. The option `build_model(name, size, positions="wavelength")` (every
# transformer and hybrid) replaces them, as SpectraFM encodes wavelength, by a fixed sinusoidal encoding of each
# token's centre wavelength (the Transformer's sin/cos pairs over geometric frequencies, the wavelength normalized
# over a fixed reference range), plus one learned position for the CLS token. A model applied to another window
# (a survey resampled to a shifted grid, chapter 7) is told the wavelengths of its pixels with
# `model.set_wavelength(wave)`; the token centres follow, and a checkpoint keeps them. Below: the encoding against
# wavelength, and the cosine similarity between the positions of two tokens for both kinds (learned: at
# initialization, or this profile's trained SpecViT when chapter 4 has run; no training happens here). Whether the
# wavelength encoding helps on a shifted window is measured by `benchmarks/bench_positions.py`, not in this chapter.

# %%
by_wavelength = build_model("specvit", size, positions="wavelength")
learned_source = "trained run" if is_evaluated(specvit_run) else "at initialization"
learned_model = load_model(specvit_run)[0] if is_evaluated(specvit_run) else build_model("specvit", size)
with torch.no_grad():
    encodings = {f"learned ({learned_source})": learned_model.position_encoding()[0, 1:].numpy(),
                 "wavelength": by_wavelength.position_encoding()[0, 1:].numpy()}
token_wave = by_wavelength.token_wave.numpy()
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
image = axes[0].pcolormesh(token_wave, np.arange(encodings["wavelength"].shape[1]), encodings["wavelength"].T,
                           cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].set(xlabel="token centre wavelength [A]", ylabel="encoding component (sin, cos pairs)",
            title=f"wavelength encoding (D = {encodings['wavelength'].shape[1]})")
fig.colorbar(image, ax=axes[0])
for ax, (kind, encoding) in zip(axes[1:], encodings.items()):
    unit = encoding / np.linalg.norm(encoding, axis=1, keepdims=True)
    image = ax.pcolormesh(token_wave, token_wave, unit @ unit.T, cmap="viridis", vmin=-1, vmax=1)
    ax.set(xlabel="token wavelength [A]", ylabel="token wavelength [A]", title=f"similarity of positions: {kind}")
    ax.set_aspect("equal")
fig.colorbar(image, ax=axes[2])
plt.tight_layout()

# %% [markdown]
# The wavelength encoding depends on the centre wavelength alone: told a window shifted by 64 pixels (4 tokens of
# 16 pixels, about 27 A), the model gives token i the position it gave token i + 4. Each tokenizer has its own
# centres: the middle of a patch (pixel 16i + 7.5 for SpecViT, 16i + 15.5 for OverlapViT's 32-pixel patches), and
# pixel 16i for the ConvStem, whose stride-2 convolutions centre its 31-pixel receptive field there. The reference
# range is fixed, so that a shifted window gets other positions:

# %%
dispersion_per_pixel = float(np.mean(np.diff(wave)))
shifted = build_model("specvit", size, positions="wavelength")
shifted.set_wavelength(wave + 64 * dispersion_per_pixel)
with torch.no_grad():
    mismatch = (shifted.position_encoding()[0, 1:-4] - by_wavelength.position_encoding()[0, 5:]).abs().max().item()
print(f"reference range {WAVE_REFERENCE[0]:.0f}-{WAVE_REFERENCE[1]:.0f} A; shifted by 64 pixels, token i's position "
      f"differs from the unshifted token i + 4's by at most {mismatch:.1e}")
display(pd.DataFrame({name: build_model(name, size, positions="wavelength").token_wave[:3].numpy()
                      for name in ("specvit", "overlap_vit", "convstem_vit")}, index=["token 0", "token 1", "token 2"])
        .round(2).rename_axis("centre wavelength [A]"))

# %% [markdown]
# ## 2.7 Inference throughput on this machine
#
# Spectra per second in eval mode at the paper's size, measured now on the machine that runs this page (the paper's
# Table 6 was measured on a GPU; chapter 5 compares with the baselines).

# %%
torch.manual_seed(0)
batch, n_batches = (4, 1) if profile == "smoke" else (throughput_batch, 3)
speed = pd.Series({name: inference_throughput(build_model(name, "paper"), batch=batch, n_batches=n_batches)
                   for name in list_models()}, name="spectra/s")
device = "GPU" if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
display(pd.DataFrame({"family": paper.family, "spectra/s": speed.round(1)}).sort_values("spectra/s"))
print(f"measured on {device}, batch {batch}, {n_batches} batch(es) after one warm-up")

# %% [markdown]
# ## About
#
# The implementations live in `specvit_core/models/` (one registry, shared blocks in `blocks.py`). The deep CNN's
# exact layer plan and the ConvStem's normalization are our reconstruction where the paper gives only the
# parameter budget and receptive field. `specvit models --size paper --json` prints the table of section 2.1. The
# visualizer of section 2.5 is `specvit_core.interactive.tokenization_visualizer` over the patches of
# `specvit_core.attention.token_windows`. The positions of section 2.6 are `SpecViT.position_encoding` and
# `specvit_core.models.transformer.wavelength_encoding`.
