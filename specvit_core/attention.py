"""Where the transformers look (paper Figure 10): CLS attention on the tokens, beside the log g information there.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import runs
from .fisher import LOGG, ceiling_axes, normalized_jacobian, normalized_sigma
from .models.blocks import ConvStem
from .models.transformer import token_centre_pixels


def cls_attention(run_dir, flux: np.ndarray, wave: np.ndarray) -> pd.DataFrame:
    """CLS-to-patch attention of a transformer or hybrid run, averaged over layers, heads and spectra.

    Parameters
    ----------
    run_dir : str or Path
        A run whose network has ``attention_maps`` (every transformer and hybrid).
    flux : ndarray, shape (N, L)
        Spectra (noisy, median-normalized) to average over.
    wave : ndarray, shape (L,)
        Wavelengths of the pixels in Angstrom.

    Returns
    -------
    pandas.DataFrame
        One row per token: ``wave_start``, ``wave_end``, ``wave_center`` of the pixels the token's tokenizer
        kernel covers, and ``attention`` normalized to a maximum of 1.

    Raises
    ------
    ValueError
        The run's network has no attention (the BiLSTM and the CNNs).
    FileNotFoundError
        The run has no ``best.pt``.
    """
    tokens, weights = cls_attention_by_layer(run_dir, flux, wave)
    mean = weights.mean(axis=(0, 1))  # (N_tokens,): every layer and head counts once
    return tokens[["wave_start", "wave_end", "wave_center"]].assign(attention=mean / mean.max())


def logg_information_by_token(grid, attention: pd.DataFrame, mag: float = 21.5, stride: int = 2) -> np.ndarray:
    """Where the spectra carry log g information, on the tokens of :func:`cls_attention`.

    Parameters
    ----------
    grid : TemplateGrid
        The simulator's templates.
    attention : pandas.DataFrame
        The output of :func:`cls_attention` (its ``wave_start`` and ``wave_end`` define the tokens).
    mag : float
        i-band magnitude of the noise.
    stride : int
        Use every ``stride``-th node of the ceiling grid (chapter 6).

    Returns
    -------
    ndarray, shape (N_tokens,)
        The per-pixel Fisher information (dx/dlog g)^2 / sigma^2 of the median-normalized templates, averaged over
        the nodes, summed over each token's pixels, normalized to a maximum of 1.
    """
    axes = ceiling_axes(grid, stride=stride)
    _, _, jac = normalized_jacobian(grid, axes)
    sigma, _ = normalized_sigma(grid, axes, mag)
    per_pixel = np.mean(jac[:, :, LOGG] ** 2 / sigma ** 2, axis=0)
    lo = np.searchsorted(grid.wave, attention.wave_start.to_numpy())
    hi = np.searchsorted(grid.wave, attention.wave_end.to_numpy(), side="right")
    info = np.array([per_pixel[a:b].sum() for a, b in zip(lo, hi)])
    return info / info.max()


def token_windows(wave: np.ndarray, patch_size: int, stride: int | None = None, tokenizer: str = "conv") -> pd.DataFrame:
    """The pixels and wavelengths each token sees: its patch (paper eq. 4: N = (L - P) // S + 1) or, for the
    ConvStem, its receptive field of ``ConvStem.RECEPTIVE_FIELD`` pixels centred on pixel 16 i (neighbouring
    ConvStem tokens overlap; the field is clipped at the ends of the spectrum).

    Parameters
    ----------
    wave : ndarray, shape (L,)
        Wavelengths of the pixels in Angstrom.
    patch_size : int
        Patch length P in pixels.
    stride : int, optional
        Step S between patch starts; default P (non-overlapping patches, as SpecViT's 256 patches of 16 pixels).
    tokenizer : {"conv", "sw", "convstem"}
        The run's tokenizer (``model.config["tokenizer"]``); "convstem" takes P = S = 16.

    Returns
    -------
    pandas.DataFrame
        One row per token: ``token`` (0-based), ``pixel_start`` and ``pixel_end`` (inclusive), ``wave_start`` and
        ``wave_end`` of those pixels, and ``wave_center`` (Angstrom) at the token's centre
        (:func:`specvit_core.models.transformer.token_centre_pixels`).

    Raises
    ------
    ValueError
        If ``patch_size`` or ``stride`` is not positive, or the patch is longer than the spectrum.
    """
    wave = np.asarray(wave, dtype=float)
    stride = stride or patch_size
    if patch_size < 1 or stride < 1 or patch_size > wave.size:
        raise ValueError(f"patch_size={patch_size} and stride={stride} do not tile a spectrum of {wave.size} pixels")
    centre = token_centre_pixels(tokenizer, wave.size, patch_size, stride)
    half = ((ConvStem.RECEPTIVE_FIELD if tokenizer == "convstem" else patch_size) - 1) / 2
    start = np.maximum(centre - half, 0).astype(int)
    end = np.minimum(centre + half, wave.size - 1).astype(int)
    return pd.DataFrame(dict(token=np.arange(start.size), pixel_start=start, pixel_end=end, wave_start=wave[start],
                             wave_end=wave[end], wave_center=np.interp(centre, np.arange(wave.size), wave)))


@torch.no_grad()
def cls_attention_by_layer(run_dir, flux: np.ndarray, wave: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """CLS-to-patch attention of a transformer or hybrid run per layer and head, averaged over spectra only.

    Parameters
    ----------
    run_dir : str or Path
        A run whose network has ``attention_maps`` (every transformer and hybrid).
    flux : ndarray, shape (N, L)
        Spectra (noisy, median-normalized) to average over.
    wave : ndarray, shape (L,)
        Wavelengths of the pixels in Angstrom.

    Returns
    -------
    tokens : pandas.DataFrame
        :func:`token_windows` of the run's tokenizer.
    weights : ndarray, shape (layers, heads, N_tokens)
        The attention probability from the CLS token to each patch token (a uniform head holds 1 / (N_tokens + 1)).

    Raises
    ------
    ValueError
        The run's network has no attention (the BiLSTM and the CNNs).
    FileNotFoundError
        The run has no ``best.pt``.
    """
    model, ckpt = runs.load_model(run_dir)
    config = ckpt["model_config"]
    if not hasattr(model, "attention_maps"):
        raise ValueError(f"{config['name']!r} has no attention layers; choose a transformer or hybrid run")
    tokens = token_windows(wave, config["patch_size"], config.get("stride"), config.get("tokenizer", "conv"))
    maps = model.attention_maps(torch.from_numpy(np.ascontiguousarray(flux, dtype=np.float32)))
    weights = torch.stack([m[:, :, 0, 1:].mean(dim=0) for m in maps]).numpy()  # (layers, heads, N_tokens)
    return tokens, weights
