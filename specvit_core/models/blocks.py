"""Building blocks shared by every architecture: tokenizers, ConvStem, pre-LN encoder, BiLSTM bridge.

Dropout on the CPU draws its masks from numpy's PCG64 rather than torch's Bernoulli sampler: PyTorch's CPU dropout
spent about a quarter of a SpecViT training step drawing random numbers one at a time
(``benchmarks/bench_vit_hf.py --profile``), and SDPA with dropout falls back to its unfused math path.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def check_spectra(x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` unchanged after checking that it is a batch of spectra (B, L).

    Parameters
    ----------
    x : torch.Tensor

    Returns
    -------
    torch.Tensor
        ``x`` itself.

    Raises
    ------
    ValueError
        If ``x`` is not two-dimensional.
    """
    if x.ndim != 2:
        raise ValueError(f"The input x must be a batch of spectra of shape (B, L); got shape {tuple(x.shape)}")
    return x


def n_tokens(n_pixels: int, patch_size: int, stride: int) -> int:
    """Number of patches N = floor((L - P) / S) + 1 (paper eq. 4).

    Parameters
    ----------
    n_pixels : int
        Spectrum length L.
    patch_size : int
        Patch length P in pixels.
    stride : int
        Step S between patch starts in pixels.

    Returns
    -------
    int
    """
    return (n_pixels - patch_size) // stride + 1


# Drop masks come from 16-bit uniform integers: an element is dropped when u < round(p * 2**16), so the drop
# probability is p to within 2**-17 and the kept elements are scaled by the exact 1 / (1 - p_effective).
MASK_LEVELS = 2**16
_fast_cpu_dropout = True


@contextmanager
def torch_dropout():
    """Within this block, dropout on the CPU uses PyTorch's own (``nn.Dropout``, SDPA's dropout) as on a GPU.

    The benchmarks time the two against each other; results of either are statistically the same.
    """
    global _fast_cpu_dropout
    saved, _fast_cpu_dropout = _fast_cpu_dropout, False
    try:
        yield
    finally:
        _fast_cpu_dropout = saved


def use_fast_dropout(x: torch.Tensor, p: float, training: bool) -> bool:
    """Whether the numpy-mask dropout applies: training, p > 0, a float32/float64 CPU tensor and no autocast."""
    return (_fast_cpu_dropout and training and p > 0 and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled("cpu"))


