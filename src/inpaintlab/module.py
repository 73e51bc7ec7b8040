"""LightningModule: wraps any generator with the losses, metrics and sample collection.

Metrics are logged with logger=False: train.EpochHistory writes them to MLflow once per epoch
(step = epoch); Lightning's logger would add a second series at step = global_step.

The generator is a plain nn.Module built from the `model` config (`_target_`), so the
checkpoint's hyperparameters are enough to rebuild it for evaluation and export.
"""

from __future__ import annotations

import math
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import OmegaConf

from inpaintlab import metrics
from inpaintlab.models.unet import composite


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
    plus an optional gradient L1 in the hole."""
    error = (raw - target).abs()
    hole_pixels = (mask.sum() * 3).clamp_min(1.0)
    hole = (error * mask).sum() / hole_pixels
    valid = (error * (1 - mask)).sum() / ((1 - mask).sum() * 3).clamp_min(1.0)
    loss = weights.get("hole_l1", 1.0) * hole + weights.get("valid_l1", 0.0) * valid
    if weights.get("hole_l2", 0.0):
        loss = loss + weights["hole_l2"] * (error.square() * mask).sum() / hole_pixels
    if weights.get("gradient", 0.0):
        pred = composite(raw, target, mask)
        loss = loss + weights["gradient"] * sum(
            (gp - gt).abs().mean()
            for gp, gt in zip(image_gradients(pred), image_gradients(target), strict=True)
        )
    return loss


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

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.generator(image, mask)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        image, mask = batch["image"], batch["mask"]
        raw = self.generator.generate(image, mask)
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
        )
        self.log(
            "train_accuracy",
            accuracy,
            on_step=False,
            on_epoch=True,
            batch_size=len(image),
            logger=False,
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        image, mask = batch["image"], batch["mask"]
        raw = self.generator.generate(image, mask)
        output = composite(raw, image, mask).clamp(0, 1)
        scores = {
            "val_loss": reconstruction_loss(raw, image, mask, self.loss_weights),
            "val_psnr": metrics.psnr_masked(output, image, mask).mean(),
            "val_accuracy": metrics.accuracy_masked(output, image, mask).mean(),
        }
        for name, value in scores.items():
            self.log(name, value, prog_bar=name == "val_psnr", batch_size=len(image), logger=False)
        if batch_idx == 0:
            k = self.hparams.num_samples
            self.samples = {
                "image": image[:k].cpu(),
                "mask": mask[:k].cpu(),
                "output": output[:k].cpu(),
            }

    def configure_optimizers(self) -> dict:
        cfg = self.hparams.optim
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=cfg["lr"],
            weight_decay=cfg["weight_decay"],
            betas=tuple(cfg["betas"]),
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(total * cfg.get("warmup_fraction", 0.0)))

        def one_cycle(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def load_generator(checkpoint: str) -> tuple[torch.nn.Module, dict]:
    """The generator (eval mode, CPU) and the checkpoint's extra info (MLflow run, config)."""
    raw = torch.load(checkpoint, map_location="cpu", weights_only=False)
    module = InpaintModule(**raw["hyper_parameters"])
    module.load_state_dict(raw["state_dict"])
    return module.generator.eval(), raw.get("inpaintlab", {})
