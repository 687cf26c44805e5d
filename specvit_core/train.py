"""The training engine (paper section 3.7, Table 1): AdamW, cosine schedule, clipping, noise injection, resume.

``train(config, dataset_dir, run_dir)`` fits one architecture on the train split, selects the checkpoint with
the lowest validation MAE (dex), stops early, and only then evaluates the test split. The run folder holds
``config.json``, ``history.csv``, ``last.pt``/``best.pt``, ``test_predictions.csv`` and ``metrics.json``.
``TrainConfig(label=("log_g", "T_eff", "M_H"))`` trains the labels jointly (one output per label); the first is
the primary label, which selects the checkpoint and fills the ``true``/``pred`` columns.

Resume is exact: data order and noise depend only on (seed, epoch, index), and the checkpoint stores every
optimizer/scheduler/RNG state, so on CPU an interrupted and resumed run ends with bit-identical weights.
On CUDA it trains in mixed precision (bf16, or fp16 with a GradScaler); on a CPU with native bf16 (AMX or
AVX512-BF16) the recurrent and convolutional networks train under bf16 autocast and the others in fp32
(``precision="fp32"`` or ``"bf16"`` chooses); under ``torchrun`` it uses DistributedDataParallel and only rank 0
logs and saves.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from . import runs
from .config import get_profile, require_integer
from .data import (FIXED_NOISE_SEED, LABEL_COLUMNS, LabelScaler, NoisySpectra, ShardedSpectra, flux_is_observed,
                   lock_test_split, read_labels, read_split, split_dataset)
from .instrument import MR_N_PIXELS
from .metrics import mae, r2, regression_metrics, uncertainty_metrics
from .models import build_model, n_params
from .verify import check_contract

# Table 1: the loss, learning rate and weight decay each architecture family trains best with.
FAMILY_DEFAULTS = {
    "transformer": dict(loss="l1", lr=1e-4, weight_decay=1e-2),
    "recurrent": dict(loss="mse", lr=3e-4, weight_decay=1e-4),
    "hybrid": dict(loss="mse", lr=3e-4, weight_decay=1e-4),
    "cnn": dict(loss="mse", lr=3e-4, weight_decay=1e-4),
}
# Clamp of the Gaussian NLL head's log-variance in the z-scored label space: sigma from e^-5 = 0.0067 to e^3 = 20
# label standard deviations (0.008 to 23 dex of log g at std 1.15 dex), so that a collapsing variance cannot make the
# loss diverge and an exploding one cannot flatten it; outside the range the log-variance gets no gradient.
LOG_VAR_RANGE = (-10.0, 6.0)
NLL_LOSS = "gaussian_nll"


def split_head(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the clamped log-variance of the Gaussian NLL head's output.

    Parameters
    ----------
    output : torch.Tensor, shape (B, 2k)
        The network's output for k labels: k means, then k log-variances, in the z-scored label space.

    Returns
    -------
    mean, log_var : torch.Tensor, shape (B, k)
        ``log_var`` clamped to :data:`LOG_VAR_RANGE`.
    """
    mean, log_var = output.chunk(2, dim=1)
    return mean, log_var.clamp(*LOG_VAR_RANGE)


