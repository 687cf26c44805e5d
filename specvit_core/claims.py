"""The paper's checkable claims, each with the evidence the runs of one profile give and a verdict computed from it.

Every claim is a comparison that the claim says is positive: a difference of R^2 (or of sigma_robust, or of slopes)
between two runs, or a ratio against a threshold. Its evidence is the measured value with a bootstrap interval over
the test spectra (appendix I), the paired bootstraps of :mod:`specvit_core.metrics` and
:func:`specvit_core.tables.significance` where two runs predicted the same spectra. :func:`verdict` turns the
interval into a word, so no verdict is ever typed:

- "supported": the interval lies above the threshold (it excludes the opposite of the claim);
- "not supported": the interval lies below it (it excludes the claim);
- "inconclusive": the interval contains it (the runs cannot tell);
- "not testable at this profile": the runs are missing, or none of the networks involved left the
  constant-prediction plateau (the rule of :func:`specvit_core.report.plateau_warning`).

A claim made of several comparisons (a ranking) is supported when every comparison is, and not supported when any
one is refuted; its row shows the decisive comparison and lists the others.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from . import paper, runs, tables
from .benchmark import finetune_run_name, get_plan, scaling_run_name, swap_run_name
from .config import get_profile
from .metrics import bootstrap_ci, paired_bootstrap, r2
from .models import FAMILIES, describe_models
from .report import best_network, plateau_warning
from .transfer import CA_II_TRIPLET, finetuned_name, transfer_dir
from .transfer import PLANS as TRANSFER_PLANS

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
NOT_TESTABLE = "not testable at this profile"
#: Coverage of every interval (that of :func:`specvit_core.tables.significance`, the bootstrap's default).
CI = 0.95
#: Claim 5: the magnitude of the abstract's SNR ~ 4.6 (``paper.SNR_BY_MAG``), and the half width of its bin of test
#: spectra (chapter 06's bins of Table 13).
CEILING_MAG, CEILING_HALF_BIN = 22.0, 0.25
#: Claim 9: the simulated target in APOGEE's role (chapter 07).
TRANSFER_TARGET = "gaia_rvs"
BASELINE_RANKING = ("lightgbm", "ridge", "template")
FAMILY_RANKING = ("recurrent", "transformer", "cnn")
ATTENTIVE = ("transformer", "hybrid")  # the families with attention layers (Figure 10)
SWAP = {"specvit": "transformer", "bilstm": "recurrent"}  # Table 12's architectures and their own configurations

CLAIMS = {
    1: "Deep networks rank above LightGBM, LightGBM above Ridge and Ridge above template fitting in test R² "
       "(abstract, section 6; Table 3)",
    2: "At matched N, recurrent networks are at least as good as transformers, and transformers as CNNs (section 6; "
       "Table 3, the best run of each family; the hybrids are not part of the claim)",
    3: "The best network beats LightGBM beyond the test-set noise (Tables 9 and 18, paired bootstrap)",
    4: "The transformer is robust to training with the BiLSTM's configuration, the BiLSTM is not with the "
       "transformer's (Table 12, Figure 8)",
    5: f"At i = {CEILING_MAG:g} (SNR ≈ {paper.SNR_BY_MAG[CEILING_MAG]}) the best network's R² approaches the Fisher "
       "ceiling, as closely as the paper's (abstract, section 6; Table 13)",
    6: "Networks gain more from more training spectra than LightGBM (Figure 9, Table 10)",
    7: "The transformers' attention concentrates on the Ca II triplet (Figure 10)",
    8: "Pre-trained networks fine-tuned at i ≈ 19 beat the same networks trained there from scratch (section 5.1.5, "
       "Table 4)",
    9: "Networks pre-trained on synthetic spectra and fine-tuned on the survey beat LightGBM trained on the survey "
       "alone in σ_robust (section 5.2, Table 7; the paper's target is APOGEE)",
}


class NotTestable(Exception):
    """The runs a claim needs are missing at this profile, or none of its networks left the plateau."""


@dataclass(frozen=True)
class Evidence:
    """One measured comparison: a value with its interval, the threshold the claim must exceed, the paper's value."""

    quantity: str
    value: float
    low: float
    high: float
    paper: float | None = None  # the same quantity from paper.py; None where paper.py holds none
    threshold: float = 0.0
    note: str = ""

    @classmethod
    def from_interval(cls, quantity: str, interval: dict, **fields) -> Evidence:
        """Evidence from a ``{"value", "low", "high"}`` dict of :mod:`specvit_core.metrics`."""
        return cls(quantity, interval["value"], interval["low"], interval["high"], **fields)

    def __str__(self) -> str:
        return f"{self.quantity} = {self.value:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


