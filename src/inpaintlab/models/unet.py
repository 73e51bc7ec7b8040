"""U-Net inpainting generator: the seed's data flow, readable top to bottom.

    image [N,3,H,W] + mask [N,1,H,W]
      -> masked input [N,4,H,W]   (RGB with the pixels to generate blanked, plus the mask channel)
      -> encoder: stem at full resolution, two stride-2 steps -> features [N,4C,H/4,W/4]
      -> bottleneck: residual blocks at 1/4 resolution (dilated, for a wide receptive field);
         `bottleneck` can be swapped for another module with the same in/out shape
      -> decoder: two upsampling steps with U-Net skip connections -> RGB [N,3,H,W], predicted as
         a residual over a cheap fill of the hole (coarse-to-fine, like DeepFill: the network
         starts from a plausible fill and spends its capacity on structure). `fill` chooses it:
         "pyramid" (smooth push-pull), "directional" (nearest known pixels left/right/up/down)
         or "edge" (the default config: directional at the hole's edge, where it continues the
         known pixels exactly, fading into the smooth pyramid fill inside)
      -> composite: generated pixels where mask = 1, the original pixels elsewhere.

With C = 64 and a 256x256 input the features are exactly 64x64x256 (the seed configuration).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def mask_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RGB with the pixels to generate blanked (set to 0), plus the mask as a 4th channel."""
    return torch.cat([image * (1.0 - mask), mask], dim=1)


