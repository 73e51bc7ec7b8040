"""Metric definitions from DESIGN.md, checked against hand computations."""

from __future__ import annotations

import math

import torch

from inpaintlab import metrics


def test_psnr_counts_masked_pixels_only():
    target = torch.full((1, 3, 8, 8), 0.5)
    pred = target.clone()
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    pred[..., :4, :] += 0.1  # error 0.1 inside the mask
    pred[..., 4:, :] = 0.0  # a large error outside the mask must not count
    assert math.isclose(metrics.psnr_masked(pred, target, mask).item(), 20.0, abs_tol=1e-4)


def test_accuracy_uses_largest_channel_error():
    target = torch.zeros(1, 3, 1, 4)
    pred = target.clone()
    pred[0, 0, 0, 0] = 0.05  # ok
    pred[0, 1, 0, 1] = 0.2  # one channel off by 0.2 -> wrong
    pred[0, :, 0, 2] = 0.09  # all channels 0.09 -> ok
    mask = torch.ones(1, 1, 1, 4)
    mask[0, 0, 0, 3] = 0  # not counted
    assert math.isclose(metrics.accuracy_masked(pred, target, mask).item(), 2 / 3, rel_tol=1e-6)


def test_l1_and_ssim():
    target = torch.rand(2, 3, 16, 16)
    mask = torch.ones(2, 1, 16, 16)
    assert torch.allclose(metrics.l1_masked(target + 0.25, target, mask), torch.full((2,), 0.25))
    assert torch.allclose(metrics.ssim(target, target), torch.ones(2))
    assert (metrics.ssim(torch.rand(2, 3, 16, 16), target) < 0.5).all()


def test_summarize_averages_per_image_values():
    summary = metrics.summarize({"psnr_masked": [20.0, 30.0], "accuracy": [0.5, 1.0]})
    assert summary == {"psnr_masked": 25.0, "accuracy": 0.75, "n": 2}
