"""Predictive uncertainty of a trained run: Monte-Carlo noise marginalization and the calibration of its sigmas.

The paper predicts one number per star (section 3.7). Two uncertainties can be set beside it:

- the Gaussian NLL head (``TrainConfig(loss="gaussian_nll")``, :func:`specvit_core.train.gaussian_nll`), which
  predicts a sigma from the one noisy spectrum it sees (``pred_sigma`` in the run's predictions);
- Monte-Carlo noise marginalization (:func:`mc_noise_predictions`), which predicts every star of a simulated
  split under K realizations of the noise of eq. 3 (seeds apart from the fixed test seed 42): the spread of
  these predictions is how far the observational noise alone moves the estimate, the dispersion that the
  expected-risk objective of eq. 15 averages over.

:func:`calibration_table` scores any set of such sigmas on the same predictions with the metrics of
:mod:`specvit_core.metrics`: coverage of the 68% and 95% intervals, sharpness, and the residual scatter beside them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import runs
from .config import require_integer
from .data import FIXED_NOISE_SEED, NoisySpectra, flux_is_observed, read_split
from .metrics import regression_metrics, uncertainty_metrics
from .train import TrainConfig, predict_label

MC_DRAWS = {"smoke": 4, "quick": 16, "cpu": 32, "paper": 32}  # noise draws of the chapters, per profile
MC_FIRST_SEED = 1000  # draw k uses noise seed MC_FIRST_SEED + k (the test split's fixed seed is 42)


@dataclass
class MCPrediction:
    """Predictions of one split under K noise realizations (:func:`mc_noise_predictions`).

    Parameters
    ----------
    true : ndarray, shape (N,)
        The labels.
    draws : ndarray, shape (K, N)
        The predicted label of every star under each noise draw (physical units).
    sigma_draws : ndarray, shape (K, N) or None
        The Gaussian NLL head's sigma under each draw; None for a run without the head.
    seeds : tuple of int
        The noise seed of each draw.
    params : pandas.DataFrame
        The split's parameters (labels, SNR, magnitude, ...), one row per star.
    """

    true: np.ndarray
    draws: np.ndarray
    sigma_draws: np.ndarray | None
    seeds: tuple[int, ...]
    params: pd.DataFrame

    @property
    def mean(self) -> np.ndarray:
        """The prediction averaged over the draws, shape (N,)."""
        return self.draws.mean(axis=0)

    @property
    def spread(self) -> np.ndarray:
        """Standard deviation of the predictions over the draws (ddof=1), shape (N,): how far the noise of eq. 3
        alone moves the estimate of a star; 0 when the draws add no noise."""
        return self.draws.std(axis=0, ddof=1)

    @property
    def sigma_nll(self) -> np.ndarray | None:
        """The NLL head's sigma as the root mean square over the draws, shape (N,); None without the head."""
        return None if self.sigma_draws is None else np.sqrt(np.mean(self.sigma_draws**2, axis=0))

    @property
    def sigma_total(self) -> np.ndarray:
        """``sqrt(sigma_nll^2 + spread^2)``, shape (N,) (the spread alone without the head).

        By the law of total variance this is the standard deviation of the mixture of the K Gaussians
        ``N(pred_k, sigma_k^2)``: the head's sigma is the scatter of the label that the network expects for one
        noisy spectrum (what the noise leaves undetermined, as learned from the training residuals), the spread is
        the scatter of the estimate between noise realizations of the same star. The head is trained on noisy
        inputs, so its sigma already holds part of the noise's effect: the sum in quadrature is the conservative
        combination, and the coverage (:func:`calibration_table`) tells whether it over-covers.
        """
        return self.spread if self.sigma_nll is None else np.hypot(self.sigma_nll, self.spread)

    def frame(self) -> pd.DataFrame:
        """One row per star: ``true``, ``pred_mc`` (mean over the draws), ``mc_spread``, ``sigma_nll`` (runs with
        the head), ``sigma_total`` and the split's parameters.

        Returns
        -------
        pandas.DataFrame
        """
        columns = {"true": self.true, "pred_mc": self.mean, "mc_spread": self.spread}
        if self.sigma_nll is not None:
            columns["sigma_nll"] = self.sigma_nll
        columns["sigma_total"] = self.sigma_total
        return pd.concat([pd.DataFrame(columns), self.params.reset_index(drop=True)], axis=1)


