"""model=unet (the default, models/unet.py): shapes at 1/2 and 1/4 resolution, no peeking
through the stride-2 stem, real training steps, and export parity (BatchNorm folded into the
convolutions in the ONNX graph)."""

from __future__ import annotations

import hydra
import onnx
import pytest
import torch
from helpers.generators import assert_export_parity, off_identity, quick_fit, random_batch
from torch import nn

from inpaintlab.inpaint_module import InpaintModule
from inpaintlab.models.fills import fast_edge_fill, make_fill
from inpaintlab.models.unet import UNet, near_known_weight

SMALL = {
    "base_channels": 8,
    "bottleneck_channels": 16,
    "bottleneck_blocks": 2,
    "residual_reach": None,
}


def test_ci_composition_shapes_and_known_pixels(compose_cfg):
    cfg = compose_cfg("experiment=ci")
    assert cfg.model.name == "unet"
    generator = hydra.utils.instantiate(cfg.model.generator).eval()
    assert isinstance(generator, UNet)
    shapes = {}
    for name in ("stem", "bottleneck"):
        getattr(generator, name).register_forward_hook(
            lambda m, i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
    image, mask = random_batch(2, 32, 48)
    with torch.no_grad():
        out = generator(image, mask)
    assert shapes["stem"] == (2, 8, 16, 24)  # 1/2 resolution, base_channels (ci: 8)
    assert shapes["bottleneck"] == (2, 32, 8, 12)  # 1/4 resolution, bottleneck_channels
    assert out.shape == image.shape
    keep = mask.expand_as(image) == 0
    assert torch.equal(out[keep], image[keep])  # known pixels bit-exact


def test_no_convolution_at_full_resolution():
    """The point of the model: every convolution computes its outputs at 1/2 resolution or
    below (the stem reads the full-resolution input with stride 2)."""
    generator = UNet(base_channels=8, bottleneck_channels=16).eval()
    heights = []
    for module in generator.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(lambda m, i, out: heights.append(out.shape[-2]))
    with torch.no_grad():
        generator(*random_batch(1, 64, 64))
    assert heights and max(heights) == 32


@pytest.mark.parametrize(("fill", "sees_fill"), [("edge", False), ("fast_edge", True)])
def test_output_does_not_depend_on_hidden_pixels(fill, sees_fill):
    """The stride-2 stem mixes a hole pixel with its known neighbours: it must still not peek."""
    generator = off_identity(UNet(**SMALL, fill=fill, sees_fill=sees_fill))
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 7:21, 9:20] = 1  # odd edges: 2x2 cells half known, half hidden
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.no_grad():
        assert torch.allclose(generator(image, mask), generator(other, mask), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs", [{"norm": "layer"}, {"activation": "gelu"}, {"residual_reach": 2}]
)
def test_bad_options_are_one_clear_error(kwargs):
    with pytest.raises(ValueError, match="must be"):
        UNet(**kwargs)


def test_trains_through_the_lightning_module(compose_cfg):
    torch.manual_seed(0)
    cfg = compose_cfg("experiment=ci")
    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim)
    before = {k: v.clone() for k, v in module.generator.state_dict().items()}
    trainer = quick_fit(module, steps=3)
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    after = module.generator.state_dict()
    assert after["to_rgb.weight"].any()  # zero-initialised: only a gradient moves it
    running_mean = "bottleneck.0.conv1.1.running_mean"
    assert not torch.equal(after[running_mean], before[running_mean])  # BatchNorm statistics


@pytest.mark.parametrize(
    ("fill", "activation", "sees_fill"),
    [("pyramid", "silu", False), ("edge", "silu", False), ("fast_edge", "relu", True)],
)
def test_export_parity_and_folded_batchnorm(tmp_path, fill, activation, sees_fill):
    torch.manual_seed(0)
    generator = off_identity(UNet(**SMALL, fill=fill, activation=activation, sees_fill=sees_fill))
    with torch.no_grad():  # running statistics that are not the identity
        for module in generator.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    assert_export_parity(generator, tmp_path, "unet", sizes=[(48, 64), (40, 24)])
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops  # folded into the convolutions


def test_sees_fill_feeds_the_fill_and_the_mask_to_the_stem():
    generator = UNet(**SMALL, fill="fast_edge", sees_fill=True).eval()
    seen = []
    generator.stem[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    image, mask = random_batch(2, 32, 32)
    with torch.no_grad():
        generator(image, mask)
    assert torch.equal(seen[0][:, :3], fast_edge_fill(image, mask))
    assert torch.equal(seen[0][:, 3:], mask)


def test_the_correction_fades_out_deep_inside_large_holes():
    """residual_reach: 1 next to known pixels, 0 from `reach` px inside the hole on, so deep in a
    hole larger than any training hole the output is the fill itself."""
    mask = torch.zeros(1, 1, 160, 160)
    mask[..., 16:144, 16:144] = 1  # 128 px box: its centre is 64 px from the nearest known pixel
    weight = near_known_weight(mask, 32)
    assert weight[..., 10, 10].item() == 1.0 and weight[..., 17, 80].item() > 0.8
    assert weight[..., 80, 80].item() == 0.0
    assert (weight[0, 0, 80, 16:80].diff() <= 1e-6).all()  # falls monotonically into the hole
    torch.manual_seed(0)
    generator = off_identity(
        UNet(base_channels=8, bottleneck_blocks=1, fill="harmonic", residual_reach=32)
    ).eval()
    image = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        out = generator.generate(image, mask)
    fill = make_fill(image, mask, "harmonic", 4.0, 5).clamp(0, 1)
    assert torch.allclose(out[..., 70:90, 70:90], fill[..., 70:90, 70:90], atol=1e-6)
    assert not torch.allclose(out[..., 17:20, 17:140], fill[..., 17:20, 17:140], atol=1e-3)


def test_faded_correction_exports(tmp_path):
    torch.manual_seed(0)
    generator = off_identity(
        UNet(base_channels=8, bottleneck_blocks=1, fill="harmonic", residual_reach=16)
    )
    assert_export_parity(generator, tmp_path, "unet", [(48, 64), (40, 24)])
