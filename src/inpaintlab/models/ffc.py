"""Fast Fourier convolution bottleneck (LaMa, Suvorov et al. 2022) at 1/4 resolution.

    features [N,C,H,W] -> num_blocks x FFC residual block -> [N,C,H,W]
    FFC layer: channels split into local (1 - global_ratio) and global (global_ratio) parts
        local  <- 3x3 conv(local) + 3x3 conv(global)
        global <- 3x3 conv(local) + spectral transform(global)
    spectral transform: 1x1 conv -> rfft2 -> 1x1 conv on (real, imag) -> GroupNorm + ReLU
                        -> irfft2 -> 1x1 conv
A 1x1 conv in the frequency domain touches every pixel at once: an image-wide receptive
field in the first layer, which is what large holes and repeated textures need.

The 2D real DFT is written as products with cos/sin matrices built from the input's own
H and W at run time (not torch.fft): the legacy ONNX exporter refuses fft_rfft2 and the
dynamo exporter's DFT node fails in onnxruntime 1.32 (docs/DESIGN.md), while MatMul, Cos and
Sin export everywhere and stay dynamic in H, W. Cost is O(HW(H+W)) per channel, small at 1/4
resolution. Both transforms use norm="ortho", like LaMa. GroupNorm rather than LaMa's BatchNorm:
batches are small on a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from inpaintlab.models.layers import bottleneck_channels, norm_layer


def dft_angles(length: int, freqs: int, like: torch.Tensor) -> torch.Tensor:
    """[length, freqs] angles 2*pi*(n*k mod length)/length.

    `length` comes from a tensor's shape, so a trace records it as a size, not a constant.
    The integer product is reduced before the float conversion: n*k reaches (H-1)^2, where
    float32 angles would lose ~1e-5 of precision.
    """
    n = torch.arange(length, device=like.device)
    k = torch.arange(freqs, device=like.device)
    return (torch.outer(n, k) % length).to(like.dtype) * (2 * math.pi / length)


def rfft2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.fft.rfft2(x, norm="ortho") as (real, imag), each [..., H, W//2+1]."""
    h, w = x.shape[-2], x.shape[-1]
    angle_w = dft_angles(w, w // 2 + 1, x)  # [W, W//2+1]: real DFT over W
    angle_h = dft_angles(h, h, x)  # [H, H]: full complex DFT over H (symmetric)
    cos_h, sin_h = torch.cos(angle_h), torch.sin(angle_h)
    re, im = x @ torch.cos(angle_w), -(x @ torch.sin(angle_w))
    # (cos - i sin) @ (re + i im)
    scale = (h * w) ** -0.5
    return (cos_h @ re + sin_h @ im) * scale, (cos_h @ im - sin_h @ re) * scale


def irfft2(re: torch.Tensor, im: torch.Tensor, width: int) -> torch.Tensor:
    """torch.fft.irfft2(re + i im, s=(H, width), norm="ortho") for [..., H, width//2+1] inputs.

    Inverse complex DFT over H, then the real inverse over W from the non-negative frequencies:
    every k with a mirror -k (0 < k < W - k) counts twice. k = 0 and, for even W, k = W/2 count
    once, and their imaginary parts drop out (sin = 0), as in torch.fft.irfft.
    """
    h = re.shape[-2]
    angle_h = dft_angles(h, h, re)
    cos_h, sin_h = torch.cos(angle_h), torch.sin(angle_h)
    re, im = cos_h @ re - sin_h @ im, cos_h @ im + sin_h @ re  # (cos + i sin) @ (re + i im)
    angle_w = dft_angles(width, width // 2 + 1, re).T  # [W//2+1, W]
    k = torch.arange(width // 2 + 1, device=re.device)[:, None]
    twice = ((k > 0) & (2 * k != width)).to(re.dtype) + 1.0  # Hermitian weights: 1 or 2
    scale = (h * width) ** -0.5
    return (re @ (twice * torch.cos(angle_w)) - im @ (twice * torch.sin(angle_w))) * scale


class FourierUnit(nn.Module):
    """rfft2 -> 1x1 conv over the stacked (real, imag) channels -> norm + ReLU -> irfft2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.norm = norm_layer("group", 2 * channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = rfft2(x)
        y = self.act(self.norm(self.conv(torch.cat([re, im], dim=1))))
        re, im = y.chunk(2, dim=1)
        return irfft2(re, im, x.shape[-1])


class SpectralTransform(nn.Module):
    """LaMa's global branch: halve the channels, Fourier unit with a skip, project back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = max(1, out_channels // 2)
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            norm_layer("group", hidden),
            nn.ReLU(inplace=True),
        )
        self.fourier = FourierUnit(hidden)
        self.expand = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.expand(x + self.fourier(x))


class FFC(nn.Module):
    """One fast Fourier convolution: four paths between the local and global channel groups."""

    def __init__(self, local_channels: int, global_channels: int) -> None:
        super().__init__()
        cl, cg = local_channels, global_channels
        self.local_to_local = nn.Conv2d(cl, cl, 3, padding=1, bias=False)
        self.global_to_local = nn.Conv2d(cg, cl, 3, padding=1, bias=False)
        self.local_to_global = nn.Conv2d(cl, cg, 3, padding=1, bias=False)
        self.global_to_global = SpectralTransform(cg, cg)
        self.norm_local, self.norm_global = norm_layer("group", cl), norm_layer("group", cg)

    def forward(
        self, x_local: torch.Tensor, x_global: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y_local = self.local_to_local(x_local) + self.global_to_local(x_global)
        y_global = self.local_to_global(x_local) + self.global_to_global(x_global)
        return self.norm_local(y_local), self.norm_global(y_global)


class FFCBlock(nn.Module):
    """Two FFC layers with a skip connection. The last norms start at zero: the block starts
    as the identity and the bottleneck as a whole as a pass-through."""

    def __init__(self, channels: int, global_ratio: float) -> None:
        super().__init__()
        self.global_channels = int(channels * global_ratio)
        local_channels = channels - self.global_channels
        if not 0 < self.global_channels < channels:
            raise ValueError(
                f"global_ratio={global_ratio} leaves no local or no global channels of {channels}"
            )
        self.ffc1 = FFC(local_channels, self.global_channels)
        self.ffc2 = FFC(local_channels, self.global_channels)
        self.act = nn.SiLU(inplace=True)
        for gn in (self.ffc2.norm_local, self.ffc2.norm_global):
            nn.init.zeros_(gn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_local, x_global = x[:, : -self.global_channels], x[:, -self.global_channels :]
        y_local, y_global = self.ffc1(x_local, x_global)
        y_local, y_global = self.ffc2(self.act(y_local), self.act(y_global))
        return x + torch.cat([y_local, y_global], dim=1)


class FFCBottleneck(nn.Sequential):
    """`num_blocks` FFC residual blocks at 1/4 resolution: [N,C,H,W] -> [N,C,H,W], any H, W."""

    def __init__(
        self,
        channels: int | None = None,
        num_blocks: int = 3,
        global_ratio: float = 0.5,
        base_channels: int | None = None,
    ) -> None:
        channels = bottleneck_channels(channels, base_channels)
        super().__init__(*[FFCBlock(channels, global_ratio) for _ in range(num_blocks)])
