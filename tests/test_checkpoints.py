"""checkpoints.load_generator on checkpoints from before model=NAME -> models/NAME.py: the old
class paths, and configs that left out what were then the classes' defaults."""

from __future__ import annotations

import pytest
import torch
from helpers.generators import random_batch
from omegaconf import OmegaConf

from inpaintlab.checkpoints import load_generator
from inpaintlab.inpaint_module import InpaintModule
from inpaintlab.models.unet import UNet
from inpaintlab.models.unet_full import UNetFull

# (model, the old class path, keys an old config did not write: they took the old defaults)
LEGACY = [
    ("unet", "inpaintlab.models.fast_unet.FastUNetGenerator", UNet, []),
    ("ffc", "inpaintlab.models.unet.UNetGenerator", UNetFull, ["fill"]),  # fill was "pyramid"
]


@pytest.mark.parametrize(("name", "old_target", "cls", "unwritten"), LEGACY)
def test_a_checkpoint_from_before_the_rename_loads_as_it_was(
    compose_cfg, tmp_path, name, old_target, cls, unwritten
):
    torch.manual_seed(0)
    cfg = compose_cfg("experiment=ci", f"model={name}", "model.ema_decay=0.5")
    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim)
    with torch.no_grad():  # the averaged weights differ from the generator's
        for p in module.ema.module.parameters():
            p.add_(0.01)
    generator = OmegaConf.to_container(cfg.model.generator, resolve=True)
    generator = {k: v for k, v in generator.items() if k not in unwritten}
    old_layout = {  # the hyperparameters before issue 15
        "model": {"name": name, "generator": generator | {"_target_": old_target}},
        "loss": OmegaConf.to_container(cfg.loss),
        "optim": {"lr": 0.002, "weight_decay": 1e-4, "betas": [0.9, 0.99], "ema_decay": 0.5},
        "num_samples": 6,
    }
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": old_layout}, path)
    loaded, _ = load_generator(str(path))
    assert type(loaded) is cls
    image, mask = random_batch(2, 32, 48)
    with torch.no_grad():
        assert torch.equal(loaded(image, mask), module.ema.module.eval()(image, mask))
