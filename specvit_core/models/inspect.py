"""Looking inside a model: parameters per component, tensor shapes, receptive fields and throughput."""
from __future__ import annotations

import time

import torch
from torch import nn

from .registry import n_params


def component_params(model: nn.Module) -> dict[str, int]:
    """Trainable parameters of each top-level component (tokenizer, bridge, encoder, head, ...), in model order.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    dict of str to int
        The model's own parameters first (e.g. ``cls_token``, ``pos_embedding``), then its child modules;
        components without trainable parameters are left out.
    """
    counts = {name: n_params(child) for name, child in model.named_children() if n_params(child)}
    loose = {name: p.numel() for name, p in model.named_parameters(recurse=False) if p.requires_grad}
    return {**loose, **counts}


def layer_shapes(model: nn.Module, n_pixels: int = 4096, batch: int = 2) -> list[tuple[str, tuple]]:
    """Output shape of every top-level component for a batch of random spectra (B, n_pixels), in call order.

    Puts ``model`` in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        A model mapping spectra (B, L) to (B, n_outputs), on the CPU.
    n_pixels : int
        Spectrum length L.
    batch : int
        Batch size B.

    Returns
    -------
    list of (str, tuple)
        ``("input", (batch, n_pixels))``, then (child name, output shape) per call (the first element of a tuple
        output), then ``("output", shape)``.

    Raises
    ------
    ValueError
        The model rejects the input (e.g. a SpecViT built for another ``n_pixels``).
    """
    shapes, hooks = [], []
    for name, child in model.named_children():
        hooks.append(child.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.append((name, tuple((out[0] if isinstance(out, tuple) else out).shape)))))
    try:
        model.eval()
        with torch.no_grad():
            shapes.append(("output", tuple(model(torch.randn(batch, n_pixels)).shape)))
    finally:
        for h in hooks:
            h.remove()
    return [("input", (batch, n_pixels))] + shapes


def front_end(model: nn.Module) -> nn.Module:
    """The local front end whose receptive field is meaningful: the tokenizer, or the CNN feature stack.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        ``model.to_tokens`` (transformers, hybrids, BiLSTM) or ``model.features`` (CNNs).

    Raises
    ------
    ValueError
        The model has neither.
    """
    for name in ("to_tokens", "features"):
        if hasattr(model, name):
            return getattr(model, name)
    raise ValueError(f"{type(model).__name__} has neither a tokenizer (to_tokens) nor a CNN feature stack (features)")


def receptive_field(model: nn.Module, n_pixels: int = 4096) -> int:
    """Pixels that influence one output position of the front end in the middle of the spectrum (from gradients).

    Puts the front end in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        A model with a front end (see :func:`front_end`), on the CPU.
    n_pixels : int
        Spectrum length L.

    Returns
    -------
    int
        Width in pixels of the span of input pixels with a non-zero gradient.

    Raises
    ------
    ValueError
        The model has no front end.
    """
    net = front_end(model).eval()
    # a seeded batch, so that no pixel at the edge of the field hides behind an inactive ReLU by chance
    x = torch.randn(16, n_pixels, generator=torch.Generator().manual_seed(0)).requires_grad_()
    if hasattr(model, "to_tokens"):
        out = net(x)  # (B, tokens, D)
    else:
        out = net(x.unsqueeze(1)).transpose(1, 2)  # CNN features (B, C, L') -> (B, L', C)
    out[:, out.shape[1] // 2].sum().backward()
    touched = torch.nonzero(x.grad.abs().sum(dim=0)).flatten()
    return int(touched.max() - touched.min() + 1)


def inference_throughput(model: nn.Module, batch: int = 64, n_batches: int = 3, n_pixels: int = 4096) -> float:
    """Spectra per second of ``model`` in eval mode on this machine's CPU (one warm-up batch first).

    Puts ``model`` in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        A model on the CPU.
    batch : int
        Spectra per batch.
    n_batches : int
        Timed batches.
    n_pixels : int
        Spectrum length L.

    Returns
    -------
    float
        Throughput in spectra/s.
    """
    model.eval()
    x = torch.randn(batch, n_pixels)
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(n_batches):
            model(x)
    return batch * n_batches / (time.perf_counter() - start)
