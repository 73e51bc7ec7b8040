"""PatchGAN discriminator (pix2pix, Isola et al. 2017; as used by LaMa) for the adversarial loss.

    image [N,3,H,W] (optionally + mask [N,1,H,W] as a 4th channel)
      -> num_downsamples x (4x4 conv, stride 2) + LeakyReLU    -> [N,C*2^(k-1),H/2^k,W/2^k]
      -> one 3x3 conv at that resolution + LeakyReLU           (wider receptive field)
      -> 3x3 conv to 1 channel: a logit per patch              -> [N,1,H/8,W/8] for k = 3
Each logit judges one overlapping patch (real = 1, generated = 0), so the loss can say *where*
an image looks fake: the losses in inpaint_module.py mark only the patches over the hole as fake.
The intermediate activations are returned too, for the feature-matching loss.

Spectral norm on every conv instead of a normalisation layer: it bounds the discriminator's
Lipschitz constant, which keeps GAN training stable without batch statistics (batches are small
on a CPU). Trained from scratch: nothing here needs pretrained weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Conv2d:
    """A spectrally normalised conv; padding keeps H/stride exactly for even sizes."""
    return spectral_norm(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2))


class PatchDiscriminator(nn.Module):
    """Image -> (logit map at 1/2^num_downsamples resolution, features of every block)."""

    def __init__(
        self, base_channels: int = 32, num_downsamples: int = 3, with_mask: bool = False
    ) -> None:
        super().__init__()
        # with_mask: the mask as a 4th input channel (real and fake get the same mask, so it
        # only tells the discriminator where to look). Off by default, as in LaMa.
        self.with_mask = with_mask
        channels = [3 + int(with_mask)] + [
            base_channels * 2 ** min(i, 3) for i in range(num_downsamples)
        ]
        self.blocks = nn.ModuleList(
            nn.Sequential(sn_conv(c_in, c_out, 4, stride=2), nn.LeakyReLU(0.2))
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        self.blocks.append(
            nn.Sequential(sn_conv(channels[-1], channels[-1], 3, stride=1), nn.LeakyReLU(0.2))
        )
        self.head = sn_conv(channels[-1], 1, 3, stride=1)

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([image, mask], dim=1) if self.with_mask else image
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features
