"""The skeleton every generator follows; each model file (unet.py, unet_full.py) writes only
its network.

    image [N,3,H,W] + mask [N,1,H,W] (1 = generate this pixel)
      -> fill: a cheap fill of the hole (fills.py; `fill` chooses it)
      -> network: [fill, mask] (`sees_fill`) or the masked image -> an RGB residual [N,3,H,W]
      -> generated = clamp(fill + residual)          what the losses see (`generate`)
      -> composite: generated pixels where mask = 1, the original pixels elsewhere (`forward`)

Why a residual over a fill (coarse-to-fine, like DeepFill): the networks zero-initialise their
last layer, so training starts from a plausible fill and spends its capacity on structure.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintlab.models.fills import FILLS, make_fill
from inpaintlab.models.layers import check_choice, composite, network_input


class Generator(nn.Module):
    """fill -> network -> composite. Inputs and output in [0, 1]."""

    def __init__(self, fill: str, edge_width: float, fill_levels: int, sees_fill: bool) -> None:
        super().__init__()
        check_choice("fill", fill, FILLS)
        self.fill, self.edge_width, self.fill_levels = fill, edge_width, fill_levels
        self.sees_fill = sees_fill

    def network(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network input [N,4,H,W] -> an RGB residual over the fill [N,3,H,W]."""
        raise NotImplementedError

    def generate(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The raw generated RGB for every pixel (before compositing): what the losses see."""
        fill = make_fill(image, mask, self.fill, self.edge_width, self.fill_levels)
        residual = self.network(network_input(image, mask, fill, self.sees_fill), mask)
        return (fill + residual).clamp(0.0, 1.0)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return composite(self.generate(image, mask), image, mask)
