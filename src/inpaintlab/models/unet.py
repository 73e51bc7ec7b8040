"""U-Net generator at half resolution (`model=unet`, the default): the full U-Net's data flow
(unet_full.py) without a single convolution at full resolution.

    image [N,3,H,W] + mask [N,1,H,W]
      -> network input [N,4,H,W]: [fill, mask] with `sees_fill` (the default), else the masked
         input (generator.py: fill -> network -> composite)
      -> stem: a 6x6 stride-2 convolution (= space-to-depth, then a 3x3 convolution over the 16
         channels, without the transpose) and a 3x3 one -> [N,C,H/2,W/2]
      -> one stride-2 step -> features [N,B,H/4,W/4] -> dilated residual bottleneck
         (B = bottleneck_channels; null: 3C)
      -> a 3x3 conv to C channels, nearest upsampling, fused with the stem's skip -> [N,C,H/2,W/2]
      -> 1x1 conv to 12 channels -> depth-to-space (PixelShuffle 2) -> RGB residual [N,3,H,W]
         over the cheap fill (fills.py), faded out deep inside large holes (`residual_reach`).

Why: on a CPU the full-resolution convolutions and the GroupNorms are most of the U-Net's time.
Working at 1/2 resolution cuts the convolution work about fourfold; the fill and the composite
keep the output sharp where it meets the photo, and depth-to-space still predicts every output
pixel. BatchNorm by default: onnxruntime folds it into the convolutions (and ReLU too, with
`activation: relu`). H and W stay multiples of 8 (features at 1/4 like the full U-Net).
The defaults are conf/model/unet.yaml's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from inpaintlab.models.generator import Generator
from inpaintlab.models.layers import (
    ACTIVATIONS,
    NORMS,
    DilatedBottleneck,
    check_choice,
    conv_block,
    norm_layer,
)


def near_known_weight(mask: torch.Tensor, reach: int, step: int = 4) -> torch.Tensor:
    """1 at known pixels and next to them, falling linearly to 0 at `reach` px (Chebyshev) from
    the nearest known pixel: where the network's correction applies.

    Why: trained on crops at the training size, the network never sees a pixel more than about
    S/2 from a known one; deeper inside a large hole at full resolution its correction is a guess
    (it pushed real photos toward grey by up to 5 dB), while the smooth fill there is the best
    estimate there is. Computed at 1/`step` resolution by repeated 3x3 max-pools of the known
    mask (cheap, exports to ONNX), then upsampled.
    """
    near = F.max_pool2d(1.0 - mask, step, ceil_mode=True)  # a known pixel in the step x step block
    total = near
    levels = max(1, reach // step)
    for _ in range(levels - 1):
        near = F.max_pool2d(near, 3, stride=1, padding=1)
        total = total + near
    weight = F.interpolate(
        total / levels, size=mask.shape[-2:], mode="bilinear", align_corners=False
    )
    return weight.clamp(0.0, 1.0)


class UNet(Generator):
    """Half-resolution U-Net: the residual over the fill, computed at 1/2 and 1/4 resolution."""

    def __init__(
        self,
        base_channels: int = 16,
        bottleneck_channels: int | None = 32,
        bottleneck_blocks: int = 6,
        activation: str = "silu",
        norm: str = "batch",
        fill: str = "fast_biharmonic",
        edge_width: float = 4.0,
        fill_levels: int = 5,
        sees_fill: bool = True,
        residual_reach: int | None = 32,
    ) -> None:
        super().__init__(fill, edge_width, fill_levels, sees_fill)
        if residual_reach is not None and (
            not isinstance(residual_reach, int) or residual_reach < 4
        ):
            raise ValueError(
                f"residual_reach must be null or an integer >= 4; got {residual_reach!r}"
            )
        check_choice("norm", norm, NORMS)
        check_choice("activation", activation, tuple(ACTIVATIONS))
        self.residual_reach = residual_reach
        c, b = base_channels, bottleneck_channels or 3 * base_channels
        kw = {"norm": norm, "activation": activation}
        self.stem = nn.Sequential(
            nn.Conv2d(4, c, 6, stride=2, padding=2),
            norm_layer(norm, c),
            ACTIVATIONS[activation](inplace=True),
            conv_block(c, c, **kw),
        )
        self.down = nn.Sequential(conv_block(c, b, stride=2, **kw), conv_block(b, b, **kw))
        self.bottleneck = DilatedBottleneck(b, bottleneck_blocks, norm, activation)
        self.up = conv_block(b, c, **kw)  # at 1/4 resolution, then upsampled: 4x cheaper
        self.fuse = conv_block(2 * c, c, **kw)
        self.to_rgb = nn.Conv2d(c, 12, 1)
        nn.init.zeros_(self.to_rgb.weight)  # start as the fill, learn the residual
        nn.init.zeros_(self.to_rgb.bias)

    def network(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        half = self.stem(x)
        x = self.bottleneck(self.down(half))
        x = F.interpolate(self.up(x), scale_factor=2.0, mode="nearest")
        x = self.fuse(torch.cat([x, half], dim=1))
        residual = F.pixel_shuffle(self.to_rgb(x), 2)
        if self.residual_reach:
            residual = residual * near_known_weight(mask, self.residual_reach)
        return residual