def gaussian_nll(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood of the targets under the head's mean and variance (as astroNN, SpectraFM).

    Parameters
    ----------
    output : torch.Tensor, shape (B, 2k)
        Means, then log-variances (see :func:`split_head`), in the z-scored label space.
    target : torch.Tensor, shape (B, k)
        z-scored labels.

    Returns
    -------
    torch.Tensor
        Scalar ``mean(0.5 log(2 pi) + 0.5 log_var + 0.5 (target - mean)^2 exp(-log_var))``, nats per label.
    """
    mean, log_var = split_head(output)
    return 0.5 * (math.log(2 * math.pi) + log_var + (target - mean) ** 2 * torch.exp(-log_var)).mean()


LOSSES = {"l1": nn.functional.l1_loss, "mse": nn.functional.mse_loss, NLL_LOSS: gaussian_nll}
# "auto" precision on a CPU with native bf16: the families whose training is faster under bf16 autocast at the same
# accuracy (benchmarks/bench_models.py --precision fp32 bf16 and the README's "Faster CPU steps: bf16"); transformers
# and the ConvStem hybrids train slower under CPU autocast and stay fp32.
CPU_BF16_FAMILIES = ("recurrent", "cnn")
RUNTIME_FIELDS = ("device", "num_workers", "save_every", "max_steps", "precision")  # may change on resume
PRECISIONS = ("auto", "fp32", "bf16")


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; ``last.pt`` keeps the last good state."""


@dataclass
class TrainConfig:
    """One training run; ``None`` fields take the profile's value or Table 1's value for the family.

    Parameters
    ----------
    arch : str
        A registered architecture (see :func:`specvit_core.models.list_models`).
    profile : str
        Profile whose model size, epochs, batch size and patience fill the ``None`` fields.
    size : str or None
        Model size for ``build_model`` (smoke, quick, cpu, paper); None: the profile's ``model_size``.
    epochs, batch_size : int or None
        Maximum epochs and batch size (per process).
    patience : int or None
        Early stopping: epochs without a better validation MAE.
    loss : {"l1", "mse", "gaussian_nll"} or None
        Table 1's loss of the family when None. ``"gaussian_nll"`` gives the network a Gaussian NLL head (twice
        the outputs: a mean and a log-variance per label, :func:`gaussian_nll`); the validation MAE and the
        checkpoint selection still use the mean, and evaluation writes the predicted sigma (``pred_sigma``).
    lr, weight_decay : float or None
        AdamW learning rate and weight decay.
    grad_clip : float
        Maximum gradient norm.
    warmup_epochs : float or None
        Linear warm-up of the learning rate from ``lr / warmup_steps`` to ``lr`` over this many epochs, then the
        cosine decay; 0 is the paper's schedule (cosine from the first step). None: the profile's value.
    eta_min : float
        Final learning rate of the cosine schedule.
    seed : int
        Seed of initialization, data order and injected noise.
    noise_alpha : float
        Scale of the injected noise (eq. 3); 0 disables noise injection (fine-tuning on real spectra).
    max_train, max_val : int or None
        Use only the first this many training / validation spectra (None: all).
    label : str or sequence of str
        Target label (``log_g``, ``T_eff`` or ``M_H``), or several to predict jointly, the primary label first
        (e.g. ``("log_g", "T_eff", "M_H")``). A joint run has one output per label (two with the NLL head), z-scores
        each label with its own training mean and std, and averages the loss over the labels in that z-scored space
        (so that T_eff in K does not dominate). The primary label alone gives the training and validation MAE and
        R^2 (history, early stopping, checkpoint selection), in its physical unit, and the ``true``/``pred`` columns
        and plain metric keys of :func:`evaluate`; every label is also written under its own name. :meth:`resolved`
        keeps a one-name sequence as the name (a single-label run) and a longer one as a tuple.
    overrides : dict
        Model hyperparameters for ``build_model`` (e.g. ``dropout``).
    device : str
        "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
    num_workers : int or None
        DataLoader workers; None: 0 on CPU, up to 8 per process on CUDA.
    precision : {"auto", "fp32", "bf16"}
        Arithmetic of the forward pass: "auto" is mixed precision on CUDA (bf16 where supported, else fp16 with a
        GradScaler) and, on a CPU with native bf16, bf16 autocast for the families of ``CPU_BF16_FAMILIES`` and fp32
        for the others; "bf16" is bf16 autocast on either; "fp32" is full precision. Weights, loss and optimizer stay
        fp32. Evaluation uses the run's precision.
    save_every : int
        Also write ``last.pt`` every this many optimizer steps (mid-epoch resume).
    max_steps : int or None
        Pause (resumable) once the run has taken this many optimizer steps.
    init_from : str or None
        Fine-tuning: start from this checkpoint's weights and label scaler.
    """

    arch: str
    profile: str = "quick"
    size: str | None = None  # model size for build_model; None: the profile's model_size
    epochs: int | None = None
    batch_size: int | None = None
    patience: int | None = None  # early stopping: epochs without a better validation MAE
    loss: str | None = None  # "l1" | "mse" | "gaussian_nll" (mean and log-variance head)
    lr: float | None = None
    weight_decay: float | None = None
    grad_clip: float = 0.5
    warmup_epochs: float | None = None  # linear warm-up before the cosine decay; None: the profile's value
    eta_min: float = 1e-5
    seed: int = 42
    noise_alpha: float = 1.0  # eq. 3; 0 disables noise injection (fine-tuning on real spectra)
    max_train: int | None = None  # use the first max_train training spectra
    max_val: int | None = None
    label: str | tuple[str, ...] = "log_g"  # several: a joint-label run, the primary label first
    overrides: dict = field(default_factory=dict)  # model hyperparameters for build_model (e.g. dropout)
    device: str = "auto"  # "auto": CUDA when present, else CPU
    num_workers: int | None = None  # None: 0 on CPU, up to 8 per process on CUDA
    precision: str = "auto"  # "auto": mixed precision on CUDA, CPU_BF16_FAMILIES in bf16 on CPU; "bf16"; "fp32"
    save_every: int = 500  # also write last.pt every this many optimizer steps (mid-epoch resume)
    max_steps: int | None = None  # pause (resumable) once the run has taken this many optimizer steps
    init_from: str | None = None  # fine-tuning: start from this checkpoint's weights and label scaler

    @property
    def labels(self) -> tuple[str, ...]:
        """The target labels, the primary one first; ``(label,)`` for a single-label run.

        Raises
        ------
        ValueError
            ``label`` neither a name nor a sequence of names, an empty sequence, a name twice, or a name that is
            not one of :data:`specvit_core.data.LABEL_COLUMNS`.
        """
        if not isinstance(self.label, (str, list, tuple)):
            raise ValueError(f"label must be a label name or a sequence of them; got {self.label!r}")
        names = (self.label,) if isinstance(self.label, str) else tuple(self.label)
        if not names:
            raise ValueError(f"label is an empty sequence; give at least one of {', '.join(LABEL_COLUMNS)}")
        unknown = [name for name in names if name not in LABEL_COLUMNS]
        if unknown:
            raise ValueError(f"Unknown label {unknown[0]!r}; the labels are: {', '.join(LABEL_COLUMNS)}")
        twice = [name for i, name in enumerate(names) if name in names[:i]]
        if twice:
            raise ValueError(f"label names {twice[0]!r} twice ({', '.join(names)}); give each label once")
        return names

    def resolved(self, family: str) -> TrainConfig:
        """Fill the ``None`` fields from the profile and Table 1, then validate.

        Parameters
        ----------
        family : str
            The model's family (``model.config["family"]``), which picks the Table 1 defaults.

        Returns
        -------
        TrainConfig
            A copy whose size, epochs, batch size, patience, loss, lr, weight decay and warm-up are set. An unset
            lr is Table 1's value times the profile's ``lr_scale`` (1 at the ``paper`` profile).

        Raises
        ------
        ValueError
            Unknown profile, family or loss, or a value outside its range (the message names the field); bad
            labels (see :attr:`labels`).
        """
        profile = get_profile(self.profile)
        if family not in FAMILY_DEFAULTS:
            raise ValueError(f"Unknown family {family!r}; valid families are: {', '.join(FAMILY_DEFAULTS)}")
        table1 = FAMILY_DEFAULTS[family]
        filled = {**table1, "lr": table1["lr"] * profile.lr_scale, **dict(
            size=profile.model_size, epochs=profile.epochs, batch_size=profile.batch_size, patience=profile.patience,
            warmup_epochs=profile.warmup_epochs)}
        names = self.labels
        cfg = replace(self, **{k: v for k, v in filled.items() if getattr(self, k) is None},
                      label=names[0] if len(names) == 1 else names)
        _check_types(cfg)
        if cfg.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {cfg.loss!r}")
        if cfg.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {cfg.precision!r}")
        rules = dict(epochs=cfg.epochs >= 1, batch_size=cfg.batch_size >= 1, patience=cfg.patience >= 1,
                     lr=cfg.lr > 0, weight_decay=cfg.weight_decay >= 0, grad_clip=cfg.grad_clip > 0,
                     warmup_epochs=0 <= cfg.warmup_epochs <= cfg.epochs,
                     eta_min=0 <= cfg.eta_min <= cfg.lr, noise_alpha=0 <= cfg.noise_alpha < float("inf"),
                     save_every=cfg.save_every >= 1, max_steps=cfg.max_steps is None or cfg.max_steps >= 1,
                     max_train=cfg.max_train is None or cfg.max_train >= 1,
                     max_val=cfg.max_val is None or cfg.max_val >= 1)
        for name, ok in rules.items():
            if not ok:
                raise ValueError(f"{name}={getattr(cfg, name)!r} is out of range; the rule is: "
                                 "epochs, batch_size, patience, save_every, max_* >= 1; lr, grad_clip > 0; "
                                 "weight_decay >= 0; 0 <= warmup_epochs <= epochs; 0 <= eta_min <= lr; "
                                 "0 <= noise_alpha < inf")
        return cfg


INT_FIELDS = ("epochs", "batch_size", "patience", "seed", "save_every", "max_steps", "max_train", "max_val",
              "num_workers")
FLOAT_FIELDS = ("lr", "weight_decay", "grad_clip", "warmup_epochs", "eta_min", "noise_alpha")


def _check_types(cfg: TrainConfig) -> None:
    """Refuse fields of the wrong type (a papermill ``-p epochs 12`` gives an int, ``-r epochs 12`` a string)."""
    for name in INT_FIELDS:
        if getattr(cfg, name) is not None:
            require_integer(name, getattr(cfg, name))
    for name in FLOAT_FIELDS:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"The {name} parameter, {value!r}, must be a number")


