"""The shared model layers (models/layers.py): the network's input, compositing, widths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inpaintlab.models.layers import (
    DilatedBottleneck,
    bottleneck_channels,
    composite,
    conv_block,
    mask_input,
    network_input,
)


def test_masked_input_blanks_the_hole():
    image = torch.rand(2, 3, 16, 16)
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    x = mask_input(image, mask)
    assert torch.all(x[:, :3][mask.expand(-1, 3, -1, -1) == 1] == 0)
    assert torch.equal(x[:, 3:], mask)
    fill = torch.rand(2, 3, 16, 16)
    assert torch.equal(network_input(image, mask, fill, sees_fill=True), torch.cat([fill, mask], 1))
    assert torch.equal(network_input(image, mask, fill, sees_fill=False), x)


def test_composite_takes_generated_pixels_only_inside_the_mask():
    image, generated = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:5, 3:7] = 1
    out = composite(generated, image, mask)
    inside = mask.expand_as(image) == 1
    assert torch.equal(out[inside], generated[inside]) and torch.equal(out[~inside], image[~inside])


def test_bottleneck_width_is_channels_or_four_base_channels():
    assert bottleneck_channels(32, None) == 32 and bottleneck_channels(None, 8) == 32
    for both_or_neither in ((32, 8), (None, None)):
        with pytest.raises(ValueError, match="exactly one"):
            bottleneck_channels(*both_or_neither)


def test_blocks_use_the_norm_asked_for_and_dilation_grows():
    assert isinstance(conv_block(4, 8, norm="batch")[1], nn.BatchNorm2d)
    assert isinstance(conv_block(4, 8, norm="group")[1], nn.GroupNorm)
    bottleneck = DilatedBottleneck(8, num_blocks=5)
    assert [block.conv1[0].dilation[0] for block in bottleneck] == [1, 2, 4, 8, 1]
