"""One registry for every architecture of the paper: ``build_model(name, size)`` is the only way to make one.

Each architecture registers a function ``size -> (model class, hyperparameters)`` with :func:`register_model`;
:func:`build_model` resolves the size, applies overrides, builds the model and attaches the resolved
configuration as ``model.config``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..paper import PARAMS as PAPER_PARAMS

SIZES = ("paper", "cpu", "quick", "smoke")
FAMILIES = ("transformer", "recurrent", "hybrid", "cnn")


@dataclass(frozen=True)
class _Entry:
    family: str
    hparams: Callable[[str], tuple[type[nn.Module], dict]]


_REGISTRY: dict[str, _Entry] = {}


def register_model(*, family: str):
    """Decorator registering ``fn(size) -> (model class, hyperparameters)`` under ``fn.__name__``.

    The first line of ``fn``'s docstring is the architecture's description in :func:`describe_models`.

    Parameters
    ----------
    family : str
        One of ``FAMILIES``.

    Returns
    -------
    callable
        The decorator; it returns ``fn`` unchanged.

    Raises
    ------
    ValueError
        If ``family`` is unknown, or (when decorating) the name is already registered.
    """
    if family not in FAMILIES:
        raise ValueError(f"Unknown family {family!r}; valid families are: {', '.join(FAMILIES)}")

    def decorator(fn):
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"The model name {fn.__name__!r} is already registered")
        _REGISTRY[fn.__name__] = _Entry(family, fn)
        return fn

    return decorator


def list_models() -> list[str]:
    """Names of all registered architectures, in registration order.

    Returns
    -------
    list of str
    """
    return list(_REGISTRY)


def build_model(name: str, size: str = "paper", n_outputs: int = 1, **overrides) -> nn.Module:
    """Build the architecture ``name`` at ``size``.

    Parameters
    ----------
    name : str
        A registered name (see :func:`list_models`).
    size : str
        One of ``SIZES``: "paper" (the paper's ~4.8M-parameter models) or the narrower/shallower "cpu",
        "quick", "smoke" versions of the same topology.
    n_outputs : int
        Number of regression outputs.
    **overrides
        Hyperparameters replacing those of the size (e.g. ``patch_size=32``, ``tokenizer="sw"``).

    Returns
    -------
    torch.nn.Module
        Maps spectra (B, L) to (B, n_outputs); ``model.config`` is a plain dict with name, family, size,
        n_outputs and every hyperparameter, enough to rebuild it with ``build_model(**config)``
        (minus family).

    Raises
    ------
    ValueError
        If ``name``, ``size`` or an override key is unknown (the message lists the valid ones).
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model name {name!r}; valid names are: {', '.join(_REGISTRY)}")
    if size not in SIZES:
        raise ValueError(f"Unknown model size {size!r}; valid sizes are: {', '.join(SIZES)}")
    entry = _REGISTRY[name]
    cls, hparams = entry.hparams(size)
    unknown = sorted(set(overrides) - set(hparams))
    if unknown:
        raise ValueError(
            f"Unknown hyperparameter(s) {unknown} for model {name!r}; valid ones are: {', '.join(hparams)}"
        )
    hparams = {**hparams, **overrides}
    model = cls(n_outputs=n_outputs, **hparams)
    model.config = dict(name=name, family=entry.family, size=size, n_outputs=n_outputs, **hparams)
    return model


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    int
        Elements of the parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe_models(size: str = "paper") -> list[dict]:
    """One JSON-ready row per architecture at ``size``.

    Parameters
    ----------
    size : str
        One of ``SIZES``.

    Returns
    -------
    list of dict
        Keys: name, family, size, n_params, paper_params (the paper's count for the paper size, from
        :data:`specvit_core.paper.PARAMS`; None for an architecture the paper does not have),
        description (first docstring line) and hparams.

    Raises
    ------
    ValueError
        If ``size`` is unknown.
    """
    rows = []
    for name, entry in _REGISTRY.items():
        model = build_model(name, size)
        rows.append(dict(
            name=name, family=entry.family, size=size, n_params=n_params(model),
            paper_params=PAPER_PARAMS.get(name), description=(entry.hparams.__doc__ or "").strip().splitlines()[0],
            hparams={k: v for k, v in model.config.items() if k not in ("name", "family", "size", "n_outputs")},
        ))
    return rows
