"""Fast U-Net generator (`model=unet`, the default): the U-Net of unet.py without a single
convolution at full resolution.

    image [N,3,H,W] + mask [N,1,H,W]
      -> masked input [N,4,H,W]
      -> space-to-depth (PixelUnshuffle 2) -> [N,16,H/2,W/2] -> stem at 1/2 resolution (C channels)
      -> one stride-2 step -> features [N,B,H/4,W/4] -> dilated residual bottleneck
         (B = bottleneck_channels, default 3C)
      -> one upsampling step with the stem's skip -> [N,C,H/2,W/2]
      -> 1x1 conv to 12 channels -> depth-to-space (PixelShuffle 2) -> RGB residual [N,3,H,W]
         over the cheap fill (as in unet.py), then composited with the known pixels.

Why: on a CPU the full-resolution convolutions and the GroupNorms are most of the U-Net's time.
Working at 1/2 resolution cuts the convolution work about fourfold; the fill (exact at the
hole's edge with `fill: edge`) and the composite keep the output sharp where it meets the photo,
and depth-to-space still predicts every output pixel. BatchNorm by default: onnxruntime folds
it into the convolutions. H and W stay multiples of 8 (features at 1/4 like the U-Net).
Measured (docs/experiments.md): in the default 10-minute budget it trains 140 epochs instead of
64 and ends level with or ahead of the full-resolution U-Net on every mask family but thin
strokes (-0.18 dB), at 1/5 of its inference time.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from inpaintlab.models.unet import (
    FILLS,
    NORMS,
    DilatedBottleneck,
    check_choice,
    composite,
    conv_block,
    make_fill,
    mask_input,
)


class FastUNetGenerator(nn.Module):
    """Space-to-depth U-Net -> residual over a cheap fill -> composite. Inputs/output in [0, 1]."""

    def __init__(
        self,
        base_channels: int = 16,
        bottleneck_channels: int | None = None,
        bottleneck_blocks: int = 4,
        fill: str = "pyramid",
        edge_width: float = 4.0,
        fill_levels: int = 5,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_choice("fill", fill, FILLS)
        check_choice("norm", norm, NORMS)
        c, b = base_channels, bottleneck_channels or 3 * base_channels
        self.fill, self.edge_width, self.fill_levels = fill, edge_width, fill_levels
        self.stem = nn.Sequential(
            nn.PixelUnshuffle(2), conv_block(16, c, norm=norm), conv_block(c, c, norm=norm)
        )
        self.down = nn.Sequential(
            conv_block(c, b, stride=2, norm=norm), conv_block(b, b, norm=norm)
        )
        self.bottleneck = DilatedBottleneck(b, bottleneck_blocks, norm)
        self.up = conv_block(b, c, norm=norm)
        self.fuse = conv_block(2 * c, c, norm=norm)
        self.to_rgb = nn.Conv2d(c, 12, 1)
        nn.init.zeros_(self.to_rgb.weight)  # start as the fill, learn the residual
        nn.init.zeros_(self.to_rgb.bias)

    def generate(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The raw generated RGB for every pixel (before compositing): what the losses see."""
        half = self.stem(mask_input(image, mask))
        x = self.bottleneck(self.down(half))
        x = self.up(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        x = self.fuse(torch.cat([x, half], dim=1))
        residual = F.pixel_shuffle(self.to_rgb(x), 2)
        fill = make_fill(image, mask, self.fill, self.edge_width, self.fill_levels)
        return (fill + residual).clamp(0.0, 1.0)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return composite(self.generate(image, mask), image, mask)