@dataclass(frozen=True)
class ClaimRow:
    """One row of :func:`claims_table`; the numbers are NaN where the claim is not testable."""

    number: int
    claim: str
    quantity: str
    paper: float
    measured: float
    ci_low: float
    ci_high: float
    threshold: float
    verdict: str
    reason: str


def verdict(low: float, high: float, threshold: float = 0.0) -> str:
    """The verdict of a claim whose quantity must exceed ``threshold``, from its confidence interval.

    Parameters
    ----------
    low, high : float
        The interval of the measured quantity.
    threshold : float
        The value the claim says the quantity exceeds (0 for a difference).

    Returns
    -------
    str
        "supported" when the interval lies above ``threshold``, "not supported" when it lies below, else
        "inconclusive" (also for NaN bounds).
    """
    if low > threshold:
        return SUPPORTED
    if high < threshold:
        return NOT_SUPPORTED
    return INCONCLUSIVE


# ------------------------------------------------------------------------------------------------ runs

def _require_runs(profile: str, names, root: Path, what: str) -> dict[str, Path]:
    """The evaluated runs ``names`` under ``root``; NotTestable naming those missing."""
    found = runs.list_runs(profile, list(names), root)
    missing = [n for n in names if n not in found]
    if missing:
        raise NotTestable(f"{what} not run at this profile (missing: {', '.join(missing)})")
    return found


def _require_learned(run_dirs: dict, what: str) -> None:
    """NotTestable when no run of ``run_dirs`` left the constant-prediction plateau (report.plateau_warning)."""
    r2_values = [runs.read_metrics(folder)["r2"] for folder in run_dirs.values()]
    if plateau_warning(r2_values, what):
        raise NotTestable(f"no run of {what} left the constant-prediction plateau (best test R² "
                          f"{pd.Series(r2_values, dtype=float).max():.3f}; report.plateau_warning)")


def _networks(run_dirs: dict, families=FAMILIES) -> dict[str, Path]:
    """The runs whose recorded family is one of ``families``."""
    return {name: folder for name, folder in run_dirs.items() if runs.run_family(folder)[0] in families}


def _learned_best(run_dirs: dict, families=FAMILIES) -> str:
    """The best network of ``families`` among the main runs; NotTestable when none exists or none learned."""
    networks = _networks(run_dirs, families)
    if not networks:
        raise NotTestable(f"no main run of a {' or '.join(families)} network at this profile")
    _require_learned(networks, "the main networks")
    return best_network(networks)


