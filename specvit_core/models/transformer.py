"""SpecViT and its tokenizer variants (paper Secs. 3.3-3.4, 3.6), plus the ViT used by the hybrids."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import Encoder, LSTMBridge, make_tokenizer, n_tokens
from .registry import register_model

# Encoder widths per size; every transformer and hybrid entry starts from these. The CPU-sized smoke and quick
# models have no dropout: attention dropout forces PyTorch's unfused attention on CPU (measured 5x slower training
# for the quick SpecViT), and the fresh noise injected every epoch already regularizes these small models.
VIT = dict(
    paper=dict(dim=256, depth=6, heads=8, mlp_dim=1024, patch_size=16, dropout=0.1),
    cpu=dict(dim=128, depth=5, heads=4, mlp_dim=512, patch_size=16, dropout=0.1),
    quick=dict(dim=64, depth=3, heads=4, mlp_dim=256, patch_size=16, dropout=0.0),
    smoke=dict(dim=32, depth=2, heads=2, mlp_dim=64, patch_size=16, dropout=0.0),
)


class SpecViT(nn.Module):
    """Tokenizer -> (optional BiLSTM bridge) -> [CLS] + learned positions -> pre-LN encoder -> linear head on CLS.

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
        Spectrum length L the position embeddings are built for.
    """

    def __init__(self, *, n_outputs: int, dim: int, depth: int, heads: int, mlp_dim: int, patch_size: int,
                 stride: int | None = None, tokenizer: str = "conv", lstm_hidden: int | None = None,
                 dropout: float = 0.1, n_pixels: int = 4096):
        super().__init__()
        stride = stride or patch_size
        self.n_pixels = n_pixels
        self.to_tokens = make_tokenizer(tokenizer, dim=dim, patch_size=patch_size, stride=stride)
        self.bridge = LSTMBridge(dim=dim, hidden=lstm_hidden) if lstm_hidden else nn.Identity()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, n_tokens(n_pixels, patch_size, stride) + 1, dim))
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(dim=dim, depth=depth, heads=heads, mlp_dim=mlp_dim, dropout=dropout)
        self.head = nn.Linear(dim, n_outputs)
        for p in (self.cls_token, self.pos_embedding, self.head.weight):
            nn.init.trunc_normal_(p, std=0.02)
        nn.init.zeros_(self.head.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Spectra (B, L) -> encoder input Z_0 (B, N + 1, D) of paper eq. 6.

        Parameters
        ----------
        x : torch.Tensor, shape (B, L)
            Spectra with L = ``n_pixels``.

        Returns
        -------
        torch.Tensor, shape (B, N + 1, D)
            [CLS] then the N patch tokens, plus the position embeddings, after dropout.

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
        return self.dropout(torch.cat([cls, tokens], dim=1) + self.pos_embedding)  # (B, N + 1, D)

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
