"""Hybrids: a BiLSTM bridge (paper eq. 12) between the tokenizer and a one-layer-shallower ViT (Secs. 3.5-3.6)."""
from __future__ import annotations

from .registry import register_model
from .transformer import VIT, SpecViT


@register_model(family="hybrid")
def convstem_lstm(size):
    """ConvStem+LSTM: ConvStem -> 1-layer BiLSTM (h = D/2 = 128) + residual + LN -> 5-layer ViT (paper Sec. 3.5).

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`~specvit_core.models.transformer.SpecViT`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    vit = VIT[size]
    return SpecViT, dict(vit, tokenizer="convstem", stride=None, depth=vit["depth"] - 1, lstm_hidden=vit["dim"] // 2)


@register_model(family="hybrid")
def lstmformer(size):
    """LSTMFormer: Conv1D tokenizer -> 1-layer BiLSTM (h = 3D/4 = 192) + residual + LN -> 5-layer ViT.

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`~specvit_core.models.transformer.SpecViT`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    vit = VIT[size]
    return SpecViT, dict(vit, tokenizer="conv", stride=None, depth=vit["depth"] - 1, lstm_hidden=3 * vit["dim"] // 4)
