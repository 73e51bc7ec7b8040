"""The transformer bottleneck (models/transformer.py, model=transformer): it starts as the
identity and takes its width from channels or base_channels. Composition, training and export
with the U-Net: tests/test_unet_full.py."""

from __future__ import annotations

import pytest
import torch

from inpaintlab.models.transformer import TransformerBottleneck


def test_starts_as_identity():
    x = torch.randn(2, 32, 8, 6)
    with torch.no_grad():
        assert torch.equal(TransformerBottleneck(channels=32)(x), x)


def test_width_arguments():
    assert TransformerBottleneck(base_channels=8)[0].norm1.normalized_shape == (32,)
    with pytest.raises(ValueError):
        TransformerBottleneck(channels=32, base_channels=8)
    with pytest.raises(ValueError, match="divisible"):
        TransformerBottleneck(channels=30, heads=4)
