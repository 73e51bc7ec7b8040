"""U-Net inpainting generator: the seed's data flow, readable top to bottom.

    image [N,3,H,W] + mask [N,1,H,W]
      -> masked input [N,4,H,W]   (RGB with the pixels to generate blanked, plus the mask channel)
      -> encoder: stem at full resolution, two stride-2 steps -> features [N,4C,H/4,W/4]
      -> bottleneck: residual blocks at 1/4 resolution (dilated, for a wide receptive field);
         `bottleneck` can be swapped for another module with the same in/out shape
      -> decoder: two upsampling steps with U-Net skip connections -> RGB [N,3,H,W], predicted as
         a residual over a cheap fill of the hole (fills.py; `fill` chooses it, "edge" in
         conf/model/unet_full.yaml)
      -> composite: generated pixels where mask = 1, the original pixels elsewhere.

With C = 64 and a 256x256 input the features are exactly 64x64x256 (the seed configuration).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from inpaintlab.models.fills import FILLS, make_fill


def mask_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RGB with the pixels to generate blanked (set to 0), plus the mask as a 4th channel."""
    return torch.cat([image * (1.0 - mask), mask], dim=1)


def network_input(
    image: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor, sees_fill: bool
) -> torch.Tensor:
    """What the encoder reads: the fill it corrects plus the mask (`sees_fill`), or the masked
    input. Both hold only the known pixels; the fill spares the network working it out."""
    return torch.cat([fill, mask], dim=1) if sees_fill else mask_input(image, mask)


def composite(generated: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generated pixels inside the mask, the known pixels unchanged outside it."""
    return image * (1.0 - mask) + generated * mask


NORMS = ("group", "batch")
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """A config value outside its choices is one clear error when the generator is built."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


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
    """Residual blocks at 1/4 resolution with growing dilation (1, 2, 4, 8, ...)."""

    def __init__(
        self, channels: int, num_blocks: int = 4, norm: str = "group", activation: str = "silu"
    ) -> None:
        super().__init__(
            *[ResidualBlock(channels, 2 ** (i % 4), norm, activation) for i in range(num_blocks)]
        )


class Encoder(nn.Module):
    """Masked input [N,4,H,W] -> (features [N,4C,H/4,W/4], skips at full and half resolution)."""

    def __init__(self, base_channels: int) -> None:
        super().__init__()
        c = base_channels
        self.stem = nn.Sequential(conv_block(4, c), conv_block(c, c))
        self.down1 = nn.Sequential(conv_block(c, 2 * c, stride=2), conv_block(2 * c, 2 * c))
        self.down2 = nn.Sequential(conv_block(2 * c, 4 * c, stride=2), conv_block(4 * c, 4 * c))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        full = self.stem(x)
        half = self.down1(full)
        quarter = self.down2(half)
        return quarter, [full, half]


class Decoder(nn.Module):
    """Features at 1/4 resolution + encoder skips -> RGB in [0, 1] at full resolution."""

    def __init__(
        self,
        base_channels: int,
        fill_skip: bool = False,
    ) -> None:
        super().__init__()
        c = base_channels
        self.fill_skip = fill_skip
        self.up1 = conv_block(4 * c, 2 * c)
        self.fuse1 = conv_block(4 * c, 2 * c)
        self.up2 = conv_block(2 * c, c)
        self.fuse2 = conv_block(2 * c + (3 if fill_skip else 0), c)
        self.to_rgb = nn.Conv2d(c, 3, 1)
        nn.init.zeros_(self.to_rgb.weight)  # start as the coarse fill, learn the residual
        nn.init.zeros_(self.to_rgb.bias)

    def forward(
        self, features: torch.Tensor, skips: list[torch.Tensor], fill: torch.Tensor
    ) -> torch.Tensor:
        """A residual RGB correction to `fill` at full resolution."""
        full, half = skips
        if self.fill_skip:
            full = torch.cat([full, fill], dim=1)
        x = self.up1(F.interpolate(features, scale_factor=2.0, mode="nearest"))
        x = self.fuse1(torch.cat([x, half], dim=1))
        x = self.up2(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        x = self.fuse2(torch.cat([x, full], dim=1))
        return self.to_rgb(x)


class UNetGenerator(nn.Module):
    """Encoder -> bottleneck -> U-Net decoder -> composite. Inputs and output in [0, 1]."""

    def __init__(
        self,
        base_channels: int = 32,
        bottleneck_blocks: int = 4,
        bottleneck: nn.Module | None = None,
        fill_levels: int = 5,
        fill: str = "pyramid",
        edge_width: float = 4.0,
        fill_skip: bool = False,
        sees_fill: bool = False,
    ) -> None:
        super().__init__()
        check_choice("fill", fill, FILLS)
        self.fill_levels, self.fill, self.edge_width = fill_levels, fill, edge_width
        self.sees_fill = sees_fill
        self.encoder = Encoder(base_channels)
        self.bottleneck = bottleneck or DilatedBottleneck(4 * base_channels, bottleneck_blocks)
        self.decoder = Decoder(base_channels, fill_skip)

    def generate(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The raw generated RGB for every pixel (before compositing): what the losses see."""
        fill = make_fill(image, mask, self.fill, self.edge_width, self.fill_levels)
        features, skips = self.encoder(network_input(image, mask, fill, self.sees_fill))
        residual = self.decoder(self.bottleneck(features), skips, fill)
        return (fill + residual).clamp(0.0, 1.0)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return composite(self.generate(image, mask), image, mask)
