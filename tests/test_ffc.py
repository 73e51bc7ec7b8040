"""The fast Fourier convolution bottleneck (models/ffc.py, model=ffc): the matmul DFT against
torch.fft, the identity start, the width arguments. Composition, training and export with the
U-Net: tests/test_unet_full.py."""

from __future__ import annotations

import pytest
import torch

from inpaintlab.models.ffc import FFCBottleneck, irfft2, rfft2


def test_starts_as_identity():
    x = torch.randn(2, 32, 8, 6)
    with torch.no_grad():
        assert torch.equal(FFCBottleneck(channels=32)(x), x)


def test_width_arguments():
    assert FFCBottleneck(base_channels=8)[0].global_channels == 16
    with pytest.raises(ValueError):
        FFCBottleneck(channels=32, base_channels=8)
    with pytest.raises(ValueError, match="global_ratio"):
        FFCBottleneck(channels=32, global_ratio=1.0)


@pytest.mark.parametrize("size", [(8, 8), (16, 12), (7, 9), (5, 6), (64, 64)])
def test_matmul_dft_equals_torch_fft(size):
    torch.manual_seed(0)
    h, w = size
    x = torch.randn(2, 3, h, w)
    re, im = rfft2(x)
    reference = torch.fft.rfft2(x, norm="ortho")
    assert torch.allclose(re, reference.real, atol=1e-5) and torch.allclose(
        im, reference.imag, atol=1e-5
    )
    spectrum = torch.randn(2, 3, h, w // 2 + 1, dtype=torch.complex64)  # not Hermitian-consistent
    expected = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")
    assert torch.allclose(irfft2(spectrum.real, spectrum.imag, w), expected, atol=1e-5)
    assert torch.allclose(irfft2(re, im, w), x, atol=1e-5)
