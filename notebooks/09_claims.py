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
# # 9. The paper's claims, checked by this build
#
# **Learning goals.** Which claims of the paper (its abstract and section 6) the runs behind this book support, with
# the evidence and its 95% bootstrap interval, and where a profile is too small to say. Each verdict is computed by
# `specvit_core.claims` from the run folders of chapters 3-7 with one rule: **supported** when the interval lies
# above the claim's threshold, **not supported** when it lies below, **inconclusive** when it contains it, and
# **not testable at this profile** when the runs are missing or every network involved is still on the
# constant-prediction plateau. A claim of several comparisons is supported only when every one is, and refuted when
# one is. The paper's own value of each quantity (from `specvit_core.paper`) stands beside ours where the paper
# gives it.

# %% tags=["parameters"]
import os

profile = os.environ.get("SPECVIT_PROFILE", "quick")  # smoke | quick | cpu | paper
target = "gaia_rvs"  # the transfer target of claim 9 (chapter 07)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from specvit_core import fisher, runs
from specvit_core.attention import cls_attention
from specvit_core.claims import INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, claims_table
from specvit_core.data import fixed_noisy, read_manifest, read_split
from specvit_core.report import best_network, profile_banner, rounded
from specvit_core.simulate import SimulationConfig, ensure_dataset
from specvit_core.spectra import load_grid

display(Markdown(profile_banner(profile)))
pd.set_option("display.max_colwidth", 200)

# %% [markdown]
# ## 9.1 The inputs that are not run folders
#
# Claim 5 needs the Fisher ceiling at i = 22 (chapter 6, computed here again for that magnitude only, on the same
# ceiling grid and training-label variance) and claim 7 the CLS attention of the best transformer or hybrid run over
# the test spectra with their fixed noise (chapter 5, Figure 10).

# %%
dataset = ensure_dataset(profile)
grid = load_grid(read_manifest(dataset)["config"]["grid"])
logg_range = SimulationConfig.from_profile(profile).logg_range
axes = fisher.ceiling_axes(grid, stride=2 if profile == "smoke" else 1)
ceiling = fisher.ceiling_table(fisher.ceiling_points(grid, mags=[22.0], axes=axes,
                                                     label_variance=(logg_range[1] - logg_range[0]) ** 2 / 12))
run_dirs = runs.list_runs(profile)
attentive = best_network({n: d for n, d in run_dirs.items() if runs.run_family(d)[0] in ("transformer", "hybrid")})
attention = None
if attentive is not None:
    test = read_split(dataset, "test", max_rows=256)
    attention = cls_attention(run_dirs[attentive], fixed_noisy(test.flux, test.error), test.wave)
print(f"ceiling at i = 22: R²_max median {ceiling.r2_max_median.iloc[0]:.3f}; attention from: {attentive}")

# %% [markdown]
# ## 9.2 The claims table

# %%
claims = claims_table(profile, ceiling=ceiling, attention=attention, target=target)
counts = claims.verdict.value_counts()
glue("n_supported", int(counts.get(SUPPORTED, 0)), display=False)
glue("n_not_supported", int(counts.get(NOT_SUPPORTED, 0)), display=False)
glue("n_inconclusive", int(counts.get(INCONCLUSIVE, 0)), display=False)
glue("n_not_testable", int(counts.get(NOT_TESTABLE, 0)), display=False)
display(rounded(claims[["claim", "measured", "ci_low", "ci_high", "threshold", "paper", "verdict"]]))

# %% [markdown]
# Of the nine claims, at this profile {glue:text}`n_supported` are supported, {glue:text}`n_not_supported` not supported,
# {glue:text}`n_inconclusive` inconclusive and {glue:text}`n_not_testable` not testable. At `smoke` and `quick`
# most networks have not left the constant-prediction plateau (chapter 5), so most claims about networks are not
# testable there; run the book at `cpu` or `paper` to test them.
#
# What each row measured, and why a row could not be tested:

# %%
display(claims[["quantity", "reason"]])

# %% [markdown]
# ## 9.3 The evidence against each threshold
#
# Each testable claim's measured quantity minus its threshold, with the 95% interval; right of zero is the claim's
# side. The star is the paper's value of the same quantity, where the paper gives it.

# %%
shown = claims.dropna(subset=["measured"])
colors = {SUPPORTED: "tab:green", NOT_SUPPORTED: "tab:red", INCONCLUSIVE: "0.45"}
if shown.empty:
    display(Markdown(f"*No claim is testable at the {profile} profile: nothing to plot.*"))
else:
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.45 * len(shown)))
    for row, (number, claim) in enumerate(shown.iterrows()):
        spread = np.nan_to_num([[claim.measured - claim.ci_low], [claim.ci_high - claim.measured]])
        ax.errorbar(claim.measured - claim.threshold, row, xerr=spread, fmt="o", capsize=3,
                    color=colors.get(claim.verdict, "0.7"))
        if np.isfinite(claim.paper):
            ax.plot(claim.paper - claim.threshold, row, "r*", ms=9)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(yticks=range(len(shown)), yticklabels=[f"claim {n}: {q}" for n, q in zip(shown.index, shown.quantity)],
           xlabel="measured - threshold (interval: 95% bootstrap)", title=f"profile {profile}")
    ax.invert_yaxis()
    plt.tight_layout()

# %% [markdown]
# ## About
#
# Code: `specvit_core/claims.py` (the claims, the evidence and the verdict rule), `specvit_core/metrics.py` (the
# bootstrap), `specvit_core/tables.py` (the paired bootstrap of Table 9), `specvit_core/paper.py` (the paper's
# numbers). Tests: `tests/test_claims.py`, on run folders whose verdicts are known.
