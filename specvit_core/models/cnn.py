"""CNN baselines on the raw spectrum: a 1D ResNet-18 and an 8-layer StarNet-style CNN (paper Sec. 3.6)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import check_spectra
from .registry import register_model


def conv_bn(c_in: int, c_out: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    """Conv1d (no bias, 'same' padding for odd kernels) followed by BatchNorm1d.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel_size : int
        Kernel in pixels (odd for 'same' padding).
    stride : int
        Output length is ``ceil(L / stride)`` for odd kernels.

    Returns
    -------
    list of torch.nn.Module
        ``[Conv1d, BatchNorm1d]``, to unpack into a ``Sequential``.
    """
    return [nn.Conv1d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(c_out)]


def init_cnn(model: nn.Module) -> None:
    """He (fan-out) initialization of convolutions, as in torchvision's ResNet; modifies ``model`` in place.

    Parameters
    ----------
    model : torch.nn.Module
    """
    for m in model.modules():
        if isinstance(m, nn.Conv1d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class BasicBlock(nn.Module):
    """Two conv-BN layers with an identity (or 1x1 conv-BN) shortcut.

    Maps (B, c_in, L) to (B, c_out, ceil(L / stride)).

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel_size : int
        Kernel of both convolutions (odd).
    stride : int
        Stride of the first convolution and of the shortcut.
    """

    def __init__(self, *, c_in: int, c_out: int, kernel_size: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(c_in, c_out, kernel_size, stride), nn.ReLU(),
                                  *conv_bn(c_out, c_out, kernel_size))
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out
                         else nn.Sequential(*conv_bn(c_in, c_out, 1, stride)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet1d(nn.Module):
    """1D ResNet: stem conv (kernel 7, stride 2) + max-pool, BasicBlock stages, global average pool, linear.

    Parameters
    ----------
    n_outputs : int
        Regression outputs.
    widths : sequence of int
        Channels per stage; every stage after the first halves the length.
    blocks : sequence of int
        BasicBlocks per stage ([2, 2, 2, 2] is ResNet-18).
    kernel_size : int
        Kernel of the block convolutions.
    """

    def __init__(self, *, n_outputs: int, widths, blocks, kernel_size: int = 3):
        super().__init__()
        layers = [*conv_bn(1, widths[0], 7, stride=2), nn.ReLU(), nn.MaxPool1d(3, stride=2, padding=1)]
        c_in = widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(BasicBlock(c_in=c_in, c_out=width, kernel_size=kernel_size, stride=stride))
                c_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_outputs)
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(check_spectra(x).unsqueeze(1))  # (B, C, L / 32)
        return self.head(features.mean(dim=-1))  # global average pool -> (B, n_outputs)


class DeepCNN(nn.Module):
    """Plain CNN (no skips): conv-BN-ReLU layers, max-pool every ``pool_every`` layers, global average pool, linear.

    Parameters
    ----------
    n_outputs : int
        Regression outputs.
    widths : sequence of int
        Channels of each convolution (8 of them in the paper's model).
    kernel_size, pool, pool_every : int
        Convolution kernel, max-pool size (= stride) and how many convolutions between pools.
    """

    def __init__(self, *, n_outputs: int, widths, kernel_size: int, pool: int, pool_every: int):
        super().__init__()
        layers, c_in = [], 1
        for i, width in enumerate(widths):
            layers += [*conv_bn(c_in, width, kernel_size), nn.ReLU()]
            if (i + 1) % pool_every == 0:
                layers.append(nn.MaxPool1d(pool))
            c_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_outputs)
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(check_spectra(x).unsqueeze(1))  # (B, C, L / pool ** (depth / pool_every))
        return self.head(features.mean(dim=-1))  # (B, n_outputs)


@register_model(family="cnn")
def resnet18_1d(size):
    """ResNet-18 (1D): BasicBlocks [2, 2, 2, 2] with channels [72, 144, 288, 576], global average pooling.

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`ResNet1d`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    w = dict(paper=72, cpu=32, quick=14, smoke=6)[size]
    return ResNet1d, dict(widths=(w, 2 * w, 4 * w, 8 * w), blocks=(2, 2, 2, 2), kernel_size=3)


@register_model(family="cnn")
def deep_cnn(size):
    """Deep CNN: 8 conv layers (kernel 9, channels 64 -> 512), BatchNorm + ReLU, max-pool 4 after every second.

    Parameters
    ----------
    size : {"paper", "cpu", "quick", "smoke"}

    Returns
    -------
    cls : type
        :class:`DeepCNN`.
    hparams : dict
        Its constructor arguments but ``n_outputs``.

    Raises
    ------
    KeyError
        For an unknown size.
    """
    w = dict(paper=64, cpu=32, quick=14, smoke=6)[size]
    return DeepCNN, dict(widths=(w, w, 2 * w, 2 * w, 4 * w, 4 * w, 8 * w, 8 * w), kernel_size=9, pool=4, pool_every=2)
