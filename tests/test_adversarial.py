"""loss=adversarial: PatchGAN shapes, mask-aware targets, and a short manual-optimization fit."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from inpaintlab.checkpoints import load_generator
from inpaintlab.errors import UserError
from inpaintlab.inpaint_module import (
    InpaintModule,
    adversarial_loss,
    discriminator_loss,
    fake_target,
)
from inpaintlab.models.discriminator import PatchDiscriminator
from inpaintlab.settings import check_train
from inpaintlab.train import make_trainer


@pytest.mark.parametrize("size", [32, 64])
def test_discriminator_gives_logits_at_one_eighth_and_features(size):
    disc = PatchDiscriminator(base_channels=8)
    logits, features = disc(torch.rand(2, 3, size, size))
    assert logits.shape == (2, 1, size // 8, size // 8)
    assert [tuple(f.shape) for f in features] == [
        (2, 8, size // 2, size // 2),
        (2, 16, size // 4, size // 4),
        (2, 32, size // 8, size // 8),
        (2, 32, size // 8, size // 8),
    ]
    with_mask = PatchDiscriminator(base_channels=8, with_mask=True)
    logits, _ = with_mask(torch.rand(2, 3, size, size), torch.ones(2, 1, size, size))
    assert logits.shape == (2, 1, size // 8, size // 8)


def test_fake_target_is_zero_only_on_patches_over_the_hole():
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 2:5, 20:30] = 1  # rows in cell 0, columns in cells 2 and 3 (8 px cells)
    target = fake_target(mask, (4, 4))
    expected = torch.ones(1, 1, 4, 4)
    expected[..., 0, 2:4] = 0
    assert torch.equal(target, expected)
    assert torch.equal(fake_target(torch.zeros(1, 1, 32, 32), (4, 4)), torch.ones(1, 1, 4, 4))


def test_losses_follow_the_mask_aware_targets():
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:16, 8:24] = 1
    target = fake_target(mask, (4, 4))
    confident = 20.0 * (2 * target - 1)  # the discriminator that is right everywhere
    real = torch.full_like(target, 20.0)
    assert discriminator_loss(real, confident, mask) < 1e-6
    assert discriminator_loss(real, torch.full_like(target, -20.0), mask) > 1.0  # all "fake": wrong
    # the generator's term only looks at the hole patches
    elsewhere = confident + 5.0 * target  # change only the logits outside the hole
    assert torch.equal(adversarial_loss(confident, mask), adversarial_loss(elsewhere, mask))
    assert adversarial_loss(confident, mask) > 10.0  # the discriminator catches every hole patch


def random_batches(n: int, size: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    images = torch.rand(n, 3, size, size, generator=g)
    return [{"image": images[i], "mask": mask[i]} for i in range(n)]


class GradNorms(L.Callback):
    """The gradient norm each optimizer.step() sees (after any clipping)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def module_for(compose_cfg, *overrides: str) -> tuple[InpaintModule, object]:
    cfg = compose_cfg("experiment=ci", *overrides)
    return InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim, num_samples=2), cfg


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_short_fit_updates_generator_and_discriminator(compose_cfg, tmp_path, precision):
    torch.manual_seed(0)
    module, cfg = module_for(compose_cfg, "loss=adversarial", "trainer.gradient_clip_val=0.01")
    assert not module.automatic_optimization
    before = {k: v.clone() for k, v in module.state_dict().items()}
    grad_norms = GradNorms()
    trainer = make_trainer(
        cfg.trainer,
        module,
        callbacks=[grad_norms],
        precision=precision,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )
    assert trainer.gradient_clip_val is None and module.clip_val == cfg.trainer.gradient_clip_val
    train = DataLoader(random_batches(8, 32, seed=1), batch_size=4)
    val = DataLoader(random_batches(4, 32, seed=2), batch_size=4)
    trainer.fit(module, train, val)

    after = module.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"generator", "discriminator"}
    assert not torch.equal(
        before["discriminator.head.parametrizations.weight.original"],
        after["discriminator.head.parametrizations.weight.original"],
    )
    found = trainer.callback_metrics
    for key in ["train_loss", "train_d_loss", "train_adv_loss", "train_fm_loss", "val_psnr"]:
        assert torch.isfinite(found[key]), key
    assert trainer.global_step == 4  # 2 batches x (discriminator + generator step)
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == 2  # one schedule step a batch
    generator_group, discriminator_group = (o.param_groups[0] for o in trainer.optimizers)
    assert discriminator_group["lr"] == cfg.optim.discriminator.lr  # constant: no schedule
    for key in ("weight_decay", "betas"):  # the generator's, through the config's interpolation
        assert discriminator_group[key] == generator_group[key]
    assert len(grad_norms.norms) == 4 and max(grad_norms.norms) <= 0.01 * (1 + 1e-4)  # clipped

    # the checkpoint holds both networks; evaluation and export get the generator alone
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    generator, _ = load_generator(str(tmp_path / "model.ckpt"))
    assert type(generator) is type(module.generator)  # the generator alone
    for key, value in generator.state_dict().items():
        assert torch.equal(value, module.generator.state_dict()[key].cpu())


def test_default_loss_keeps_automatic_optimization(compose_cfg, tmp_path):
    module, cfg = module_for(compose_cfg)
    assert cfg.loss.adversarial == 0 and cfg.loss.feature_matching == 0
    assert module.automatic_optimization
    assert not hasattr(module, "discriminator")
    assert all(k.startswith("generator.") for k in module.state_dict())
    trainer = make_trainer(cfg.trainer, module, logger=False, default_root_dir=str(tmp_path))
    assert trainer.gradient_clip_val == cfg.trainer.gradient_clip_val  # Lightning clips, as before


def test_loss_adversarial_puts_the_discriminator_under_the_model(compose_cfg):
    """loss=adversarial: the loss group holds weights only; the discriminator is model.discriminator
    (conf/model/discriminator/patchgan.yaml: PatchDiscriminator's defaults), its optimizer
    optim.discriminator."""
    cfg = compose_cfg("experiment=ci", "loss=adversarial")
    assert set(cfg.loss) == set(compose_cfg("experiment=ci").loss)
    assert "discriminator" not in compose_cfg("experiment=ci").model
    node = dict(cfg.model.discriminator)
    assert node.pop("_target_") == "inpaintlab.models.discriminator.PatchDiscriminator"
    defaults = inspect.signature(PatchDiscriminator).parameters
    assert node == {k: p.default for k, p in defaults.items()}
    with pytest.raises(UserError, match="model.discriminator.base_channels must be int"):
        check_train(
            compose_cfg("experiment=ci", "loss=adversarial", "model.discriminator.base_channels=x")
        )


@pytest.mark.parametrize(
    "overrides",
    [
        ("loss.adversarial=0.01",),
        ("loss=adversarial", "loss.adversarial=0", "loss.feature_matching=0"),
    ],
)
def test_adversarial_weights_and_a_discriminator_come_together(compose_cfg, overrides):
    with pytest.raises(UserError, match="model.discriminator"):
        module_for(compose_cfg, *overrides)
