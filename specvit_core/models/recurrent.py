"""The BiLSTM baseline (paper Sec. 3.6)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import make_tokenizer
from .registry import register_model


class BiLSTM(nn.Module):
    """Patch tokenizer -> stacked bidirectional LSTM -> last layer's final forward + backward states -> linear.

    Parameters
    ----------
    n_outputs : int
        Regression outputs.
    dim : int
        Token width D of the patch tokenizer.
    hidden, layers : int
        LSTM hidden size per direction and number of stacked layers.
    patch_size : int
        Tokenizer kernel (= stride, non-overlapping).
    tokenizer : str
        "conv" or "sw" (see :func:`make_tokenizer`).
    dropout : float
        Dropout between LSTM layers.
    """

    def __init__(self, *, n_outputs: int, dim: int, hidden: int, layers: int, patch_size: int,
                 tokenizer: str = "conv", dropout: float = 0.1):
        super().__init__()
        self.to_tokens = make_tokenizer(tokenizer, dim=dim, patch_size=patch_size, stride=patch_size)
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(2 * hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.to_tokens(x))  # h: (2 * layers, B, hidden), last layer's two directions last
        return self.head(torch.cat([h[-2], h[-1]], dim=1))  # (B, 2 * hidden) -> (B, n_outputs)


@register_model(family="recurrent")
def bilstm(size):
    """BiLSTM: Conv1D patch tokenizer (P = 16, D = 256) -> 3-layer BiLSTM (h = 256) -> linear (paper Sec. 3.6).

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`BiLSTM`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    dim, hidden = dict(paper=(256, 256), cpu=(128, 128), quick=(64, 48), smoke=(32, 16))[size]
    return BiLSTM, dict(dim=dim, hidden=hidden, layers=3, patch_size=16, tokenizer="conv",
                        dropout=0.0 if size == "smoke" else 0.1)
