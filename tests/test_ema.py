"""model.ema_decay: validation, the checkpoint and export use the averaged generator weights."""

from __future__ import annotations

import pytest
import torch
from test_adversarial import module_for, random_batches
from torch.utils.data import DataLoader

from inpaintlab.checkpoints import load_generator
from inpaintlab.errors import UserError
from inpaintlab.train import make_trainer


def fit(module, cfg, tmp_path):
    trainer = make_trainer(
        cfg.trainer,
        module,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )
    train = DataLoader(random_batches(12, 32, seed=1), batch_size=4)
    trainer.fit(module, train, DataLoader(random_batches(4, 32, seed=2), batch_size=4))
    return trainer


def test_ema_weights_are_the_running_average_and_what_load_generator_returns(compose_cfg, tmp_path):
    torch.manual_seed(0)
    module, cfg = module_for(compose_cfg, "model.ema_decay=0.5")
    initial = {k: v.clone() for k, v in module.generator.state_dict().items()}
    seen: list[dict[str, torch.Tensor]] = []  # the generator's weights after each step
    original_update = module.ema.update_parameters

    def record(model):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        original_update(model)

    module.ema.update_parameters = record
    trainer = fit(module, cfg, tmp_path)
    assert len(seen) == 3 and int(module.ema.n_averaged) == 3

    # EMA with decay 0.5 over the three steps' weights (the first update copies)
    key = "fuse.0.weight"
    expected = seen[0][key]
    for weights in seen[1:]:
        expected = 0.5 * expected + 0.5 * weights[key]
    averaged = module.ema.module.state_dict()[key]
    torch.testing.assert_close(averaged, expected)
    assert not torch.equal(averaged, module.generator.state_dict()[key])
    assert not torch.equal(averaged, initial[key])

    trainer.save_checkpoint(tmp_path / "model.ckpt")
    generator, _ = load_generator(str(tmp_path / "model.ckpt"))
    assert torch.equal(generator.state_dict()[key], averaged)


def test_no_ema_by_default_keeps_the_plain_generator(compose_cfg):
    module, _ = module_for(compose_cfg, "model.ema_decay=0")
    assert module.ema is None and module.inference_generator is module.generator


@pytest.mark.parametrize("decay", ["1.0", "-0.1"])
def test_bad_ema_decay_is_a_user_error(compose_cfg, decay):
    with pytest.raises(UserError, match="ema_decay"):
        module_for(compose_cfg, f"model.ema_decay={decay}")
