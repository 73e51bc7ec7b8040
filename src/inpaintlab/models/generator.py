"""The skeleton every generator follows; each model file (unet.py, unet_full.py) writes only
its network.

    image [N,3,H,W] + mask [N,1,H,W] (1 = generate this pixel)
      -> fill: a cheap fill of the hole (fills.py; `fill` chooses it)
      -> network: [fill, mask] (`sees_fill`) or the masked image -> an RGB residual [N,3,H,W]
      -> generated = clamp(fill + scale * residual)  what the losses see (`generate`)
      -> composite: generated pixels where mask = 1, the original pixels elsewhere (`forward`)

Why a residual over a fill (coarse-to-fine, like DeepFill): the networks zero-initialise their
last layer, so training starts from a plausible fill and spends its capacity on structure.

Why a `correction_scale` (a buffer, saved with the weights and exported): trained on a few
photos, the correction can make the fill worse on photos it never saw (docs/results.md).
Training learns the whole correction (scale 1); each validation measures the share of it
that does best on the val photos, 0 (the fill alone) to 1, and the model keeps that share
(inpaint_module.py), so on held-out photos it is never worse than its own fill.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintlab.models.fills import FILLS, make_fill
from inpaintlab.models.layers import check_choice, composite, network_input


def corrected(
    fill: torch.Tensor, correction: torch.Tensor, scale: float | torch.Tensor
) -> torch.Tensor:
    """The generated RGB from the fill and `scale` (the share) of the network's correction."""
    return (fill + scale * correction).clamp(0.0, 1.0)


class Generator(nn.Module):
    """fill -> network -> composite. Inputs and output in [0, 1]."""

    def __init__(self, fill: str, edge_width: float, fill_levels: int, sees_fill: bool) -> None:
        super().__init__()
        check_choice("fill", fill, FILLS)
        self.fill, self.edge_width, self.fill_levels = fill, edge_width, fill_levels
        self.sees_fill = sees_fill
        self.register_buffer("correction_scale", torch.ones(()))

    def network(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network input [N,4,H,W] -> an RGB residual over the fill [N,3,H,W]."""
        raise NotImplementedError

    def fill_and_correction(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fill and the network's whole correction of it, each [N,3,H,W]."""
        fill = make_fill(image, mask, self.fill, self.edge_width, self.fill_levels)
        return fill, self.network(network_input(image, mask, fill, self.sees_fill), mask)

    def generate(
        self, image: torch.Tensor, mask: torch.Tensor, scale: float | torch.Tensor | None = None
    ) -> torch.Tensor:
        """The raw generated RGB for every pixel (before compositing): what the losses see.
        scale: the share of the correction (None: the calibrated `correction_scale`)."""
        fill, correction = self.fill_and_correction(image, mask)
        return corrected(fill, correction, self.correction_scale if scale is None else scale)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # Checkpoints from before the calibration hold no scale: they applied the whole correction.
        state_dict.setdefault(prefix + "correction_scale", torch.ones(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return composite(self.generate(image, mask), image, mask)