def _aligned(run_dirs: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and predictions of runs that predicted the same test spectra, in the same order."""
    predictions = {name: runs.read_predictions(folder) for name, folder in run_dirs.items()}
    first, reference = next(iter(predictions.items()))
    for name, p in predictions.items():
        if not np.array_equal(p.true.to_numpy(), reference.true.to_numpy()):
            raise ValueError(f"{name!r} and {first!r} were scored on different test spectra; cannot pair them")
    return reference.true.to_numpy(), {name: p.pred.to_numpy() for name, p in predictions.items()}


def _joint_interval(run_dirs: dict, statistic, n_boot: int, seed: int) -> dict:
    """Bootstrap of ``statistic(y_true, {name: pred})`` over resamples of the test spectra all runs share.

    Every run is scored on the same resampled spectra (the paired bootstrap of more than two runs); the resampling
    is :func:`~specvit_core.metrics.bootstrap_ci`'s, applied to the row numbers.
    """
    y_true, predictions = _aligned(run_dirs)
    rows = np.arange(y_true.size, dtype=float)

    def on_rows(resampled, _):
        i = resampled.astype(int)
        return statistic(y_true[i], {name: p[i] for name, p in predictions.items()})

    return bootstrap_ci(rows, rows, on_rows, n_boot=n_boot, ci=CI, seed=seed)


# ------------------------------------------------------------------------------------------------ comparisons

@cache
def _paper_best_r2(families: tuple) -> float:
    """The best Table 3 R^2 among the paper's networks of ``families``."""
    family = {row["name"]: row["family"] for row in describe_models("smoke")}
    return max(row["r2"] for name, row in paper.TABLE3.items() if family.get(name) in families)


def _r2_difference(run_dirs: dict, a: str, b: str, paper_value, n_boot: int, seed: int) -> Evidence:
    """R^2(a) - R^2(b) with the paired bootstrap of Tables 9 and 18 (:func:`specvit_core.tables.significance`)."""
    sig = tables.significance(run_dirs, a, b, n_boot=n_boot, seed=seed)
    return Evidence(f"R² {a} − R² {b}", sig["delta_r2"], sig["delta_r2_low"], sig["delta_r2_high"], paper_value,
                    note=f"one-sided p = {sig['p_value']:.3g}")


def _all_of(evidence: list[Evidence]) -> Evidence:
    """A claim needing every comparison: the decisive one (a refuted one first, else the weakest), noting the rest."""
    decisive = min(evidence, key=lambda e: (e.high >= e.threshold, e.low - e.threshold))
    others = "; ".join(str(e) for e in evidence if e is not decisive)
    return replace(decisive, note=f"{decisive.note}; also {others}" if others else decisive.note)


def _ranking(run_dirs: dict, chain, paper_r2, n_boot: int, seed: int) -> Evidence:
    """Claims 1 and 2: R^2 decreases along ``chain``; one paired comparison per neighbouring pair."""
    return _all_of([_r2_difference(run_dirs, a, b, pa - pb, n_boot, seed)
                    for (a, b), (pa, pb) in zip(pairwise(chain), pairwise(paper_r2))])


# ------------------------------------------------------------------------------------------------ the claims

def _method_ranking(main: dict, n_boot: int, seed: int) -> Evidence:
    """Claim 1: best network > LightGBM > Ridge > template fitting."""
    best = _learned_best(main)
    missing = [b for b in BASELINE_RANKING if b not in main]
    if missing:
        raise NotTestable(f"the baselines of Table 3 not run at this profile (missing: {', '.join(missing)})")
    paper_r2 = [_paper_best_r2(FAMILIES), *(paper.TABLE3[b]["r2"] for b in BASELINE_RANKING)]
    return _ranking(main, (best, *BASELINE_RANKING), paper_r2, n_boot, seed)


def _family_ranking(main: dict, n_boot: int, seed: int) -> Evidence:
    """Claim 2: the best recurrent >= the best transformer >= the best CNN, all trained on the profile's N."""
    _learned_best(main)
    best = {family: best_network(_networks(main, (family,))) for family in FAMILY_RANKING}
    missing = [family for family, name in best.items() if name is None]
    if missing:
        raise NotTestable(f"no main run of the {', '.join(missing)} family at this profile")
    paper_r2 = [_paper_best_r2((family,)) for family in FAMILY_RANKING]
    return _ranking(main, list(best.values()), paper_r2, n_boot, seed)


def _beats_lightgbm(main: dict, n_boot: int, seed: int) -> Evidence:
    """Claim 3: the best network's R^2 exceeds LightGBM's on the same test spectra."""
    best = _learned_best(main)
    if "lightgbm" not in main:
        raise NotTestable("LightGBM not run at this profile")
    paper_value = _paper_best_r2(FAMILIES) - paper.TABLE3["lightgbm"]["r2"]
    return _r2_difference(main, best, "lightgbm", paper_value, n_boot, seed)


def _swap_names(arch: str) -> tuple[str, str]:
    """Table 12's run names of ``arch`` with its own and with the other architecture's configuration."""
    return swap_run_name(arch, SWAP[arch]), swap_run_name(arch, _other_family(arch))


def _swap_robustness(profile: str, n_boot: int, seed: int) -> Evidence:
    """Claim 4: the BiLSTM loses more R^2 than SpecViT when each trains with the other's configuration."""
    names = [n for arch in SWAP for n in _swap_names(arch)]
    found = _require_runs(profile, names, runs.benchmark_dir(profile), "Table 12's cross-configuration runs")
    _require_learned(found, "the cross-configuration experiment")

    def loss(y, predictions, arch):
        own, other = _swap_names(arch)
        return r2(y, predictions[own]) - r2(y, predictions[other])

    interval = _joint_interval(found, lambda y, p: loss(y, p, "bilstm") - loss(y, p, "specvit"), n_boot, seed)
    return Evidence.from_interval("R² lost by the BiLSTM − R² lost by SpecViT with the other's configuration",
                                  interval, paper=_paper_swap_loss("bilstm") - _paper_swap_loss("specvit"))


def _paper_swap_loss(arch: str) -> float:
    """Table 12: the R^2 ``arch`` lost with the other family's configuration."""
    own, other = (paper.TABLE12[arch, label]["r2"] for label in ("native", f"{_other_family(arch)} config"))
    return own - other


def _other_family(arch: str) -> str:
    """Table 12: the family whose configuration ``arch`` was trained with in the swap."""
    return next(family for family in SWAP.values() if family != SWAP[arch])


def _ceiling_approach(main: dict, ceiling: pd.DataFrame | None, n_boot: int, seed: int) -> Evidence:
    """Claim 5: the best network's R^2 at i = 22 over the ceiling there exceeds the paper's ratio."""
    if ceiling is None:
        raise NotTestable("no Fisher ceiling given (chapter 06's fisher.ceiling_table)")
    at = ceiling.loc[np.isclose(ceiling["mag"], CEILING_MAG), "r2_max_median"]
    if at.empty or not at.iloc[0] > 0:
        raise NotTestable(f"the ceiling table has no positive R²_max at i = {CEILING_MAG:g}")
    best = _learned_best(main)
    pred = runs.read_predictions(main[best])
    in_bin = pred[(pred.mag >= CEILING_MAG - CEILING_HALF_BIN) & (pred.mag < CEILING_MAG + CEILING_HALF_BIN)]
    if len(in_bin) < 2:
        raise NotTestable(f"fewer than 2 test spectra within {CEILING_HALF_BIN} mag of i = {CEILING_MAG:g}")
    limit = float(at.iloc[0])
    interval = bootstrap_ci(in_bin.true, in_bin.pred, "r2", n_boot=n_boot, ci=CI, seed=seed)
    paper_ratio = paper.TABLE13_R2["specvit"][CEILING_MAG] / paper.CEILING_3D[CEILING_MAG]
    return Evidence.from_interval(
        f"R² of {best} at i = {CEILING_MAG:g} / R²_max", {k: interval[k] / limit for k in ("value", "low", "high")},
        paper=paper_ratio, threshold=paper_ratio,
        note=f"{len(in_bin)} test spectra in i = {CEILING_MAG:g} ± {CEILING_HALF_BIN}; R²_max {limit:.3f}; "
             "the paper's ratio: SpecViT's Table 13 R² over its 3D ceiling")


def _scaling_series(profile: str, main: dict, name: str, pattern: str) -> dict[str, Path]:
    """One model's runs of the scaling experiment: its main run and the benchmark folders matching ``pattern``."""
    bench = runs.benchmark_dir(profile)
    smaller = {p.relative_to(bench).as_posix(): p for p in sorted(bench.glob(pattern)) if runs.is_evaluated(p)}
    return {**({name: main[name]} if name in main else {}), **smaller}


def _slope(y: np.ndarray, predictions: dict, n_train: dict) -> float:
    """Least-squares slope of test R^2 against log10 N over the runs of ``n_train`` (run name -> N)."""
    scores = [r2(y, predictions[name]) for name in n_train]
    return float(np.polyfit(np.log10(list(n_train.values())), scores, 1)[0])


def _scaling(profile: str, main: dict, n_boot: int, seed: int) -> Evidence:
    """Claim 6: R^2 rises faster with log N for the best network of the scaling experiment than for LightGBM."""
    series = {arch: _scaling_series(profile, main, arch, scaling_run_name(arch, "[0-9]*")) for arch in get_plan(profile).scaling_archs}
    series = {arch: s for arch, s in series.items() if arch in s and len(s) > 1}
    lightgbm = _scaling_series(profile, main, "lightgbm", scaling_run_name("lightgbm", "[0-9]*"))
    if not series or "lightgbm" not in lightgbm or len(lightgbm) < 2:
        raise NotTestable("the scaling experiment (Figure 9) not run at this profile")
    arch = best_network({a: main[a] for a in series})
    _require_learned(series[arch], f"{arch}'s scaling runs")
    n_network, n_lightgbm = (runs.run_summary(s)["n_train"].astype(int).to_dict() for s in (series[arch], lightgbm))

    def steeper(y, predictions):
        return _slope(y, predictions, n_network) - _slope(y, predictions, n_lightgbm)

    interval = _joint_interval({**series[arch], **lightgbm}, steeper, n_boot, seed)
    return Evidence.from_interval(f"slope of R² against log10 N: {arch} − LightGBM", interval,
                                  paper=_paper_slope("specvit") - _paper_slope("lightgbm"),
                                  note=f"N = {sorted(n_network.values())} and {sorted(n_lightgbm.values())}; the "
                                       "paper's value is SpecViT's (Table 10, N = 5e4 to 1e6)")


def _paper_slope(model: str) -> float:
    """Least-squares slope of Table 10's R^2 against log10 N over the sizes that give ``model``."""
    sizes = [n for n, row in paper.TABLE10.items() if model in row]
    return float(np.polyfit(np.log10(sizes), [paper.TABLE10[n][model] for n in sizes], 1)[0])


def _ratio_interval(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> dict:
    """mean(a) / mean(b) with a percentile interval, resampling each group on its own (two independent samples)."""
    rng = np.random.default_rng(seed)
    dist = [rng.choice(a, a.size).mean() / rng.choice(b, b.size).mean() for _ in range(n_boot)]
    low, high = np.quantile(dist, [(1 - CI) / 2, (1 + CI) / 2])
    return {"value": a.mean() / b.mean(), "low": float(low), "high": float(high)}


def _attention_on_triplet(main: dict, attention: pd.DataFrame | None, n_boot: int, seed: int) -> Evidence:
    """Claim 7: tokens holding a Ca II triplet line get more CLS attention, on average, than the other tokens."""
    if attention is None:
        raise NotTestable("no attention table given (chapter 05's attention.cls_attention)")
    _learned_best(main, ATTENTIVE)
    on = np.zeros(len(attention), bool)
    for centre in CA_II_TRIPLET:
        on |= ((attention.wave_start <= centre) & (attention.wave_end >= centre)).to_numpy()
    if on.all() or not on.any():
        raise NotTestable("the tokens do not split into Ca II triplet tokens and others")
    weights = attention.attention.to_numpy(dtype=float)
    return Evidence.from_interval(
        "mean attention on Ca II triplet tokens / elsewhere", _ratio_interval(weights[on], weights[~on], n_boot, seed),
        threshold=1.0, note=f"{on.sum()} of {on.size} tokens hold a triplet line; tokens resampled within each group")


def _finetuning(profile: str, n_boot: int, seed: int) -> Evidence:
    """Claim 8: every fine-tuned mag-19 run beats its from-scratch twin in R^2 on the mag-19 test spectra.

    A pair whose two runs both sit on the plateau compares two constant predictions and is left out (named)."""
    archs = get_plan(profile).finetune_archs
    pairs = [(finetune_run_name(a, "fine-tuned"), finetune_run_name(a, "from scratch")) for a in archs]
    found = _require_runs(profile, [n for pair in pairs for n in pair], runs.benchmark_dir(profile),
                          "Table 4's mag-19 runs")
    _require_learned(found, "the mag-19 experiment")
    flat = [a for a, pair in zip(archs, pairs)
            if plateau_warning([runs.read_metrics(found[name])["r2"] for name in pair], a)]
    evidence = _all_of([_r2_difference(found, *pair, None, n_boot, seed)
                        for a, pair in zip(archs, pairs) if a not in flat])
    return replace(evidence, note=f"{evidence.note}; left out, both runs on the plateau: {', '.join(flat)}") \
        if flat else evidence


def _transfer_gain(profile: str, target: str, n_boot: int, seed: int) -> Evidence:
    """Claim 9: every fine-tuned network of Experiment A has a smaller sigma_robust than target-only LightGBM."""
    archs = TRANSFER_PLANS[get_profile(profile).name].archs
    names = {arch: finetuned_name(arch) for arch in archs}
    found = _require_runs(profile, [*names.values(), "lightgbm"], transfer_dir(profile, target),
                          f"Table 7's runs on {target}")
    _require_learned({n: found[n] for n in names.values()}, f"the networks fine-tuned on {target}")
    y, predictions = _aligned(found)
    reference = paper.TABLE7["lightgbm"]["sigma_robust"]
    return _all_of([Evidence.from_interval(
        f"σ_robust LightGBM − σ_robust {name}",
        paired_bootstrap(y, predictions["lightgbm"], predictions[name], "sigma_robust", n_boot=n_boot, ci=CI,
                         seed=seed),
        paper=reference - paper.TABLE7[arch]["sigma_robust"] if arch in paper.TABLE7 else None)
        for arch, name in names.items()])


# ------------------------------------------------------------------------------------------------ the table

def _reason(evidence: Evidence, word: str) -> str:
    """Why the verdict: where the interval lies relative to the threshold, and the evidence's note."""
    where = {SUPPORTED: "lies above", NOT_SUPPORTED: "lies below", INCONCLUSIVE: "contains"}[word]
    text = f"the {CI:.0%} interval [{evidence.low:.3f}, {evidence.high:.3f}] {where} {evidence.threshold:g}"
    return f"{text}; {evidence.note}" if evidence.note else text


def _row(number: int, check) -> ClaimRow:
    """The row of one claim: ``check()`` gives its Evidence or raises NotTestable."""
    try:
        e = check()
    except NotTestable as why:
        return ClaimRow(number, CLAIMS[number], "", *[np.nan] * 5, NOT_TESTABLE, str(why))
    word = verdict(e.low, e.high, e.threshold)
    return ClaimRow(number, CLAIMS[number], e.quantity, np.nan if e.paper is None else e.paper, e.value, e.low,
                    e.high, e.threshold, word, _reason(e, word))


def claims_table(profile: str, ceiling: pd.DataFrame | None = None, attention: pd.DataFrame | None = None,
                 target: str = TRANSFER_TARGET, n_boot: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Every checkable claim of the paper with the evidence of one profile's runs and its computed verdict.

    Parameters
    ----------
    profile : str
        Profile whose runs (``runs/<profile>/``) are read.
    ceiling : pandas.DataFrame, optional
        Chapter 06's ceiling per magnitude (:func:`specvit_core.fisher.ceiling_table`); claim 5 needs it.
    attention : pandas.DataFrame, optional
        Chapter 05's CLS attention per token (:func:`specvit_core.attention.cls_attention`); claim 7 needs it.
    target : str
        The transfer target of claim 9 (its runs in ``runs/<profile>/transfer/<target>/``).
    n_boot : int, optional
        Bootstrap resamples (default: the profile's benchmark plan's).
    seed : int
        Seed of every bootstrap.

    Returns
    -------
    pandas.DataFrame
        Index ``number`` (1-9); columns claim, quantity (what was measured), paper (the same quantity from
        :mod:`specvit_core.paper`; NaN where it holds none), measured, ci_low, ci_high (95% bootstrap interval),
        threshold (what the quantity must exceed), verdict ("supported", "not supported", "inconclusive" or
        "not testable at this profile") and reason.

    Raises
    ------
    ValueError
        For an unknown profile, or runs to be paired that predicted different test spectra.
    """
    n_boot = n_boot or get_plan(profile).n_boot
    main = runs.list_runs(profile)
    boot = dict(n_boot=n_boot, seed=seed)
    checks = {
        1: lambda: _method_ranking(main, **boot),
        2: lambda: _family_ranking(main, **boot),
        3: lambda: _beats_lightgbm(main, **boot),
        4: lambda: _swap_robustness(profile, **boot),
        5: lambda: _ceiling_approach(main, ceiling, **boot),
        6: lambda: _scaling(profile, main, **boot),
        7: lambda: _attention_on_triplet(main, attention, **boot),
        8: lambda: _finetuning(profile, **boot),
        9: lambda: _transfer_gain(profile, target, **boot),
    }
    return pd.DataFrame([asdict(_row(number, check)) for number, check in checks.items()]).set_index("number")
