"""Transformer bottleneck: self-attention over the 1/4-resolution feature map.

    features [N,C,H,W] -> depth x block -> [N,C,H,W]
    block:  x + CPE(x)                           (position, from a depthwise 3x3 conv)
            -> tokens [N,H*W,C]
            -> t + attention(LayerNorm(t))       (every position reads every other one)
            -> t + MLP(LayerNorm(t))
            -> back to [N,C,H,W]

Convolutions see a hole through a window that grows slowly with depth; one attention layer
lets a pixel deep inside a large hole (or past the border when outpainting) read the whole
image. Position comes from a conditional positional encoding (CPVT, Chu et al. 2021) rather
than a learned table, so any H, W works and exported models keep dynamic sizes. Every residual
branch ends in a zero-initialised layer: the bottleneck starts as the identity.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from inpaintlab.models.layers import bottleneck_channels


class SelfAttention(nn.Module):
    """Multi-head self-attention with reshapes written against run-time shapes.

    Written out rather than nn.MultiheadAttention so the traced graph (TorchScript and ONNX)
    has nothing sized at trace time: the token count varies with H * W.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} is not divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, c = x.shape  # traced as sizes of x, not as constants
        q, k, v = (
            self.qkv(x).reshape(n, length, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        )
        y = F.scaled_dot_product_attention(q, k, v)  # [N, heads, L, C/heads]
        return self.proj(y.transpose(1, 2).reshape(n, length, c))


class TransformerBlock(nn.Module):
    """Positional conv, then pre-norm attention and MLP, each a zero-initialised residual."""

    def __init__(self, channels: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.position = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.norm1 = nn.LayerNorm(channels)
        self.attn = SelfAttention(channels, heads)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels)
        )
        for layer in (self.position, self.attn.proj, self.mlp[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.position(x)
        t = x.flatten(2).transpose(1, 2)  # [N, H*W, C]
        t = t + self.attn(self.norm1(t))
        t = t + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape_as(x)


class TransformerBottleneck(nn.Sequential):
    """`depth` transformer blocks at 1/4 resolution: [N,C,H,W] -> [N,C,H,W], any H, W."""

    def __init__(
        self,
        channels: int | None = None,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        base_channels: int | None = None,
    ) -> None:
        channels = bottleneck_channels(channels, base_channels)
        super().__init__(*[TransformerBlock(channels, heads, mlp_ratio) for _ in range(depth)])
