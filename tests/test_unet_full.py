"""model=unet_full (models/unet_full.py): shapes along the seed's data flow, the quality and ci
configs, and the bottlenecks that model=transformer and model=ffc swap in: composition, real
training steps, export parity at untraced sizes."""

from __future__ import annotations

import hydra
import pytest
import torch
from helpers.generators import assert_export_parity, off_identity, quick_fit, random_batch

from inpaintlab.inpaint_module import InpaintModule
from inpaintlab.models.ffc import FFCBottleneck
from inpaintlab.models.layers import mask_input
from inpaintlab.models.transformer import TransformerBottleneck
from inpaintlab.models.unet_full import UNetFull

BOTTLENECKS = {"transformer": TransformerBottleneck, "ffc": FFCBottleneck}


def trace_shapes(generator: torch.nn.Module, size: int) -> dict[str, tuple[int, ...]]:
    """Shapes at each stage of the data flow, NHWC wording as in DESIGN.md (batch 1)."""
    shapes: dict[str, tuple[int, ...]] = {}
    image = torch.rand(1, 3, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1
    nhwc = lambda t: tuple(t.permute(0, 2, 3, 1).shape[1:])  # noqa: E731
    shapes["input"] = nhwc(image)
    shapes["masked_input"] = nhwc(mask_input(image, mask))
    hook = generator.bottleneck.register_forward_pre_hook(  # the encoder's output
        lambda m, args: shapes.__setitem__("features", nhwc(args[0]))
    )
    with torch.no_grad():
        shapes["output"] = nhwc(generator(image, mask))
    hook.remove()
    return shapes


def test_seed256_config_gives_the_seed_shapes(compose_cfg):
    cfg = compose_cfg("experiment=seed256")
    assert cfg.data.image_size == 256
    generator = hydra.utils.instantiate(cfg.model.generator)
    assert trace_shapes(generator, 256) == {
        "input": (256, 256, 3),
        "masked_input": (256, 256, 4),
        "features": (64, 64, 256),
        "output": (256, 256, 3),
    }


def test_ci_config_is_tiny(compose_cfg):
    cfg = compose_cfg("experiment=ci")
    generator = hydra.utils.instantiate(cfg.model.generator)
    assert sum(p.numel() for p in generator.parameters()) < 100_000  # default unet: ~0.23M
    size = cfg.data.image_size
    shapes = trace_shapes(generator, size)
    assert shapes["output"] == (size, size, 3)
    assert shapes["features"][:2] == (size // 4, size // 4)


def test_quality_config_is_the_full_unet_scaled_up(compose_cfg):
    default, quality = compose_cfg(), compose_cfg("experiment=quality")
    assert quality.data == default.data  # same prepared data and test set: the tables compare
    assert quality.model.name == "unet_full" and default.model.name == "unet"
    sizes = [
        sum(p.numel() for p in hydra.utils.instantiate(cfg.model.generator).parameters())
        for cfg in (default, quality)
    ]
    assert sizes[1] > 1.5 * sizes[0]
    generator = hydra.utils.instantiate(quality.model.generator)
    assert trace_shapes(generator, 64)["features"] == (16, 16, 128)


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_ci_composition_follows_base_channels(compose_cfg, name):
    cfg = compose_cfg(f"model={name}", "experiment=ci")
    assert cfg.model.name == name
    generator = hydra.utils.instantiate(cfg.model.generator)
    assert isinstance(generator, UNetFull)
    assert isinstance(generator.bottleneck, BOTTLENECKS[name])
    features = {}
    generator.bottleneck.register_forward_hook(
        lambda m, i, out: features.__setitem__("shape", tuple(out.shape))
    )
    image, mask = random_batch(2, 32, 48)
    with torch.no_grad():
        out = generator.eval()(image, mask)
    assert features["shape"] == (2, 4 * 8, 8, 12)  # 1/4 resolution, 4 * base_channels (ci: 8)
    assert out.shape == image.shape
    keep = mask.expand_as(image) == 0
    assert torch.equal(out[keep], image[keep])  # known pixels bit-exact


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_default_config_width(compose_cfg, name):
    generator = hydra.utils.instantiate(compose_cfg(f"model={name}").model.generator)
    x = torch.randn(1, 96, 6, 10)
    with torch.no_grad():
        assert generator.bottleneck(x).shape == x.shape


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_trains_through_the_lightning_module(compose_cfg, name):
    torch.manual_seed(0)
    cfg = compose_cfg(f"model={name}", "experiment=ci")
    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim)
    before = {k: v.clone() for k, v in module.generator.bottleneck.state_dict().items()}
    trainer = quick_fit(module, steps=2)
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    after = module.generator.bottleneck.state_dict()
    # Every residual branch ends in a zero-initialised weight, which only a gradient can move
    # (weight decay keeps zero at zero). to_rgb is zero too, so gradients reach the bottleneck
    # from step 2: after it, each block's branch end must have moved.
    branch_ends = [k for k, v in before.items() if k.endswith("weight") and not v.any()]
    assert len(branch_ends) >= 2 * len(module.generator.bottleneck)
    assert all(after[k].any() for k in branch_ends)


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_export_parity_at_untraced_sizes(tmp_path, name):
    torch.manual_seed(0)
    generator = off_identity(
        UNetFull(base_channels=8, fill="pyramid", bottleneck=BOTTLENECKS[name](base_channels=8))
    )
    assert_export_parity(generator, tmp_path, name, sizes=[(48, 64), (64, 64)])
