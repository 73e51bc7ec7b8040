"""LightningModule: wraps any generator with the losses, metrics and sample collection.

Metrics are logged with logger=False: train.EpochHistory writes them to MLflow once per epoch
(step = epoch); Lightning's logger would add a second series at step = global_step.

Everything is built from the config: the generator (and the discriminator) from the `model`
group, the optimizers and the learning-rate schedule from `optim` (`_target_` + `_partial_`),
so the checkpoint's hyperparameters are enough to rebuild the generator for evaluation and
export.

Adversarial training (`loss=adversarial`, off by default): a PatchGAN discriminator
(`model.discriminator`, models/discriminator.py) with LaMa's mask-aware targets, a
non-saturating adversarial loss on the hole and feature matching. It needs two optimizers, so
that path uses Lightning's manual optimization; without a discriminator the module is the plain
automatic-optimization one.
"""

from __future__ import annotations

import math
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import OmegaConf
from torch.nn import functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from inpaintlab import metrics
from inpaintlab.errors import UserError
from inpaintlab.models.generator import corrected
from inpaintlab.models.layers import composite


def _plain(config: Any) -> dict:
    return (
        OmegaConf.to_container(config, resolve=True)
        if OmegaConf.is_config(config)
        else dict(config)
    )


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def reconstruction_loss(
    raw: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weights: dict
) -> torch.Tensor:
    """Weighted L1 on missing and known pixels, optional L2 in the hole (PSNR is an L2 metric),
    optional log-L2 per image in the hole, plus an optional gradient L1 in the hole."""
    error = (raw - target).abs()
    hole_pixels = (mask.sum() * 3).clamp_min(1.0)
    hole = (error * mask).sum() / hole_pixels
    valid = (error * (1 - mask)).sum() / ((1 - mask).sum() * 3).clamp_min(1.0)
    loss = weights["hole_l1"] * hole + weights["valid_l1"] * valid
    if weights["hole_l2"]:
        loss = loss + weights["hole_l2"] * (error.square() * mask).sum() / hole_pixels
    if weights["hole_log_l2"]:
        loss = loss + weights["hole_log_l2"] * hole_log_l2(raw, target, mask)
    if weights["gradient"]:
        pred = composite(raw, target, mask)
        loss = loss + weights["gradient"] * sum(
            (gp - gt).abs().mean()
            for gp, gt in zip(image_gradients(pred), image_gradients(target), strict=True)
        )
    return loss


LOG_L2_FLOOR = 1e-4  # MSE added before the log: images past ~40 dB count no more (nor explode)


def hole_log_l2(raw: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over images of log(MSE in the hole + floor): minus the mean per-image PSNR
    (x ln 10 / 10), the metric validation, evaluation and users read.

    Why: a squared error pooled over the batch is dominated by the hardest images (large holes
    in texture), so the network learns to trade easy images for them: on a user's folder the
    pooled hole MSE of the training crops fell 10% while their mean PSNR fell 0.34 dB against
    the fill alone (docs/results.md). Per image in log space every image's dB counts the same.
    """
    with torch.autocast(raw.device.type, enabled=False):
        mse = metrics.masked_mse(raw.float(), target.float(), mask.float())
        return torch.log(mse + LOG_L2_FLOOR).mean()


def fake_target(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Discriminator target for a composited image at logit resolution: 0 (fake) on every patch
    that holds a generated pixel, 1 (real) elsewhere, since the known pixels are real pixels."""
    return 1.0 - F.adaptive_max_pool2d(mask, size)


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """BCE: real images are real everywhere, composited ones fake only over the hole."""
    target = fake_target(mask, fake_logits.shape[-2:])
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    return real + F.binary_cross_entropy_with_logits(fake_logits, target)


def adversarial_loss(fake_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(fake), averaged over the hole patches only (the
    rest of a composited image is the real image: nothing for the generator to improve)."""
    hole = 1.0 - fake_target(mask, fake_logits.shape[-2:])
    return (F.softplus(-fake_logits) * hole).sum() / hole.sum().clamp_min(1.0)


def feature_matching_loss(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """L1 between the discriminator's features of generated and real images, averaged over
    layers: a learned perceptual loss that steadies the adversarial signal."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake, real, strict=True)) / len(fake)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_fraction: float,
    final_fraction: float,
) -> SequentialLR:
    """One cycle per training: the rate rises linearly over the first `warmup_fraction` of the
    steps (1/warmup of the optimizer's rate at step 0, all of it at step warmup - 1), then
    decays along a cosine to `final_fraction` of it at `total_steps`."""
    warmup = max(1, int(total_steps * warmup_fraction))
    base_lr = optimizer.param_groups[0]["lr"]
    rise = LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1)
    decay = CosineAnnealingLR(
        optimizer, T_max=max(1, total_steps - warmup), eta_min=final_fraction * base_lr
    )
    return SequentialLR(optimizer, [rise, decay], milestones=[warmup])


