"""Building blocks every generator shares: the network's input, compositing, conv blocks.

mask_input / network_input   what a generator's network reads
composite                    generated pixels inside the mask, the known ones outside
conv_block, ResidualBlock    3x3 conv -> norm -> activation (GroupNorm or BatchNorm)
DilatedBottleneck            residual blocks with growing dilation at 1/4 resolution
check_choice, bottleneck_channels   config values checked where the modules are built
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("group", "batch")
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


def mask_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RGB with the pixels to generate blanked (set to 0), plus the mask as a 4th channel."""
    return torch.cat([image * (1.0 - mask), mask], dim=1)


def network_input(
    image: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor, sees_fill: bool
) -> torch.Tensor:
    """What the network reads: the fill it corrects plus the mask (`sees_fill`), or the masked
    input. Both hold only the known pixels; the fill spares the network working it out."""
    return torch.cat([fill, mask], dim=1) if sees_fill else mask_input(image, mask)


def composite(generated: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generated pixels inside the mask, the known pixels unchanged outside it."""
    return image * (1.0 - mask) + generated * mask


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """A config value outside its choices is one clear error when the generator is built."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def bottleneck_channels(channels: int | None, base_channels: int | None) -> int:
    """A bottleneck's width: `channels`, or 4 * `base_channels` (what the full U-Net's encoder
    emits).

    `base_channels` exists for the configs: `${..base_channels}` follows the generator's
    width through overrides such as experiment=ci, where `4 * ...` cannot be written in YAML.
    """
    if (channels is None) == (base_channels is None):
        raise ValueError("give exactly one of channels or base_channels")
    return channels if channels is not None else 4 * base_channels


def norm_layer(kind: str, channels: int) -> nn.Module:
    """GroupNorm (exact for any batch size) or BatchNorm (folded into the convolution at export:
    onnxruntime then runs conv + norm as one op, about a quarter faster for these models)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(min(8, channels), channels)


def conv_block(
    in_ch: int,
    out_ch: int,
    stride: int = 1,
    dilation: int = 1,
    norm: str = "group",
    activation: str = "silu",
) -> nn.Sequential:
    """3x3 conv -> norm -> SiLU (or ReLU, which onnxruntime fuses into the convolution).
    GroupNorm by default because batches are small on a CPU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation),
        norm_layer(norm, out_ch),
        ACTIVATIONS[activation](inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection; dilation widens the receptive field cheaply."""

    def __init__(
        self, channels: int, dilation: int = 1, norm: str = "group", activation: str = "silu"
    ) -> None:
        super().__init__()
        self.conv1 = conv_block(
            channels, channels, dilation=dilation, norm=norm, activation=activation
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), norm_layer(norm, channels)
        )
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x + self.conv2(self.conv1(x)))


class DilatedBottleneck(nn.Sequential):
    """Residual blocks at 1/4 resolution with growing dilation (1, 2, 4, 8, 1, ...)."""

    def __init__(
        self, channels: int, num_blocks: int, norm: str = "group", activation: str = "silu"
    ) -> None:
        super().__init__(
            *[ResidualBlock(channels, 2 ** (i % 4), norm, activation) for i in range(num_blocks)]
        )