def drop_mask(shape: tuple[int, ...], p: float) -> tuple[torch.Tensor, float]:
    """A boolean mask (True = dropped) with drop probability p, and the scale 1 / (1 - p) of the kept elements.

    The numpy generator is seeded from torch's default generator, so ``torch.manual_seed`` makes masks repeatable.

    Parameters
    ----------
    shape : tuple of int
    p : float
        Drop probability in [0, 1).

    Returns
    -------
    mask : torch.Tensor of bool, shape ``shape``
    scale : float
        1 / (1 - p_effective), p_effective = round(p * 2**16) / 2**16.
    """
    if not 0 <= p < 1:
        raise ValueError(f"The drop probability p must be in [0, 1); got {p}")
    threshold = round(p * MASK_LEVELS)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    levels = np.random.default_rng(seed).integers(0, MASK_LEVELS, int(np.prod(shape)), dtype=np.uint16)
    # torch compares int16, not uint16: shift the levels by -2**15 (a view of the same bits) and the threshold with them
    mask = torch.from_numpy(levels.view(np.int16)).view(shape) < threshold - MASK_LEVELS // 2
    return mask, MASK_LEVELS / (MASK_LEVELS - threshold)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training masks come from :func:`drop_mask` (same distribution, several times faster)."""

    def forward(self, x):
        if not use_fast_dropout(x, self.p, self.training):
            return super().forward(x)
        mask, scale = drop_mask(tuple(x.shape), self.p)
        return x.masked_fill(mask, 0.0) * scale


class AttentionWithDropout(torch.autograd.Function):
    """softmax(Q K^T / sqrt(d_k)) with dropout on the probabilities, times V, for the CPU (masks by :func:`drop_mask`).

    Forward and backward are written out so that the (B, h, T, T) tensors are touched as few times as possible: the
    1 / sqrt(d_k) and 1 / (1 - p) factors go onto Q and V, and only the probabilities and a bool mask are saved.
    """

    @staticmethod
    def forward(ctx, q, k, v, p: float):
        q_scaled = q * q.shape[-1] ** -0.5
        probs = torch.matmul(q_scaled, k.transpose(-2, -1)).softmax(dim=-1)
        mask, scale = drop_mask(tuple(probs.shape), p)
        v_scaled = v * scale
        ctx.save_for_backward(q_scaled, k, v_scaled, probs, mask)
        ctx.scale = scale
        return torch.matmul(probs.masked_fill(mask, 0.0), v_scaled)

    @staticmethod
    def backward(ctx, grad_out):
        q_scaled, k, v_scaled, probs, mask = ctx.saved_tensors
        grad_v = torch.matmul(probs.masked_fill(mask, 0.0).transpose(-2, -1), grad_out) * ctx.scale
        grad_probs = torch.matmul(grad_out, v_scaled.transpose(-2, -1)).masked_fill_(mask, 0.0)
        grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
        grad_q = torch.matmul(grad_scores, k) * q_scaled.shape[-1] ** -0.5
        grad_k = torch.matmul(grad_scores.transpose(-2, -1), q_scaled)
        return grad_q, grad_k, grad_v, None


class ConvTokenizer(nn.Module):
    """Conv1D patch embedding (paper Sec. 3.3): kernel ``patch_size``, stride ``stride``, D output channels.

    Maps spectra (B, L) to tokens (B, N, D).

    Parameters
    ----------
    dim : int
        Token width D.
    patch_size : int
        Patch length P in pixels.
    stride : int
        Step S between patches in pixels.
    """

    def __init__(self, *, dim: int, patch_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv1d(1, dim, kernel_size=patch_size, stride=stride)

    def forward(self, x):
        return self.proj(check_spectra(x).unsqueeze(1)).transpose(1, 2)  # (B, D, N) -> (B, N, D)


class SlidingWindowTokenizer(nn.Module):
    """Sliding-window patch embedding: ``unfold`` into patches, then one shared Linear (paper App. B.2).

    It computes the same function family as :class:`ConvTokenizer` (and is initialized from the same
    distribution, both have fan-in P); only the autograd path differs.

    Parameters
    ----------
    dim : int
        Token width D.
    patch_size : int
        Patch length P in pixels.
    stride : int
        Step S between patches in pixels.
    """

    def __init__(self, *, dim: int, patch_size: int, stride: int):
        super().__init__()
        self.patch_size, self.stride = patch_size, stride
        self.proj = nn.Linear(patch_size, dim)

    def forward(self, x):
        patches = check_spectra(x).unfold(1, self.patch_size, self.stride)  # (B, N, P)
        return self.proj(patches)  # (B, N, D)


class ConvStem(nn.Module):
    """Four stride-2 convolutions (kernel 3) with channels D/8, D/4, D/2, D (paper Sec. 3.5).

    Total stride 16 and a receptive field of 1 + 2 * (1 + 2 + 4 + 8) = 31 pixels; the first three
    layers use BatchNorm + ReLU, the last one is a plain projection to the token dimension.
    Maps spectra (B, L) to tokens (B, ceil(L / 16), D).

    Parameters
    ----------
    dim : int
        Token width D (the inner widths are ``D // 8``, ``D // 4``, ``D // 2``).
    """

    RECEPTIVE_FIELD = 31  # pixels: 1 + 2 * (1 + 2 + 4 + 8)

    def __init__(self, *, dim: int):
        super().__init__()
        widths = [1, dim // 8, dim // 4, dim // 2]
        layers = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv1d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()]
        layers.append(nn.Conv1d(widths[-1], dim, 3, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(check_spectra(x).unsqueeze(1)).transpose(1, 2)  # (B, D, L/16) -> (B, L/16, D)


def make_tokenizer(kind: str, *, dim: int, patch_size: int, stride: int) -> nn.Module:
    """Return the tokenizer ``kind`` ("conv", "sw" or "convstem") mapping (B, L) to (B, N, D).

    Parameters
    ----------
    kind : {"conv", "sw", "convstem"}
        :class:`ConvTokenizer`, :class:`SlidingWindowTokenizer` or :class:`ConvStem`.
    dim : int
        Token width D.
    patch_size, stride : int
        Patch length P and step S in pixels (both 16 for "convstem").

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ValueError
        If ``kind`` is unknown, or if ``kind="convstem"`` with a patch size or stride other than 16.
    """
    if kind == "convstem":
        if patch_size != 16 or stride != 16:
            raise ValueError(f"The convstem tokenizer has a fixed patch_size=stride=16; got {patch_size}, {stride}")
        return ConvStem(dim=dim)
    tokenizers = {"conv": ConvTokenizer, "sw": SlidingWindowTokenizer}
    if kind not in tokenizers:
        raise ValueError(f"Unknown tokenizer {kind!r}; valid tokenizers are: conv, sw, convstem")
    return tokenizers[kind](dim=dim, patch_size=patch_size, stride=stride)


class Attention(nn.Module):
    """Multi-head self-attention (paper eqs. 7-9) on top of ``scaled_dot_product_attention``.

    Maps tokens (B, T, D) to (B, T, D).

    Parameters
    ----------
    dim : int
        Token width D.
    heads : int
        Number of heads h; ``dim`` must be divisible by it.
    dropout : float
        Dropout on the attention weights (training only) and on the output projection.

    Raises
    ------
    ValueError
        If ``dim`` is not divisible by ``heads``.
    """

    def __init__(self, *, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"The dim, {dim}, must be divisible by heads, {heads}")
        self.heads, self.dropout = heads, dropout
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), Dropout(dropout))

    def qkv(self, x):
        """Queries, keys and values of the tokens ``x``, split into heads.

        Parameters
        ----------
        x : torch.Tensor, shape (B, T, D)

        Returns
        -------
        q, k, v : torch.Tensor, each of shape (B, heads, T, D // heads)
        """
        B, T, D = x.shape
        qkv = self.to_qkv(x).view(B, T, 3, self.heads, D // self.heads)  # (B, T, 3, h, hd)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, h, T, hd)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x)
        if use_fast_dropout(q, self.dropout, self.training):
            out = AttentionWithDropout.apply(q, k, v, self.dropout)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.to_out(out.transpose(1, 2).reshape(B, T, D))  # (B, h, T, hd) -> (B, T, D)

    def weights(self, x):
        """Attention probabilities softmax(QK^T / sqrt(d_k)), computed explicitly.

        Parameters
        ----------
        x : torch.Tensor, shape (B, T, D)
            Input tokens (already layer-normalized in a :class:`Block`).

        Returns
        -------
        torch.Tensor, shape (B, heads, T, T)
            Row i is the distribution over the keys that token i attends with (sums to 1); no dropout.
        """
        q, k, _ = self.qkv(x)
        return (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)


class FeedForward(nn.Module):
    """Position-wise MLP: Linear, GELU, Linear, then dropout (as HuggingFace's ViT, which the paper's code used).

    Parameters
    ----------
    dim : int
        Token width D.
    mlp_dim : int
        Hidden width.
    dropout : float
    """

    def __init__(self, *, dim: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim), Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Pre-LN encoder layer (paper eqs. 10-11).

    Parameters
    ----------
    dim : int
        Token width D.
    heads : int
        Attention heads; ``dim`` must be divisible by it.
    mlp_dim : int
        Hidden width of the MLP.
    dropout : float

    Raises
    ------
    ValueError
        If ``dim`` is not divisible by ``heads``.
    """

    def __init__(self, *, dim: int, heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, heads=heads, dropout=dropout)
        self.mlp = FeedForward(dim=dim, mlp_dim=mlp_dim, dropout=dropout)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """A stack of ``depth`` pre-LN blocks followed by a final LayerNorm; Linear layers get ViT's init.

    Parameters
    ----------
    dim : int
        Token width D.
    depth : int
        Number of :class:`Block` layers.
    heads : int
        Attention heads; ``dim`` must be divisible by it.
    mlp_dim : int
        Hidden width of the MLPs.
    dropout : float

    Raises
    ------
    ValueError
        If ``dim`` is not divisible by ``heads``.
    """

    def __init__(self, *, dim: int, depth: int, heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(dim=dim, heads=heads, mlp_dim=mlp_dim, dropout=dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def attention_maps(self, x) -> list[torch.Tensor]:
        """Attention probabilities of every layer for the input tokens.

        Parameters
        ----------
        x : torch.Tensor, shape (B, T, D)
            The encoder input.

        Returns
        -------
        list of torch.Tensor
            One (B, heads, T, T) tensor per layer.
        """
        maps = []
        for block in self.blocks:
            maps.append(block.attn.weights(block.norm1(x)))
            x = block(x)
        return maps


class LSTMBridge(nn.Module):
    """BiLSTM context enrichment with residual + LayerNorm: e' = LN(e + Linear(BiLSTM(e))) (paper eq. 12).

    Maps tokens (B, N, D) to (B, N, D).

    Parameters
    ----------
    dim : int
        Token width D.
    hidden : int
        LSTM hidden size per direction.
    """

    def __init__(self, *, dim: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, e):
        context, _ = self.lstm(e)  # (B, N, 2h)
        return self.norm(e + self.proj(context))  # (B, N, D)