# The shares of the correction each validation compares (model.calibrate_correction): 0 is the
# fill alone, 1 what training learned. A grid, not a fit: the clamp to [0, 1] and PSNR's log make
# the best share a non-quadratic function of the scale, and 21 composites of a val batch are cheap.
CORRECTION_SCALES = tuple(i / 20 for i in range(21))


class InpaintModule(L.LightningModule):
    def __init__(self, model: dict, loss: dict, optim: dict, num_samples: int = 6) -> None:
        super().__init__()
        self.save_hyperparameters(
            {
                "model": _plain(model),
                "loss": _plain(loss),
                "optim": _plain(optim),
                "num_samples": num_samples,
            },
            logger=False,
        )
        self.generator = hydra.utils.instantiate(self.hparams.model["generator"])
        self.loss_weights = dict(self.hparams.loss)
        self.samples: dict[str, torch.Tensor] = {}  # fixed val images of this epoch, for the grid
        self.calibrate = bool(self.hparams.model.get("calibrate_correction", False))
        # per validation epoch: the sum over val images of PSNR and accuracy at each scale
        self.scale_scores = torch.zeros(2, len(CORRECTION_SCALES), dtype=torch.float64)
        self.scale_images = 0
        # An exponential moving average of the generator's weights (model.ema_decay > 0): a
        # smoother model than the last step's, for validation, the checkpoint and export.
        ema_decay = self.hparams.model["ema_decay"]
        if not (isinstance(ema_decay, int | float) and 0.0 <= ema_decay < 1.0):
            raise UserError(f"model.ema_decay must be in [0, 1), got {ema_decay}")
        self.ema = (
            AveragedModel(
                self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            )
            if ema_decay
            else None
        )
        discriminator = self.hparams.model.get("discriminator")
        w = self.loss_weights
        if (w["adversarial"] > 0 or w["feature_matching"] > 0) != (discriminator is not None):
            raise UserError(
                "loss.adversarial and loss.feature_matching train the generator against "
                "model.discriminator: give both or neither (loss=adversarial sets both)"
            )
        if discriminator is not None:
            self.discriminator = hydra.utils.instantiate(discriminator)
            # Two optimizers stepped in turn. Lightning refuses Trainer(gradient_clip_val) here,
            # so train.make_trainer moves the trainer's clipping setting to these attributes.
            self.automatic_optimization = False
            self.clip_val: float | None = None
            self.clip_algorithm = "norm"

    @property
    def inference_generator(self) -> torch.nn.Module:
        """What validation, evaluation and export use: the averaged weights, if kept."""
        return self.ema.module if self.ema is not None else self.generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.inference_generator(image, mask)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.generator)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        image, mask = batch["image"], batch["mask"]
        raw = self.generator.generate(image, mask, scale=1.0)  # learns the whole correction
        loss = reconstruction_loss(raw, image, mask, self.loss_weights)
        accuracy = metrics.accuracy_masked(composite(raw.detach(), image, mask), image, mask).mean()
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(image),
            logger=False,
            sync_dist=True,  # data-parallel: the mean over all ranks (a no-op on one process)
        )
        self.log(
            "train_accuracy",
            accuracy,
            on_step=False,
            on_epoch=True,
            batch_size=len(image),
            logger=False,
            sync_dist=True,  # data-parallel: the mean over all ranks (a no-op on one process)
        )
        if not self.automatic_optimization:
            self.adversarial_step(image, mask, raw, loss)
        return loss

    def adversarial_step(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        raw: torch.Tensor,
        reconstruction: torch.Tensor,
    ) -> None:
        """Manual optimization: one discriminator step, then one generator step (reconstruction
        + adversarial + feature matching), then the generator's learning-rate schedule."""
        opt_g, opt_d = self.optimizers()
        fake = composite(raw, image, mask)
        both = torch.cat([mask, mask])  # real images go first, generated second, in one batch

        with self.toggled_optimizer(opt_d):
            logits, _ = self.discriminator(torch.cat([image, fake.detach()]), both)
            d_loss = discriminator_loss(*logits.chunk(2), mask)
            self._optimizer_step(opt_d, d_loss)

        with self.toggled_optimizer(opt_g):
            logits, features = self.discriminator(torch.cat([image, fake]), both)
            real_features, fake_features = zip(*(f.chunk(2) for f in features), strict=True)
            adv = adversarial_loss(logits.chunk(2)[1], mask)
            fm = feature_matching_loss(list(fake_features), list(real_features))
            w = self.loss_weights
            g_loss = reconstruction + w["adversarial"] * adv + w["feature_matching"] * fm
            self._optimizer_step(opt_g, g_loss)
        self.lr_schedulers().step()

        # unweighted terms; train_loss stays the reconstruction loss, comparable with val_loss
        for name, value in [
            ("train_d_loss", d_loss),
            ("train_adv_loss", adv),
            ("train_fm_loss", fm),
        ]:
            self.log(
                name,
                value,
                on_step=False,
                on_epoch=True,
                batch_size=len(image),
                logger=False,
                sync_dist=True,
            )

    def _optimizer_step(self, optimizer: Any, loss: torch.Tensor) -> None:
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.clip_val:
            self.clip_gradients(optimizer, self.clip_val, self.clip_algorithm)
        optimizer.step()

    @property
    def validation_scales(self) -> tuple[float, ...]:
        """The shares of the correction each validation scores (the whole one, uncalibrated)."""
        return CORRECTION_SCALES if self.calibrate else (1.0,)

    def on_validation_epoch_start(self) -> None:
        self.scale_scores = torch.zeros(2, len(CORRECTION_SCALES), dtype=torch.float64)
        self.scale_images = 0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """val_loss: the objective training minimises (the whole correction). val_psnr and
        val_accuracy: the model as evaluated and exported, at the correction share this
        validation finds best (on_validation_epoch_end); without calibration, the whole one."""
        image, mask = batch["image"], batch["mask"]
        generator = self.inference_generator
        fill, correction = generator.fill_and_correction(image, mask)
        raw = corrected(fill, correction, 1.0)
        self.log(
            "val_loss",
            reconstruction_loss(raw, image, mask, self.loss_weights),
            batch_size=len(image),
            logger=False,
            sync_dist=True,
        )
        for i, scale in enumerate(self.validation_scales):
            output = composite(corrected(fill, correction, scale), image, mask)
            self.scale_scores[0, i] += metrics.psnr_masked(output, image, mask).sum().item()
            self.scale_scores[1, i] += metrics.accuracy_masked(output, image, mask).sum().item()
        self.scale_images += len(image)
        if batch_idx == 0:
            k = self.hparams.num_samples
            self.samples = {
                "image": image[:k].cpu(),
                "mask": mask[:k].cpu(),
                "fill": fill[:k].float().cpu(),
                "correction": correction[:k].float().cpu(),
            }

    def on_validation_epoch_end(self) -> None:
        """Keep the best share of the correction (calibrate_correction) and log the val metrics
        of the model with it: the checkpoint saved for this epoch holds that share."""
        scores = self.trainer.strategy.reduce(self.scale_scores.to(self.device), reduce_op="sum")
        images = self.trainer.strategy.reduce(
            torch.tensor(float(self.scale_images), device=self.device), reduce_op="sum"
        )
        if float(images) == 0:
            return
        mean = (scores / images).cpu()
        scales = self.validation_scales
        best = int(torch.argmax(mean[0, : len(scales)]))  # the first of equals: the smaller share
        scale = scales[best]
        for generator in {id(g): g for g in (self.generator, self.inference_generator)}.values():
            generator.correction_scale.fill_(scale)
        logged = {"val_psnr": mean[0, best], "val_accuracy": mean[1, best]}
        if self.calibrate:
            logged |= {"val_fill_psnr": mean[0, 0], "correction_scale": torch.tensor(scale)}
        for name, value in logged.items():
            self.log(name, float(value), prog_bar=name == "val_psnr", logger=False)
        if self.samples:
            s = self.samples
            generated = corrected(s["fill"], s["correction"], scale)
            self.samples = {
                "image": s["image"],
                "mask": s["mask"],
                "output": composite(generated, s["image"], s["mask"]).clamp(0, 1),
            }

    def configure_optimizers(self) -> dict | tuple[list, list]:
        """optim.generator (AdamW) with optim.scheduler stepped every batch; with a
        discriminator also optim.discriminator, at its constant rate."""
        optim = self.hparams.optim
        optimizer = hydra.utils.instantiate(optim["generator"], _convert_="all")(
            self.generator.parameters()
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if not self.automatic_optimization and self.trainer.max_steps > 0:
            # global_step counts every optimizer.step(): two per batch here, one schedule step
            total = max(1, min(total, math.ceil(self.trainer.max_steps / 2)))
        scheduler = hydra.utils.instantiate(optim["scheduler"])(optimizer, total_steps=total)
        schedule = {"scheduler": scheduler, "interval": "step"}
        if self.automatic_optimization:
            return {"optimizer": optimizer, "lr_scheduler": schedule}
        discriminator = hydra.utils.instantiate(optim["discriminator"], _convert_="all")(
            self.discriminator.parameters()
        )
        return [optimizer, discriminator], [schedule]