def composite(generated: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generated pixels inside the mask, the known pixels unchanged outside it."""
    return image * (1.0 - mask) + generated * mask


def pyramid_fill(image: torch.Tensor, mask: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Smooth fill of the hole from the known pixels (push-pull / normalised convolution).

    Pull: average colour and known-fraction down a pyramid. Push: from the coarsest level up,
    each level keeps what it knows (weighted by the known fraction) and takes the rest from the
    level below. The coarsest level falls back to the mean known colour. Pure pooling and
    interpolation, so it exports to ONNX and TorchScript with dynamic sizes.
    """
    known = 1.0 - mask
    colours, weights = [image * known], [known]
    for _ in range(levels):
        colours.append(F.avg_pool2d(colours[-1], 2, ceil_mode=True))
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
    mean = colours[0].sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1e-6)
    filled = mean.expand_as(colours[-1])
    for colour, weight in zip(reversed(colours), reversed(weights), strict=True):
        coarse = F.interpolate(filled, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        alpha = weight.clamp(0.0, 1.0)
        filled = alpha * colour / weight.clamp_min(1e-6) + (1.0 - alpha) * coarse
    return filled


FAR = 1e4  # distance meaning "no known pixel in this direction" (more than any real one)
SCAN_STEPS = 8  # the directional fill looks up to 2**8 - 1 = 255 px away in each direction


def distance_from_left(known: torch.Tensor) -> torch.Tensor:
    """Distance from each pixel to the nearest known pixel at or left of it in its row
    (FAR where there is none within reach). A log-step min-scan: after step i every pixel has
    looked 2**(i+1) - 1 pixels to its left. Pad, slice, add and min only: cheap, and exportable
    to ONNX/TorchScript with dynamic H and W."""
    width = known.shape[-1]
    distance = (1.0 - known) * FAR
    for step in range(SCAN_STEPS):
        shift = 2**step
        shifted = F.pad(distance, (shift, 0), value=FAR)[..., :width] + shift
        distance = torch.minimum(distance, shifted)
    return distance


def nearest_known_from_left(
    colour: torch.Tensor, known: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(colour of the nearest known pixel at or left of each pixel, distance to it)."""
    distance = distance_from_left(known)
    columns = torch.arange(colour.shape[-1], device=colour.device).view(1, 1, 1, -1)
    source = (columns - distance.clamp_max(FAR - 1).long()).clamp_min(0)  # FAR: any column
    return torch.gather(colour, -1, source.expand_as(colour)), distance


def directional_fill(
    image: torch.Tensor, mask: torch.Tensor, edge_width: float | None = None, levels: int = 5
) -> torch.Tensor:
    """Fill each hole pixel from the nearest known pixels to its left, right, top and bottom,
    weighted by inverse squared distance; `pyramid_fill` where none of the four is within
    reach (e.g. the corners of an all-sides outpainting band). With `edge_width`, only the
    hole's edge gets it: the weight of the directional fill over the pyramid fill falls as
    exp(-(d - 1) / edge_width) with the distance d to the nearest known pixel.

    Why: it continues the known pixels exactly at the hole's edge (a border band becomes row
    replication), where the push-pull fill is a blur of everything nearby. On the built-in test
    set it alone beats Telea and Navier-Stokes on boxes and strokes; the network then only has
    to learn a correction.
    """
    known = 1.0 - mask
    total = torch.zeros_like(image)
    weight_sum = torch.zeros_like(mask)
    nearest_distance = torch.full_like(mask, FAR)
    for transpose in (False, True):  # along rows, then along columns
        colour, seen = image, known
        if transpose:
            colour, seen = colour.transpose(-1, -2), seen.transpose(-1, -2)
        # both directions in one batch: from the left, and from the right (flipped)
        nearest, distance = nearest_known_from_left(
            torch.cat([colour, colour.flip(-1)]), torch.cat([seen, seen.flip(-1)])
        )
        weight = (distance < FAR).to(image.dtype) / distance.clamp_min(1.0) ** 2
        weighted = nearest * weight
        for part in (0, 1):  # part 1 looked from the right: flip it back
            parts = [t.chunk(2)[part] for t in (weighted, weight, distance)]
            if part:
                parts = [t.flip(-1) for t in parts]
            if transpose:
                parts = [t.transpose(-1, -2) for t in parts]
            total = total + parts[0]
            weight_sum = weight_sum + parts[1]
            nearest_distance = torch.minimum(nearest_distance, parts[2])
    fallback = pyramid_fill(image, mask, levels)
    directional = torch.where(weight_sum > 0, total / weight_sum.clamp_min(1e-12), fallback)
    if edge_width is None:
        return directional
    edge = torch.exp(-(nearest_distance - 1.0).clamp(0.0, 100.0 * edge_width) / edge_width)
    return fallback + edge * (directional - fallback)


def conv_block(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 conv -> GroupNorm -> SiLU. GroupNorm because batches are small on a CPU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.GroupNorm(min(8, out_ch), out_ch),
        nn.SiLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection; dilation widens the receptive field cheaply."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_block(channels, channels, dilation=dilation)
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(min(8, channels), channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.conv2(self.conv1(x)))


class DilatedBottleneck(nn.Sequential):
    """Residual blocks at 1/4 resolution with growing dilation (1, 2, 4, 8, ...)."""

    def __init__(self, channels: int, num_blocks: int = 4) -> None:
        super().__init__(
            *[ResidualBlock(channels, dilation=2 ** (i % 4)) for i in range(num_blocks)]
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
    ) -> None:
        super().__init__()
        if fill not in ("pyramid", "directional", "edge"):
            raise ValueError(f"fill must be 'pyramid', 'directional' or 'edge', got {fill!r}")
        self.fill_levels, self.fill, self.edge_width = fill_levels, fill, edge_width
        self.encoder = Encoder(base_channels)
        self.bottleneck = bottleneck or DilatedBottleneck(4 * base_channels, bottleneck_blocks)
        self.decoder = Decoder(base_channels, fill_skip)

    def generate(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The raw generated RGB for every pixel (before compositing): what the losses see."""
        features, skips = self.encoder(mask_input(image, mask))
        if self.fill == "directional":
            fill = directional_fill(image, mask, levels=self.fill_levels)
        elif self.fill == "edge":
            fill = directional_fill(image, mask, self.edge_width, self.fill_levels)
        else:
            fill = pyramid_fill(image, mask, self.fill_levels)
        residual = self.decoder(self.bottleneck(features), skips, fill)
        return (fill + residual).clamp(0.0, 1.0)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return composite(self.generate(image, mask), image, mask)
