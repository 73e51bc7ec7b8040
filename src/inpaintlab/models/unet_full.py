"""Full-resolution U-Net generator (`model=unet_full`): the seed's data flow, readable top to
bottom; `model=transformer` and `model=ffc` swap its bottleneck.

    image [N,3,H,W] + mask [N,1,H,W]
      -> network input [N,4,H,W]: the masked input (RGB with the pixels to generate blanked,
         plus the mask channel), or [fill, mask] with `sees_fill` (generator.py)
      -> encoder: stem at full resolution, two stride-2 steps -> features [N,4C,H/4,W/4]
      -> bottleneck: dilated residual blocks at 1/4 resolution (a wide receptive field), or
         any module given as `bottleneck` with the same in/out shape (transformer.py, ffc.py)
      -> decoder: two upsampling steps with U-Net skip connections -> an RGB residual [N,3,H,W]
         over the cheap fill of the hole (fills.py; "edge" in conf/model/unet_full.yaml)
      -> composite: generated pixels where mask = 1, the original pixels elsewhere.

With C = 64 and a 256x256 input the features are exactly 64x64x256 (experiment=seed256).
The defaults are conf/model/unet_full.yaml's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from inpaintlab.models.generator import Generator
from inpaintlab.models.layers import DilatedBottleneck, conv_block


class Encoder(nn.Module):
    """Network input [N,4,H,W] -> (features [N,4C,H/4,W/4], skips at full and half resolution)."""

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
    """Features at 1/4 resolution + encoder skips -> an RGB residual at full resolution."""

    def __init__(self, base_channels: int) -> None:
        super().__init__()
        c = base_channels
        self.up1 = conv_block(4 * c, 2 * c)
        self.fuse1 = conv_block(4 * c, 2 * c)
        self.up2 = conv_block(2 * c, c)
        self.fuse2 = conv_block(2 * c, c)
        self.to_rgb = nn.Conv2d(c, 3, 1)
        nn.init.zeros_(self.to_rgb.weight)  # start as the coarse fill, learn the residual
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, features: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        full, half = skips
        x = self.up1(F.interpolate(features, scale_factor=2.0, mode="nearest"))
        x = self.fuse1(torch.cat([x, half], dim=1))
        x = self.up2(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        x = self.fuse2(torch.cat([x, full], dim=1))
        return self.to_rgb(x)


class UNetFull(Generator):
    """Encoder -> bottleneck -> U-Net decoder, all from full resolution."""

    def __init__(
        self,
        base_channels: int = 24,
        bottleneck_blocks: int = 4,
        bottleneck: nn.Module | None = None,
        fill: str = "edge",
        edge_width: float = 4.0,
        fill_levels: int = 5,
        sees_fill: bool = False,
    ) -> None:
        """`bottleneck_blocks` sizes the dilated bottleneck, used when no `bottleneck` is given."""
        super().__init__(fill, edge_width, fill_levels, sees_fill)
        self.encoder = Encoder(base_channels)
        self.bottleneck = bottleneck or DilatedBottleneck(4 * base_channels, bottleneck_blocks)
        self.decoder = Decoder(base_channels)

    def network(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        features, skips = self.encoder(x)
        return self.decoder(self.bottleneck(features), skips)
