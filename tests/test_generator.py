"""The generator skeleton (models/generator.py) every model follows, and the model configs:
known pixels pass through, the output never reads hidden pixels, training starts from the
fill, and each conf/model/NAME.yaml names models/NAME.py with that file's defaults."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import torch
from helpers.generators import assert_export_parity, random_batch
from omegaconf import OmegaConf

from inpaintlab.models.fills import make_fill
from inpaintlab.models.generator import Generator
from inpaintlab.models.layers import composite
from inpaintlab.models.unet import UNet
from inpaintlab.models.unet_full import UNetFull

ROOT = Path(__file__).resolve().parents[1]
MODEL_CONFIGS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
TINY = {  # each generator at its smallest, with its own default fill
    "unet": lambda **kw: UNet(base_channels=8, bottleneck_channels=16, bottleneck_blocks=1, **kw),
    "unet_full": lambda **kw: UNetFull(base_channels=8, bottleneck_blocks=1, **kw),
}


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("size", [(32, 32), (24, 40), (64, 48)])
def test_known_pixels_pass_through_unchanged(name, size):
    torch.manual_seed(0)
    generator = TINY[name]().eval()
    image = torch.rand(3, 3, *size)
    mask = (torch.rand(3, 1, *size) > 0.6).float()
    with torch.no_grad():
        out = generator(image, mask)
    keep = mask.expand_as(image) == 0
    assert torch.equal(out[keep], image[keep])  # bit-exact, not just close
    assert not torch.allclose(out[~keep], image[~keep])  # the hole is generated, not copied


@pytest.mark.parametrize("name", TINY)
def test_output_does_not_depend_on_hidden_pixels(name):
    """The model must not peek: changing pixels under the mask cannot change the output."""
    torch.manual_seed(0)
    generator = TINY[name]().eval()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    other = image * (1 - mask) + torch.rand_like(image) * mask
    with torch.no_grad():
        assert torch.allclose(generator(image, mask), generator(other, mask), atol=1e-6)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("fill", ["pyramid", "harmonic"])
def test_starts_as_its_fill(name, fill):
    generator = TINY[name](fill=fill).eval()
    image, mask = random_batch(1, 32, 32)
    with torch.no_grad():
        raw = generator.generate(image, mask)
    assert torch.allclose(raw, make_fill(image, mask, fill, 4.0, 5).clamp(0, 1))


@pytest.mark.parametrize("name", TINY)
def test_unknown_fill_is_a_clear_error(name):
    with pytest.raises(ValueError, match="fill must be one of"):
        TINY[name](fill="nearest")


def test_the_skeleton_is_fill_network_composite():
    """A network that returns a constant residual: generated = clamp(fill + residual), composited."""

    image, mask = random_batch(2, 16, 24)
    generator = constant_generator()
    expected = (make_fill(image, mask, "pyramid", 4.0, 5) + 0.25).clamp(0, 1)
    assert torch.equal(generator.generate(image, mask), expected)
    assert torch.equal(generator(image, mask), image * (1 - mask) + expected * mask)


class Constant(Generator):
    """The skeleton with a network that returns a constant residual of 0.25."""

    def network(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x[:, :3], 0.25)


def constant_generator() -> Constant:
    return Constant(fill="pyramid", edge_width=4.0, fill_levels=5, sees_fill=False)


def test_correction_scale_applies_that_share_of_the_correction():
    image, mask = random_batch(2, 16, 24)
    generator = constant_generator()
    fill = make_fill(image, mask, "pyramid", 4.0, 5)
    generator.correction_scale.fill_(0.5)
    assert torch.equal(generator.generate(image, mask), (fill + 0.125).clamp(0, 1))
    assert torch.equal(generator.generate(image, mask, scale=1.0), (fill + 0.25).clamp(0, 1))
    generator.correction_scale.fill_(0.0)
    assert torch.equal(generator(image, mask), composite(fill.clamp(0, 1), image, mask))


def test_correction_scale_is_saved_and_old_weights_load_with_the_whole_correction():
    generator = constant_generator()
    generator.correction_scale.fill_(0.3)
    state = generator.state_dict()
    assert float(state["correction_scale"]) == pytest.approx(0.3)
    again = constant_generator()
    again.correction_scale.fill_(0.7)
    again.load_state_dict(state)
    assert float(again.correction_scale) == pytest.approx(0.3)
    del state["correction_scale"]  # weights saved before the calibration existed
    again.load_state_dict(state)
    assert float(again.correction_scale) == 1.0


def test_the_exported_model_keeps_its_correction_scale(tmp_path):
    torch.manual_seed(0)
    generator = TINY["unet"]().eval()
    torch.nn.init.normal_(generator.to_rgb.weight, std=0.5)  # a correction that is not zero
    generator.correction_scale.fill_(0.4)
    image, mask = random_batch(1, 32, 32)
    with torch.no_grad():
        full = generator.generate(image, mask, scale=1.0)
        assert not torch.allclose(generator.generate(image, mask), full)
    assert_export_parity(generator, tmp_path, "unet", [(40, 48)])


def _defaults(target: str) -> dict[str, object]:
    module, _, name = target.rpartition(".")
    parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    return {k: p.default for k, p in parameters.items() if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_a_model_config_names_its_file_and_states_its_defaults(compose_cfg, name):
    """model=NAME: the generator, or the bottleneck it swaps in, is in models/NAME.py, and every
    value the config gives a class of models/NAME.py is that class's default: code and config
    cannot disagree about what `model=NAME` means."""
    model = OmegaConf.to_container(compose_cfg(f"model={name}").model, resolve=False)
    assert model["name"] == name and "ema_decay" in model
    nodes = [model["generator"], *[v for v in model["generator"].values() if isinstance(v, dict)]]
    assert any(node["_target_"].split(".")[2] == name for node in nodes)
    for node in nodes:
        if node["_target_"].split(".")[2] != name:
            continue  # a class of another file, configured for this model (unet_full's U-Net)
        defaults = _defaults(node["_target_"])
        for key, value in node.items():
            if key in defaults and not str(value).startswith("${"):
                assert value == defaults[key], f"{name}.yaml {key}: {value} != {defaults[key]}"
