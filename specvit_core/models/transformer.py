"""SpecViT and its tokenizer variants (paper Secs. 3.3-3.4, 3.6), plus the ViT used by the hybrids.

Token positions are either learned and tied to the token index (``positions="learned"``, the paper's) or a fixed
sinusoidal encoding of each token's centre wavelength (``positions="wavelength"``, as SpectraFM encodes wavelength),
which a model told another wavelength grid (:meth:`SpecViT.set_wavelength`) follows.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..instrument import MR_WAVE_MAX, MR_WAVE_MIN
from .blocks import Dropout, Encoder, LSTMBridge, make_tokenizer, n_tokens
from .registry import register_model

POSITIONS = ("learned", "wavelength")
# The wavelength encoding normalizes the centre wavelength over a fixed reference range, wider than the MR grid
# (7100-8850 A), so that a window shifted by up to ~100 A (about 235 pixels) either way keeps distinct positions
# inside it. The normalized wavelength u in [0, 1] is scaled to WAVE_POSITIONS positions and pair k of the encoding
# turns by WAVE_POSITIONS * u / 10000^(2k / D) radians (Vaswani et al. 2017). One position is 7.8 A, about the
# 6.8 A of a 16-pixel token: the fastest pair turns once every 49 A (~7 tokens), as the Transformer's turns once
# every 6.3 token indices, instead of aliasing at the token spacing.
WAVE_REFERENCE = (7000.0, 9000.0)  # Angstrom
WAVE_POSITIONS = 256.0

# Encoder widths per size; every transformer and hybrid entry starts from these. The CPU-sized smoke and quick
# models have no dropout: attention dropout forces PyTorch's unfused attention on CPU (measured 5x slower training
# for the quick SpecViT), and the fresh noise injected every epoch already regularizes these small models. Every
# size has the paper's learned positions; ``positions="wavelength"`` is an override of build_model.
VIT = dict(
    paper=dict(dim=256, depth=6, heads=8, mlp_dim=1024, patch_size=16, dropout=0.1, positions="learned"),
    cpu=dict(dim=128, depth=5, heads=4, mlp_dim=512, patch_size=16, dropout=0.1, positions="learned"),
    quick=dict(dim=64, depth=3, heads=4, mlp_dim=256, patch_size=16, dropout=0.0, positions="learned"),
    smoke=dict(dim=32, depth=2, heads=2, mlp_dim=64, patch_size=16, dropout=0.0, positions="learned"),
)


def token_centre_pixels(tokenizer: str, n_pixels: int, patch_size: int, stride: int | None = None) -> np.ndarray:
    """Centre of each token's receptive field, in (fractional) pixel indices of the input spectrum.

    Parameters
    ----------
    tokenizer : {"conv", "sw", "convstem"}
        The tokenizer (see :func:`~specvit_core.models.blocks.make_tokenizer`).
    n_pixels : int
        Spectrum length L.
    patch_size : int
        Patch length P (16 for "convstem").
    stride : int or None
        Step S between patches; None means S = P.

    Returns
    -------
    ndarray of float64, shape (N,)
        ``i * S + (P - 1) / 2`` for the patch tokenizers (the middle of pixels iS .. iS + P - 1); ``16 * i`` for
        the ConvStem, whose kernel-3, stride-2, padding-1 layers centre output j on input 2j, so that token i
        sees pixels 16i - 15 .. 16i + 15.
    """
    stride = stride or patch_size
    index = np.arange(n_tokens(n_pixels, patch_size, stride), dtype=np.float64)
    if tokenizer == "convstem":
        return 16.0 * index
    return index * stride + (patch_size - 1) / 2


def wavelength_encoding(wave, dim: int) -> torch.Tensor:
    """Sinusoidal encoding of wavelengths: the Transformer's sin/cos pairs over geometric frequencies, applied to
    the wavelength normalized over ``WAVE_REFERENCE``.

    Parameters
    ----------
    wave : array_like or torch.Tensor, shape (N,)
        Wavelengths in Angstrom (e.g. token centres).
    dim : int
        Encoding width D (even).

    Returns
    -------
    torch.Tensor of float64, shape (N, D)
        Column 2k is sin(a_k), column 2k + 1 is cos(a_k), with a_k = 256 u / 10000^(2k / D) and
        u = (wave - 7000) / (9000 - 7000): periods from 2 pi positions of 7.8 A (49 A) upwards. A function of the
        wavelength alone.

    Raises
    ------
    ValueError
        If ``dim`` is odd.
    """
    if dim % 2:
        raise ValueError(f"The wavelength encoding needs an even dim; got {dim}")
    wave = torch.as_tensor(wave, dtype=torch.float64)
    u = (wave - WAVE_REFERENCE[0]) / (WAVE_REFERENCE[1] - WAVE_REFERENCE[0])
    frequencies = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=wave.device) / dim)
    angles = WAVE_POSITIONS * u[:, None] * frequencies  # (N, D / 2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # (N, D): sin, cos interleaved


class SpecViT(nn.Module):
    """Tokenizer -> (optional BiLSTM bridge) -> [CLS] + positions -> pre-LN encoder -> linear head on CLS.

    Parameters
    ----------
    n_outputs : int
        Regression outputs.
    dim, depth, heads, mlp_dim : int
        Token width D, encoder layers, attention heads and MLP width.
    patch_size : int
        Tokenizer kernel P.
    stride : int or None
        Tokenizer stride S; None means non-overlapping patches (S = P).
    tokenizer : str
        "conv" (Conv1D), "sw" (unfold + Linear) or "convstem" (4-layer CNN stem, fixed P = S = 16).
    lstm_hidden : int or None
        Hidden size of the BiLSTM bridge of paper eq. 12; None for a pure transformer.
    dropout : float
        Dropout on embeddings, attention weights and MLP/attention outputs.
    n_pixels : int
        Spectrum length L the positions are built for.
    positions : {"learned", "wavelength"}
        "learned": a trainable (1, N + 1, D) ``pos_embedding`` tied to the token index (the paper's).
        "wavelength": the fixed :func:`wavelength_encoding` of each token's centre wavelength (buffer
        ``token_wave``, saved in the state dict) plus a trainable ``cls_position``. The pixels are taken to span the
        MR range (7100-8850 A, the MR grid for L = 4096) until :meth:`set_wavelength` says otherwise.

    Raises
    ------
    ValueError
        An unknown ``positions``, or ``positions="wavelength"`` with an odd ``dim``.
    """

    def __init__(self, *, n_outputs: int, dim: int, depth: int, heads: int, mlp_dim: int, patch_size: int,
                 stride: int | None = None, tokenizer: str = "conv", lstm_hidden: int | None = None,
                 dropout: float = 0.1, n_pixels: int = 4096, positions: str = "learned"):
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"Unknown positions {positions!r}; valid ones are: {', '.join(POSITIONS)}")
        if positions == "wavelength" and dim % 2:
            raise ValueError(f"positions='wavelength' needs an even dim (sin/cos pairs); got dim={dim}")
        stride = stride or patch_size
        self.n_pixels, self.positions = n_pixels, positions
        self.to_tokens = make_tokenizer(tokenizer, dim=dim, patch_size=patch_size, stride=stride)
        self.bridge = LSTMBridge(dim=dim, hidden=lstm_hidden) if lstm_hidden else nn.Identity()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if positions == "learned":
            self.pos_embedding = nn.Parameter(torch.zeros(1, n_tokens(n_pixels, patch_size, stride) + 1, dim))
        else:
            self.centre_pixels = token_centre_pixels(tokenizer, n_pixels, patch_size, stride)
            self.cls_position = nn.Parameter(torch.zeros(1, 1, dim))
            self.register_buffer("token_wave", torch.zeros(len(self.centre_pixels), dtype=torch.float64))
            self.set_wavelength(np.linspace(MR_WAVE_MIN, MR_WAVE_MAX, n_pixels))
        self.dropout = Dropout(dropout)
        self.encoder = Encoder(dim=dim, depth=depth, heads=heads, mlp_dim=mlp_dim, dropout=dropout)
        self.head = nn.Linear(dim, n_outputs)
        trainable_positions = self.pos_embedding if positions == "learned" else self.cls_position
        for p in (self.cls_token, trainable_positions, self.head.weight):
            nn.init.trunc_normal_(p, std=0.02)
        nn.init.zeros_(self.head.bias)

    def set_wavelength(self, wave) -> None:
        """Tell a model with ``positions="wavelength"`` the wavelengths of the pixels it is given.

        The token-centre wavelengths (buffer ``token_wave``) become ``wave`` interpolated at the tokenizer's
        centre pixels (:func:`token_centre_pixels`); e.g. for a window shifted by s pixels, pass the wavelengths of
        the shifted window. They stay set until the next call and are saved in the state dict.

        Parameters
        ----------
        wave : array_like, shape (L,)
            Wavelengths of the L = ``n_pixels`` input pixels, Angstrom, finite and strictly increasing, inside
            ``WAVE_REFERENCE`` (7000-9000 A).

        Raises
        ------
        ValueError
            A model with learned positions (they are tied to the token index), or ``wave`` of another shape, not
            finite, not strictly increasing or outside the reference range.
        """
        if self.positions != "wavelength":
            raise ValueError("This model has learned positions, tied to the token index, not to wavelength; "
                             "build it with positions='wavelength' to give it the wavelengths of its pixels")
        wave = np.asarray(wave, dtype=np.float64)
        if wave.shape != (self.n_pixels,):
            raise ValueError(f"wave must have shape ({self.n_pixels},), one wavelength per input pixel; "
                             f"got shape {wave.shape}")
        if not np.isfinite(wave).all():
            raise ValueError(f"wave must be finite; it holds {int((~np.isfinite(wave)).sum())} NaN or inf value(s)")
        if np.any(np.diff(wave) <= 0):
            first = int(np.argmax(np.diff(wave) <= 0))
            raise ValueError(f"wave must be strictly increasing; wave[{first + 1}] = {wave[first + 1]} follows "
                             f"wave[{first}] = {wave[first]}")
        if wave[0] < WAVE_REFERENCE[0] or wave[-1] > WAVE_REFERENCE[1]:
            raise ValueError(f"wave spans {wave[0]:.1f}-{wave[-1]:.1f} A, outside the reference range "
                             f"{WAVE_REFERENCE[0]:.0f}-{WAVE_REFERENCE[1]:.0f} A the encoding is normalized over")
        centres = np.interp(self.centre_pixels, np.arange(self.n_pixels), wave)
        self.token_wave.copy_(torch.from_numpy(centres))

    def position_encoding(self) -> torch.Tensor:
        """The positions added to [CLS] and the N tokens.

        Returns
        -------
        torch.Tensor, shape (1, N + 1, D)
            ``pos_embedding`` (learned), or ``cls_position`` followed by the :func:`wavelength_encoding` of
            ``token_wave`` (wavelength), in the dtype of the trainable positions.
        """
        if self.positions == "learned":
            return self.pos_embedding
        dim = self.cls_position.shape[-1]
        tokens = wavelength_encoding(self.token_wave, dim).to(self.cls_position.dtype)[None]  # (1, N, D)
        return torch.cat([self.cls_position, tokens], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Spectra (B, L) -> encoder input Z_0 (B, N + 1, D) of paper eq. 6.

        Parameters
        ----------
        x : torch.Tensor, shape (B, L)
            Spectra with L = ``n_pixels``.

        Returns
        -------
        torch.Tensor, shape (B, N + 1, D)
            [CLS] then the N patch tokens, plus the positions (:meth:`position_encoding`), after dropout.

        Raises
        ------
        ValueError
            If L differs from ``n_pixels`` or ``x`` is not two-dimensional.
        """
        if x.shape[-1] != self.n_pixels:
            raise ValueError(
                f"The spectra have {x.shape[-1]} pixels; this model was built for n_pixels={self.n_pixels}"
            )
        tokens = self.bridge(self.to_tokens(x))  # (B, N, D)
        cls = self.cls_token.expand(len(tokens), -1, -1)  # (B, 1, D)
        return self.dropout(torch.cat([cls, tokens], dim=1) + self.position_encoding())  # (B, N + 1, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x))[:, 0])  # (B, n_outputs) from the CLS token

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Attention probabilities of every encoder layer for spectra x (B, L).

        Parameters
        ----------
        x : torch.Tensor, shape (B, L)
            Spectra with L = ``n_pixels``.

        Returns
        -------
        list of torch.Tensor
            One (B, heads, N + 1, N + 1) tensor per layer; row i is the distribution token i attends with,
            so ``maps[l][:, :, 0, 1:]`` is the CLS-to-patch attention. Call ``model.eval()`` first for
            maps without dropout, and wrap in ``torch.no_grad()`` when no gradient is needed.

        Raises
        ------
        ValueError
            If L differs from ``n_pixels`` or ``x`` is not two-dimensional.
        """
        return self.encoder.attention_maps(self.embed(x))


@register_model(family="transformer")
def specvit(size):
    """SpecViT: Conv1D patch tokenizer (P = S = 16), 6 pre-LN layers, D = 256, 8 heads (paper Secs. 3.3-3.4).

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`SpecViT`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    return SpecViT, dict(VIT[size], tokenizer="conv", stride=None)


@register_model(family="transformer")
def specvit_sw(size):
    """SpecViT with the sliding-window tokenizer (unfold + Linear) of paper App. B.2.

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`SpecViT`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    return SpecViT, dict(VIT[size], tokenizer="sw", stride=None)


@register_model(family="transformer")
def convstem_vit(size):
    """ConvStem ViT: 4-layer CNN stem (stride 16, 31-pixel receptive field) tokenizer, then the SpecViT encoder.

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`SpecViT`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    return SpecViT, dict(VIT[size], tokenizer="convstem", stride=None)


@register_model(family="transformer")
def overlap_vit(size):
    """OverlapViT: Conv1D tokenizer with overlapping patches (kernel 32, stride 16), SpecViT encoder.

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`SpecViT`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    return SpecViT, dict(VIT[size], tokenizer="conv", patch_size=32, stride=16)
