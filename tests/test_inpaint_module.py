"""inpaint_module.py: the learning-rate schedule (optim.scheduler) per step, the optimizers the
config instantiates, and the share of the correction each validation keeps."""

from __future__ import annotations

import math

import hydra
import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from inpaintlab import metrics
from inpaintlab.inpaint_module import (
    LOG_L2_FLOOR,
    InpaintModule,
    reconstruction_loss,
    warmup_cosine,
)
from inpaintlab.models.generator import Generator


def one_cycle(step: int, total: int, warmup_fraction: float, final_fraction: float) -> float:
    """The factor the schedule follows (the LambdaLR the module used before issue 15)."""
    warmup = max(1, int(total * warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize(
    ("total", "fraction"), [(1, 0.05), (3, 0.5), (40, 0.05), (50, 0.0), (200, 1.0), (5000, 0.05)]
)
def test_warmup_cosine_is_the_one_cycle_schedule_at_every_step(total, fraction):
    """SequentialLR(LinearLR, CosineAnnealingLR) steps recursively: the same rates as the
    closed form up to float rounding (measured: below 2.1e-14 relative up to 5000 steps)."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.002)
    scheduler = warmup_cosine(optimizer, total, fraction, 0.02)
    for step in range(total):
        expected = 0.002 * one_cycle(step, total, fraction, 0.02)
        assert math.isclose(optimizer.param_groups[0]["lr"], expected, rel_tol=1e-12), step
        optimizer.step()
        scheduler.step()


def test_the_optim_config_is_what_the_module_builds(compose_cfg):
    cfg = compose_cfg("experiment=ci")
    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim)
    optimizer = hydra.utils.instantiate(cfg.optim.generator, _convert_="all")(
        module.generator.parameters()
    )
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert (group["lr"], group["weight_decay"], list(group["betas"])) == (
        cfg.optim.generator.lr,
        cfg.optim.generator.weight_decay,
        list(cfg.optim.generator.betas),
    )
    scheduler = hydra.utils.instantiate(cfg.optim.scheduler)(optimizer, total_steps=100)
    assert isinstance(scheduler, torch.optim.lr_scheduler.SequentialLR)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optim.generator.lr / 5)  # warmup 5


class ConstantCorrection(Generator):
    """The skeleton with a network that adds 0.4 everywhere."""

    def network(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x[:, :3], 0.4)


def validate_constant_correction(compose_cfg, hole_value: float, *overrides: str) -> tuple:
    """Validate a module whose fill of a grey 0.5 surround is 0.5 and whose correction is +0.4,
    on holes that really hold `hole_value`: the logged metrics and the scale it keeps."""
    cfg = compose_cfg("experiment=ci", *overrides)
    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim)
    module.generator = ConstantCorrection("pyramid", 4.0, 5, sees_fill=False)
    mask = torch.zeros(1, 32, 32)
    mask[:, 8:24, 8:24] = 1
    image = torch.full((3, 32, 32), 0.5) * (1 - mask) + hole_value * mask
    batches = [{"image": image, "mask": mask}] * 4
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.validate(module, dataloaders=DataLoader(batches, batch_size=2))
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}  # what RunRecorder reads
    return logged, float(module.generator.correction_scale)


def test_validation_keeps_the_share_of_the_correction_that_does_best(compose_cfg):
    """The hole holds 0.7: half the correction is exact, so the model keeps 0.5 of it, and
    val_psnr is the calibrated model's (100 dB, the cap), not the whole correction's."""
    logged, scale = validate_constant_correction(compose_cfg, 0.7)
    assert scale == 0.5 == logged["correction_scale"]
    assert logged["val_psnr"] == pytest.approx(100.0)
    assert logged["val_fill_psnr"] == pytest.approx(10 * math.log10(1 / 0.2**2), abs=1e-3)


def test_a_correction_that_only_hurts_is_dropped(compose_cfg):
    """The hole holds the surround's 0.5: the fill alone is exact, any correction hurts."""
    logged, scale = validate_constant_correction(compose_cfg, 0.5)
    assert scale == 0.0 and logged["val_psnr"] == logged["val_fill_psnr"]


def test_without_calibration_the_whole_correction_stays(compose_cfg):
    logged, scale = validate_constant_correction(
        compose_cfg, 0.5, "model.calibrate_correction=false"
    )
    assert scale == 1.0 and "correction_scale" not in logged
    assert logged["val_psnr"] == pytest.approx(10 * math.log10(1 / 0.4**2), abs=1e-3)


def test_log_l2_counts_every_images_db_the_same():
    """hole_log_l2 is minus the mean per-image PSNR (in nepers, with the floor): doubling the
    error of one image moves it by log(4) / N whether that image was easy or hard, where the
    pooled squared error moves almost only for the hard one."""
    target = torch.zeros(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    raw = target.clone()
    raw[0] += 0.02 * mask[0]  # easy: 34 dB
    raw[1] += 0.3 * mask[1]  # hard: 10.5 dB
    weights = {"hole_l1": 0.0, "valid_l1": 0.0, "hole_l2": 0.0, "hole_log_l2": 1.0, "gradient": 0.0}
    pooled = dict(weights, hole_l2=1.0, hole_log_l2=0.0)
    mse = metrics.masked_mse(raw, target, mask)
    base = reconstruction_loss(raw, target, mask, weights)
    assert base.item() == pytest.approx(torch.log(mse + LOG_L2_FLOOR).mean().item(), rel=1e-5)
    psnr = metrics.psnr_masked(raw, target, mask)  # the floor aside, minus the mean PSNR
    assert base.item() == pytest.approx(-(psnr * math.log(10) / 10).mean().item(), abs=0.15)
    for image in (0, 1):
        doubled = raw.clone()
        doubled[image] *= 2
        step = reconstruction_loss(doubled, target, mask, weights) - base
        assert step.item() == pytest.approx(
            math.log(4) / 2, rel=0.15 if image == 0 else 0.01
        )  # the floor
    easy, hard = raw.clone(), raw.clone()
    easy[0] *= 2
    hard[1] *= 2
    pooled_base = reconstruction_loss(raw, target, mask, pooled)
    easy_step = reconstruction_loss(easy, target, mask, pooled) - pooled_base
    hard_step = reconstruction_loss(hard, target, mask, pooled) - pooled_base
    assert easy_step.item() < hard_step.item() / 100
