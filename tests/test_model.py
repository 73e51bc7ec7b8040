"""Generator shapes along the seed's data flow, and compositing."""

from __future__ import annotations

import hydra
import pytest
import torch

from inpaintlab.models.unet import UNetGenerator, mask_input


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


def test_masked_input_blanks_the_hole():
    image = torch.rand(2, 3, 16, 16)
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    x = mask_input(image, mask)
    assert torch.all(x[:, :3][mask.expand(-1, 3, -1, -1) == 1] == 0)
    assert torch.equal(x[:, 3:], mask)


@pytest.mark.parametrize("size", [(32, 32), (24, 40), (64, 48)])
def test_known_pixels_pass_through_unchanged(size):
    torch.manual_seed(0)
    generator = UNetGenerator(base_channels=8, bottleneck_blocks=1).eval()
    image = torch.rand(3, 3, *size)
    mask = (torch.rand(3, 1, *size) > 0.6).float()
    with torch.no_grad():
        out = generator(image, mask)
    keep = mask.expand_as(image) == 0
    assert torch.equal(out[keep], image[keep])  # bit-exact, not just close
    assert not torch.allclose(out[~keep], image[~keep])  # the hole is generated, not copied


def test_output_does_not_depend_on_hidden_pixels():
    """The model must not peek: changing pixels under the mask cannot change the output."""
    torch.manual_seed(0)
    generator = UNetGenerator(base_channels=8, bottleneck_blocks=1).eval()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.no_grad():
        assert torch.allclose(generator(image, mask), generator(other, mask), atol=1e-6)


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