def mc_noise_predictions(run_dir, split: str = "test", n_draws: int = MC_DRAWS["quick"], dataset_dir=None,
                         alpha: float | None = None, first_seed: int = MC_FIRST_SEED,
                         device: str = "auto") -> MCPrediction:
    """Predict a simulated split under ``n_draws`` noise realizations of eq. 3 with a run's best checkpoint.

    Draw k adds the noise ``alpha * eps * sigma`` seeded by ``(first_seed + k, star index)``
    (:class:`~specvit_core.data.NoisySpectra`) to the stored clean spectra, so the draws are reproducible, independent
    of the test split's fixed realization (seed 42), and a star keeps its noise when the split is cut.

    Parameters
    ----------
    run_dir : str or Path
        A run folder holding ``best.pt``.
    split : {"test", "val", "train"}
    n_draws : int
        Number of noise realizations K, at least 2 (the spread needs two).
    dataset_dir : str or Path, optional
        Defaults to the dataset the run was trained on.
    alpha : float, optional
        Noise-level scaling of the draws (0: no noise); None: the run's ``noise_alpha``.
    first_seed : int
        Noise seed of the first draw; the draws use ``first_seed, ..., first_seed + K - 1``.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".

    Returns
    -------
    MCPrediction
        The K predictions (and NLL sigmas) of every star; ``mean``, ``spread``, ``sigma_total``, ``frame()``.

    Raises
    ------
    ValueError
        ``n_draws`` not an integer >= 2, seeds that include the fixed test seed 42, a negative or non-finite
        ``alpha``, a dataset of observed spectra (their noise is already in the flux), an unknown split.
    FileNotFoundError
        No ``best.pt`` in ``run_dir``, or no such split.
    """
    require_integer("n_draws", n_draws, minimum=2)
    seeds = tuple(range(require_integer("first_seed", first_seed), first_seed + n_draws))
    if FIXED_NOISE_SEED in seeds:
        raise ValueError(f"The noise seeds {seeds[0]}..{seeds[-1]} include the fixed test seed {FIXED_NOISE_SEED}; "
                         "the draws must be independent of the test realization: choose another first_seed")
    model, ckpt = runs.load_model(run_dir)
    dataset_dir = dataset_dir or ckpt["dataset_dir"]
    if flux_is_observed(dataset_dir):
        raise ValueError(f"{dataset_dir} holds observed spectra (their noise is in the flux); noise draws of eq. 3 "
                         "marginalize over the noise of clean simulated spectra only")
    data = read_split(dataset_dir, split)
    alpha = ckpt["config"]["noise_alpha"] if alpha is None else alpha
    labels = np.zeros(len(data))  # the inputs' labels are not used by the prediction
    predictions = [predict_label(model, ckpt, NoisySpectra(data.flux, data.error, labels, noise="fixed", seed=seed,
                                                           alpha=alpha), device, ckpt["config"]["batch_size"])
                   for seed in seeds]
    has_head = predictions[0][1] is not None
    primary_label = TrainConfig(**ckpt["config"]).labels[0]  # a joint-label run: its first label
    return MCPrediction(true=data.labels(primary_label), draws=np.stack([p for p, _ in predictions]),
                        sigma_draws=np.stack([s for _, s in predictions]) if has_head else None, seeds=seeds,
                        params=data.params)


def calibration_table(y_true, y_pred, sigmas: dict) -> pd.DataFrame:
    """The calibration of several predicted sigmas of the same predictions, beside the residual scatter.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Labels and predictions.
    sigmas : dict of str -> array_like, shape (n,)
        Name of each uncertainty (e.g. "NLL head", "MC spread", "total") -> its predicted 1-sigma values (> 0).

    Returns
    -------
    pandas.DataFrame
        One row per uncertainty: ``coverage_68`` and ``coverage_95`` (observed fraction inside the +-1 and +-2
        sigma intervals, nominal 0.6827 and 0.9545), ``sharpness`` (RMS sigma), ``sigma_median``, ``nll`` (mean
        Gaussian negative log-likelihood); then the residual scatter of ``y_pred``, the same on every row:
        ``rmse`` (which a calibrated sharpness equals) and ``sigma_robust``.

    Raises
    ------
    ValueError
        Empty ``sigmas``, or bad arrays / a sigma <= 0 (as :func:`specvit_core.metrics.interval_coverage`).
    """
    if not sigmas:
        raise ValueError("sigmas is empty; give at least one predicted uncertainty by name")
    scatter = {k: regression_metrics(y_true, y_pred)[k] for k in ("rmse", "sigma_robust")}
    rows = {name: {**uncertainty_metrics(y_true, y_pred, sigma), **scatter} for name, sigma in sigmas.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("uncertainty")