def resolve_device(device: str) -> torch.device:
    """The torch device for ``device``: ``"auto"`` -> CUDA when available, else CPU; otherwise the named device.

    Parameters
    ----------
    device : str
        "auto", "cpu", "cuda" or "cuda:N".

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        A string torch does not parse as a device, or a CUDA device when CUDA is not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def _init_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when launched by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return 0, 1, resolve_device(device)
    if torch.cuda.is_available():
        local_rank = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local_rank)
        dev, backend = torch.device("cuda", local_rank), "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), world, dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX512-BF16 or AMX); elsewhere bf16 autocast is emulated."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def autocast_dtype(device: torch.device, precision: str, family: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` for a network of ``family`` (see :class:`TrainConfig`);
    None is full precision."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if family in CPU_BF16_FAMILIES and cpu_has_native_bf16() else None


class _ResumableSampler(DistributedSampler):
    """DistributedSampler (seeded permutation per epoch, this rank's share) that can start part-way through."""

    skip = 0  # samples of this epoch already consumed before an interruption

    def __iter__(self):
        return islice(super().__iter__(), self.skip, None)

    def __len__(self):
        return super().__len__() - self.skip


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


def _initial_weights(cfg: TrainConfig, model: nn.Module) -> dict:
    """Load ``cfg.init_from`` into ``model`` (fine-tuning) and return that checkpoint; it must be the same network,
    trained on the same labels (its label scaler is reused)."""
    init = runs.load_checkpoint(cfg.init_from)
    trained_on = TrainConfig(**init["config"]).labels
    if trained_on != cfg.labels:
        raise ValueError(f"The checkpoint {cfg.init_from!r} predicts {', '.join(trained_on)}; it cannot initialize a "
                         f"run of {', '.join(cfg.labels)} (its label scaling is reused)")
    saved = {k: v for k, v in init["model_config"].items() if k != "family"}
    if build_model(**saved).config != model.config:  # rebuilt: a hyperparameter added since takes its default
        raise ValueError(f"The checkpoint {cfg.init_from!r} holds {init['model_config']['name']!r} "
                         f"(size {init['model_config']['size']!r}); it cannot initialize {model.config['name']!r} "
                         f"(size {model.config['size']!r}) with these hyperparameters")
    model.load_state_dict(init["model"])
    return init


def _check_resumable(ckpt: dict, cfg: TrainConfig, path: Path) -> None:
    """Refuse a checkpoint from another architecture, size or training configuration."""
    old = ckpt["config"]
    if (old["arch"], old["size"]) != (cfg.arch, cfg.size):
        raise ValueError(f"The checkpoint {str(path)!r} is for architecture {old['arch']!r} (size {old['size']!r}), "
                         f"not {cfg.arch!r} (size {cfg.size!r}); use another run folder or resume=False")
    diff = {k: (old[k], v) for k, v in asdict(cfg).items() if k not in RUNTIME_FIELDS and old.get(k) != v}
    if diff:
        raise ValueError(f"The checkpoint {str(path)!r} was trained with a different configuration "
                         f"(field: (checkpoint, now)) {diff}; resume with the same settings or pass resume=False")


def _check_same_data(ckpt: dict, dataset_dir, manifest_sha256: str | None, path: Path) -> None:
    """Refuse to resume or reuse a checkpoint on data other than its own (another manifest SHA-256)."""
    if "manifest_sha256" not in ckpt or ckpt["manifest_sha256"] == manifest_sha256:  # older checkpoints record none
        return

    def identity(digest):
        return f"manifest SHA-256 {digest[:16]}..." if digest else "no manifest.json"

    raise ValueError(f"The checkpoint {str(path)!r} was trained on {ckpt['dataset_dir']!r} "
                     f"({identity(ckpt['manifest_sha256'])}), not on {str(dataset_dir)!r} "
                     f"({identity(manifest_sha256)}); its weights belong to other data. Use another run folder, "
                     "resume=False (--no-resume) to retrain, or the dataset it was trained on")


@torch.no_grad()
def _predict(model: nn.Module, loader: DataLoader, device: torch.device,
             amp: torch.dtype | None) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, targets) in the normalized label space, shape (N, k), under autocast to ``amp``."""
    model.eval()
    preds, ys = [], []
    for x, y in loader:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            preds.append(model(x.to(device, non_blocking=True)).float().cpu())
        ys.append(y)
    return torch.cat(preds).numpy(), torch.cat(ys).numpy()


def predict_labels(model: nn.Module, checkpoint: dict, ds: NoisySpectra, device: str = "auto",
                   batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
    """A run's network applied to a dataset of spectra, in the run's precision: every label of the run and, with
    the Gaussian NLL head, their predicted sigmas, in physical units.

    Parameters
    ----------
    model : torch.nn.Module
    checkpoint : dict
        ``model`` and ``checkpoint`` as :func:`specvit_core.runs.load_model` returns them.
    ds : NoisySpectra
        The inputs, with the noise they are served with (its labels are not used).
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    batch_size : int
        Spectra per forward pass.

    Returns
    -------
    pred : ndarray, shape (N, k)
        The predicted labels (the head's means), in the order of the run's ``label`` (k = 1 for a single label).
    sigma : ndarray, shape (N, k) or None
        ``exp(log_var / 2)`` times each label scaler's std; None for a run trained without ``loss="gaussian_nll"``.
    """
    dev = resolve_device(device)
    scaler_y = LabelScaler.from_state_dict(checkpoint["label_scaler"])
    precision = checkpoint["config"].get("precision", "auto")
    amp = autocast_dtype(dev, precision, model.config["family"])
    out, _ = _predict(model.to(dev), _loader(ds, batch_size, dev, 0), dev, amp)
    if checkpoint["config"]["loss"] != NLL_LOSS:
        return scaler_y.inverse(out), None
    mean, log_var = split_head(torch.from_numpy(out).double())
    return scaler_y.inverse(mean.numpy()), np.exp(0.5 * log_var.numpy()) * scaler_y.std


def predict_label(model: nn.Module, checkpoint: dict, ds: NoisySpectra, device: str = "auto",
                  batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
    """The primary label of :func:`predict_labels` (the run's only label, or the first of a joint run).

    Parameters
    ----------
    model, checkpoint, ds, device, batch_size
        As :func:`predict_labels`.

    Returns
    -------
    pred : ndarray, shape (N,)
        The predicted label (the head's mean).
    sigma : ndarray, shape (N,) or None
        Its predicted sigma; None for a run trained without ``loss="gaussian_nll"``.
    """
    pred, sigma = predict_labels(model, checkpoint, ds, device, batch_size)
    return pred[:, 0], None if sigma is None else sigma[:, 0]


def _loader(ds: NoisySpectra | ShardedSpectra, batch_size: int, device: torch.device, num_workers: int, **kw) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, num_workers=num_workers, pin_memory=device.type == "cuda",
                      generator=torch.Generator(), **kw)


@dataclass
class _Session:
    """What one training run holds while it trains: configuration, network, data, optimizer and progress."""

    cfg: TrainConfig
    model: nn.Module
    net: nn.Module  # the model, wrapped in DistributedDataParallel under torchrun
    device: torch.device
    amp: torch.dtype | None
    rank: int
    world: int
    run_dir: Path
    dataset_dir: str
    manifest_sha256: str | None  # the dataset's identity (verify.manifest_sha256); None without a manifest
    scaler_y: LabelScaler
    train_ds: NoisySpectra | ShardedSpectra
    sampler: _ResumableSampler
    train_loader: DataLoader
    val_loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    grad_scaler: torch.amp.GradScaler
    steps_per_epoch: int
    state: dict = field(default_factory=lambda: dict(
        epoch=0, step_in_epoch=0, step=0, best_val_mae=float("inf"), best_epoch=0, bad_epochs=0, finished=False,
        history=[], running=dict(loss=0.0, mae=0.0, n=0)))

    @property
    def last_path(self) -> Path:
        return self.run_dir / runs.LAST

    def checkpoint(self) -> dict:
        """Everything an exact resume needs: weights, optimizer, scheduler, RNG states and the progress."""
        return dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                    scheduler=self.scheduler.state_dict(), scaler=self.grad_scaler.state_dict(), rng=_rng_state(),
                    label_scaler=self.scaler_y.state_dict(), config=asdict(self.cfg), model_config=self.model.config,
                    dataset_dir=self.dataset_dir, manifest_sha256=self.manifest_sha256, **self.state)

    def restore(self, ckpt: dict) -> None:
        """Continue from a checkpoint of this run (see :func:`_check_resumable`)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.grad_scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        self.state = {k: ckpt[k] for k in self.state}

    def run_config(self, n_val: int) -> dict:
        """The ``config.json`` of the run."""
        return dict(**asdict(self.cfg), dataset_dir=self.dataset_dir, manifest_sha256=self.manifest_sha256,
                    model_config=self.model.config, n_params=n_params(self.model), n_train=len(self.train_ds),
                    n_val=n_val, device_used=str(self.device), world_size=self.world,
                    amp=str(self.amp).removeprefix("torch.") if self.amp else None)


def _open_session(cfg: TrainConfig, model: nn.Module, dataset_dir, manifest_sha256: str | None, run_dir: Path,
                  rank: int, world: int, device: torch.device, init: dict | None) -> _Session:
    """Read train and val, build the noisy datasets, loaders, optimizer and schedule (call inside the test lock)."""
    amp = autocast_dtype(device, cfg.precision, model.config["family"])
    workers = cfg.num_workers if cfg.num_workers is not None else (
        min(8, (os.cpu_count() or 1) // world) if device.type == "cuda" else 0)
    train_labels = read_labels(dataset_dir, "train", cfg.label, cfg.max_train)
    val_labels = read_labels(dataset_dir, "val", cfg.label, cfg.max_val)
    scaler_y = LabelScaler.from_state_dict(init["label_scaler"]) if init else LabelScaler().fit(train_labels)
    # in memory, or streamed from the HDF5 shards when large (data.split_dataset): the same samples either way
    train_ds = split_dataset(dataset_dir, "train", scaler_y.transform(train_labels), max_rows=cfg.max_train,
                             noise="fresh", seed=cfg.seed, alpha=cfg.noise_alpha)
    val_ds = split_dataset(dataset_dir, "val", scaler_y.transform(val_labels), max_rows=cfg.max_val,
                           noise="fixed", seed=FIXED_NOISE_SEED, alpha=cfg.noise_alpha)
    sampler = _ResumableSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    steps_per_epoch = len(sampler) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"The training set gives {len(sampler)} spectra per process, fewer than "
                         f"batch_size={cfg.batch_size}; lower batch_size or use more training spectra")
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        lr_factor, total=cfg.epochs * steps_per_epoch, warmup=round(cfg.warmup_epochs * steps_per_epoch),
        floor=cfg.eta_min / cfg.lr))
    return _Session(
        cfg=cfg, model=model, net=net, device=device, amp=amp, rank=rank, world=world, run_dir=run_dir,
        dataset_dir=str(dataset_dir), manifest_sha256=manifest_sha256, scaler_y=scaler_y, train_ds=train_ds,
        sampler=sampler,
        train_loader=_loader(train_ds, cfg.batch_size, device, workers, sampler=sampler, drop_last=True),
        val_loader=_loader(val_ds, cfg.batch_size, device, workers), optimizer=optimizer, scheduler=scheduler,
        grad_scaler=torch.amp.GradScaler(device.type, enabled=amp == torch.float16), steps_per_epoch=steps_per_epoch)


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Learning rate over its peak after ``step`` optimizer steps: linear warm-up, then cosine decay to ``floor``.

    Parameters
    ----------
    step, total, warmup : int
        Steps taken, steps of the whole run, and warm-up steps (0: the paper's cosine from the first step).
    floor : float
        ``eta_min / lr``, the factor reached at the last step.

    Returns
    -------
    float
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer_step(s: _Session, x: torch.Tensor, y: torch.Tensor) -> float:
    """Forward, loss, backward with gradient clipping, optimizer and schedule step; returns the loss."""
    x, y = x.to(s.device, non_blocking=True), y.to(s.device, non_blocking=True)
    with torch.autocast(s.device.type, dtype=s.amp, enabled=s.amp is not None):
        pred = s.net(x).float()  # (B, k)
    loss = LOSSES[s.cfg.loss](pred, y)
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"Non-finite training loss ({loss.item()}) at epoch {s.state['epoch'] + 1}, step "
                           f"{s.state['step_in_epoch'] + 1} (global step {s.state['step'] + 1}); the last good "
                           f"checkpoint {str(s.last_path)!r} is kept. Lower lr or check the data")
    s.optimizer.zero_grad(set_to_none=True)
    s.grad_scaler.scale(loss).backward()
    s.grad_scaler.unscale_(s.optimizer)
    nn.utils.clip_grad_norm_(s.model.parameters(), s.cfg.grad_clip)
    s.grad_scaler.step(s.optimizer)
    s.grad_scaler.update()
    s.scheduler.step()
    run = s.state["running"]
    run["loss"] += loss.item() * len(x)
    # the primary label's mean (the first output; then the other labels, then the NLL head's log-variances)
    run["mae"] += (pred[:, 0] - y[:, 0]).abs().sum().item() * s.scaler_y.column(0).std
    run["n"] += len(x)
    return loss.item()


def _train_epoch(s: _Session) -> bool:
    """Train the rest of the current epoch; False when ``max_steps`` paused the run (``last.pt`` written)."""
    cfg, state = s.cfg, s.state
    s.train_ds.set_epoch(state["epoch"])
    s.sampler.set_epoch(state["epoch"])
    s.sampler.skip = state["step_in_epoch"] * cfg.batch_size
    s.train_loader.generator.manual_seed(cfg.seed + state["epoch"])
    s.model.train()
    bar = tqdm(s.train_loader, total=s.steps_per_epoch, initial=state["step_in_epoch"], disable=s.rank != 0,
               desc=f"{cfg.arch} epoch {state['epoch'] + 1}/{cfg.epochs}", leave=False)
    with bar:
        for x, y in bar:
            if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
                if s.rank == 0:
                    runs.save_checkpoint(s.checkpoint(), s.last_path)
                return False
            bar.set_postfix(loss=f"{_optimizer_step(s, x, y):.4f}")
            state["step"] += 1
            state["step_in_epoch"] += 1
            if state["step"] % cfg.save_every == 0 and s.rank == 0:
                runs.save_checkpoint(s.checkpoint(), s.last_path)
    return True


def _validate(s: _Session, seconds: float) -> dict:
    """The epoch's history row: training loss and MAE (all ranks), validation loss, MAE (dex) and R^2; the MAEs
    and R^2 of the primary label in its physical unit, the losses over all labels in z-scored space."""
    run = s.state["running"]
    stats = torch.tensor([run["loss"], run["mae"], run["n"]], dtype=torch.float64, device=s.device)
    if s.world > 1:
        dist.all_reduce(stats)
    pred, y = _predict(s.model, s.val_loader, s.device, s.amp)  # every rank: same weights, same fixed noise
    primary = s.scaler_y.column(0)  # its mean is the first output, also with the NLL head
    true_dex, pred_dex = primary.inverse(y[:, 0]), primary.inverse(pred[:, 0])
    row = dict(epoch=s.state["epoch"] + 1, train_loss=stats[0].item() / stats[2].item(),
               train_mae=stats[1].item() / stats[2].item(),
               val_loss=LOSSES[s.cfg.loss](torch.from_numpy(pred), torch.from_numpy(y)).item(),
               val_mae=mae(true_dex, pred_dex), val_r2=r2(true_dex, pred_dex),
               lr=s.scheduler.get_last_lr()[0], time=seconds)
    if s.world > 1:  # rank 0's value, so that every rank takes the same early-stopping decision
        val_mae = torch.tensor(row["val_mae"], dtype=torch.float64, device=s.device)
        dist.broadcast(val_mae, 0)
        row["val_mae"] = val_mae.item()
    return row


def _end_epoch(s: _Session, row: dict) -> None:
    """Early-stopping bookkeeping, then (rank 0) ``last.pt``, ``best.pt`` when improved, and ``history.csv``."""
    state, cfg = s.state, s.cfg
    improved = row["val_mae"] < state["best_val_mae"]
    state.update(epoch=state["epoch"] + 1, step_in_epoch=0, history=state["history"] + [row],
                 running=dict(loss=0.0, mae=0.0, n=0), bad_epochs=0 if improved else state["bad_epochs"] + 1)
    if improved:
        state.update(best_val_mae=row["val_mae"], best_epoch=state["epoch"])
    state["finished"] = state["epoch"] >= cfg.epochs or state["bad_epochs"] >= cfg.patience
    if s.rank != 0:
        return
    ckpt = s.checkpoint()
    runs.save_checkpoint(ckpt, s.last_path)
    if improved:
        runs.save_checkpoint(ckpt, s.run_dir / runs.BEST)
    runs.write_history(s.run_dir, state["history"])
    tqdm.write(f"{cfg.arch} epoch {state['epoch']}/{cfg.epochs}: train_loss {row['train_loss']:.4f}  "
               f"val_mae {row['val_mae']:.4f} dex  val_r2 {row['val_r2']:.4f}" + ("  (best)" if improved else ""),
               file=sys.stderr)


def train(config: TrainConfig, dataset_dir, run_dir, resume: bool = True) -> dict:
    """Train ``config.arch`` on a dataset folder and evaluate its best checkpoint on the test split.

    Parameters
    ----------
    config : TrainConfig
        The run; its ``None`` fields are filled by :meth:`TrainConfig.resolved`.
    dataset_dir : str or Path
        Folder with ``train_*.h5``, ``val.h5``, ``test.h5`` (see :mod:`specvit_core.data`).
    run_dir : str or Path
        Run folder (created; see :mod:`specvit_core.runs`); conventionally ``runs/<profile>/<arch>``.
    resume : bool
        Continue from ``run_dir/last.pt`` when it exists; a finished run returns its ``metrics.json``. The run
        records its dataset's manifest SHA-256 (``config.json``, checkpoints) and is only continued or reused on
        data with the same manifest.

    Returns
    -------
    dict
        The test metrics (``metrics.json``); ``{"status": "paused", "epoch", "step"}`` when ``max_steps``
        paused the run; ``{}`` on ranks other than 0.

    Raises
    ------
    ValueError
        Unknown architecture/profile/size, bad config values or labels (messages list the valid ones), a
        checkpoint of another architecture or configuration, a fine-tuning checkpoint of other labels, a training
        set smaller than one batch; a dataset with a manifest that violates its contract
        (:func:`specvit_core.verify.check_contract`: e.g. an unlisted stale shard), or a checkpoint trained on a
        dataset with another manifest (both named), observed survey spectra with ``noise_alpha`` != 0 -- before
        anything is trained.
    TrainingDiverged
        A non-finite training loss (the message names epoch and step; ``last.pt`` keeps the last good state).
    """
    rank, world, device = _init_distributed(config.device)
    torch.manual_seed(config.seed)  # model initialization
    outputs_per_label = 2 if config.loss == NLL_LOSS else 1  # the NLL head: a mean and a log-variance per label
    model = build_model(config.arch, config.size or get_profile(config.profile).model_size,
                        n_outputs=outputs_per_label * len(config.labels), **config.overrides).to(device)
    cfg = config.resolved(model.config["family"])
    run_dir = Path(run_dir)
    manifest_sha256 = check_contract(dataset_dir, splits=("train", "val"))  # appendix K, before any data is read
    if cfg.noise_alpha != 0 and flux_is_observed(dataset_dir):
        raise ValueError(f"{dataset_dir} holds observed survey spectra (their noise is in the flux); train on them "
                         f"with noise_alpha=0 (no noise injection), not {cfg.noise_alpha}")
    ckpt = runs.load_checkpoint(run_dir / runs.LAST) if resume and (run_dir / runs.LAST).is_file() else None
    if ckpt is not None:
        _check_resumable(ckpt, cfg, run_dir / runs.LAST)
        _check_same_data(ckpt, dataset_dir, manifest_sha256, run_dir / runs.LAST)
        if ckpt["finished"] and ckpt["dataset_dir"] == str(dataset_dir) and runs.metrics_path(run_dir).is_file():
            return runs.read_metrics(run_dir)  # a finished run is not evaluated again
    init = _initial_weights(cfg, model) if cfg.init_from and ckpt is None else None
    with lock_test_split():  # appendix K.1.2: training reads train and val only
        s = _open_session(cfg, model, dataset_dir, manifest_sha256, run_dir, rank, world, device, init)
        if ckpt is not None:
            s.restore(ckpt)
        if rank == 0:
            runs.start_run(run_dir, s.run_config(len(s.val_loader.dataset)), fresh=ckpt is None)
        while not s.state["finished"]:
            t0 = time.perf_counter()
            if not _train_epoch(s):
                return {"status": "paused", "epoch": s.state["epoch"], "step": s.state["step"]}
            _end_epoch(s, _validate(s, time.perf_counter() - t0))
    if world > 1:
        dist.destroy_process_group()
    return evaluate(run_dir, "test", dataset_dir, device=str(device)) if rank == 0 else {}


def evaluate(run_dir, split: str = "test", dataset_dir=None, device: str = "auto") -> dict:
    """Evaluate the best checkpoint of a run on one split (fixed noise realization, seed 42).

    Parameters
    ----------
    run_dir : str or Path
        A run folder holding ``best.pt``.
    split : {"test", "val", "train"}
    dataset_dir : str or Path, optional
        Defaults to the dataset the run was trained on.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".

    Returns
    -------
    dict
        ``regression_metrics`` (n, r2, mae, rmse, sigma_robust, bias) plus split, arch, best_epoch; written with
        the split's predictions (true, pred and the split's params) by :func:`specvit_core.runs.write_results`.
        A run with the Gaussian NLL head also writes ``pred_sigma`` (physical units) and adds
        :func:`specvit_core.metrics.uncertainty_metrics` (coverage_68, coverage_95, sharpness, sigma_median, nll).
        These are of the primary label; a joint-label run also writes ``true_<label>``, ``pred_<label>`` (and
        ``pred_sigma_<label>``) for every label and adds its metrics as ``<metric>_<label>`` (e.g. ``r2_T_eff``,
        ``mae_T_eff``; not ``n``).

    Raises
    ------
    FileNotFoundError
        No ``best.pt`` in ``run_dir`` or no such split.
    RuntimeError
        The test split during training (see :func:`specvit_core.data.lock_test_split`).
    ValueError
        An unknown split or an unavailable ``device``.
    """
    dev = resolve_device(device)
    model, ckpt = runs.load_model(run_dir)
    cfg = TrainConfig(**ckpt["config"])
    data = read_split(dataset_dir or ckpt["dataset_dir"], split)
    true = np.stack([data.labels(name) for name in cfg.labels], axis=1)  # (N, k)
    ds = NoisySpectra(data.flux, data.error, np.zeros(len(data)), noise="fixed", seed=FIXED_NOISE_SEED,
                      alpha=cfg.noise_alpha)  # the labels of the inputs are not used by the prediction
    pred, sigma = predict_labels(model, ckpt, ds, str(dev), cfg.batch_size)
    columns, metrics = _scores(cfg.labels, true, pred, sigma)
    metrics.update(split=split, arch=cfg.arch, size=cfg.size, profile=cfg.profile, best_epoch=ckpt["best_epoch"])
    runs.write_results(run_dir, pd.concat([pd.DataFrame(columns), data.params], axis=1), metrics, split)
    return metrics


def _scores(names: tuple[str, ...], true: np.ndarray, pred: np.ndarray,
            sigma: np.ndarray | None) -> tuple[dict, dict]:
    """Prediction columns and metrics of an evaluation (see :func:`evaluate`): the primary label under ``true``,
    ``pred``, ``pred_sigma`` and the plain metric keys; in a joint-label run also each label under its name."""

    def label_scores(j: int, suffix: str) -> tuple[dict, dict]:
        columns = {f"true{suffix}": true[:, j], f"pred{suffix}": pred[:, j]}
        metrics = regression_metrics(true[:, j], pred[:, j])
        if sigma is not None:
            columns[f"pred_sigma{suffix}"] = sigma[:, j]
            metrics.update(uncertainty_metrics(true[:, j], pred[:, j], sigma[:, j]))
        return columns, metrics

    columns, metrics = label_scores(0, "")
    if len(names) > 1:  # a joint-label run: every label under its own name too
        for j, name in enumerate(names):
            label_columns, label_metrics = label_scores(j, f"_{name}")
            columns.update(label_columns)
            metrics.update({f"{key}_{name}": value for key, value in label_metrics.items() if key != "n"})
    return columns, metrics


def predict_spectra(run_dir, flux, device: str = "auto", batch_size: int = 256,
                    with_sigma: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
    """Predict the label(s) of spectra already on the MR grid and median-normalized with a run's best checkpoint.

    No noise is added: the spectra are taken as observed (e.g. preprocessed survey spectra, :mod:`.preprocess`).

    Parameters
    ----------
    run_dir : str or Path
        A run folder holding ``best.pt``.
    flux : array (N, 4096)
        Median-normalized flux on the 4096-pixel grid.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    batch_size : int
        Spectra per forward pass.
    with_sigma : bool
        Also return the predicted sigma of a run with the Gaussian NLL head.

    Returns
    -------
    ndarray, shape (N,) or (N, k)
        The predicted label (the run's ``label``, log g by default) in physical units, shape (N,); for a joint-label
        run the k labels, shape (N, k), in the order of its ``label``. With ``with_sigma`` the pair (label, sigma),
        sigma of the same shape in physical units, or None for a run without the head.

    Raises
    ------
    FileNotFoundError
        No ``best.pt`` in ``run_dir``.
    ValueError
        ``flux`` not (N, 4096) or not finite.
    """
    flux = np.asarray(flux, dtype=np.float32)
    if flux.ndim != 2 or flux.shape[1] != MR_N_PIXELS or not np.isfinite(flux).all():
        raise ValueError(f"flux must be a finite (N, {MR_N_PIXELS}) array on the MR grid; got shape {flux.shape}")
    model, ckpt = runs.load_model(run_dir)
    ds = NoisySpectra(flux, np.ones_like(flux), np.zeros(len(flux)), noise="fixed", alpha=0.0)
    pred, sigma = predict_labels(model, ckpt, ds, device, batch_size)
    if pred.shape[1] == 1:  # a single-label run
        pred, sigma = pred[:, 0], None if sigma is None else sigma[:, 0]
    return (pred, sigma) if with_sigma else pred


if __name__ == "__main__":  # torchrun --nproc_per_node=K -m specvit_core.train --arch ... (as `specvit train`)
    from .cli import main

    raise SystemExit(main(["train", *sys.argv[1:]]))
