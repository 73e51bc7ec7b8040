"""train stage: data/prepared -> models/model.ckpt, metrics/train.json, plots/train_history.csv.

Every run is an MLflow run: the resolved config as params, per-epoch metrics with step = epoch,
and a grid of the same validation images each epoch (masked input | output | ground truth).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import shutil
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf

from inpaintlab import tracking
from inpaintlab.module import InpaintModule
from inpaintlab.utils import (
    UserError,
    atomic_write_json,
    atomic_write_text,
    user_errors_as_one_line,
)
from inpaintlab.visualize import masked_view, sample_grid

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_psnr"]
CHECKPOINT = Path("models/model.ckpt")
TRAIN_METRICS = Path("metrics/train.json")
HISTORY = Path("plots/train_history.csv")
WORK_DIR = Path("logs/train")


class EpochHistory(Callback):
    """Once per epoch (after validation): MLflow metrics at step = epoch, the sample grid,
    and the rewritten history CSV, so a killed run still leaves its curves behind."""

    def __init__(self, logger: MLFlowLogger, history_path: Path) -> None:
        self.logger, self.history_path = logger, history_path
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.datamodule.set_epoch(trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: InpaintModule) -> None:
        epoch = trainer.current_epoch
        found = trainer.callback_metrics
        row = {"epoch": epoch} | {k: round(float(found[k]), 6) for k in HISTORY_COLUMNS[1:] if k in found}
        self.rows.append(row)
        client, run_id = self.logger.experiment, self.logger.run_id
        for key, value in row.items():
            if key != "epoch" and math.isfinite(value):
                client.log_metric(run_id, key, value, step=epoch)
        if pl_module.samples:
            s = pl_module.samples
            grid = sample_grid([masked_view(s["image"], s["mask"]), s["output"], s["image"]])
            client.log_image(run_id, grid, key="val_samples", step=epoch)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.history_path, buffer.getvalue())


def run_name(cfg: DictConfig) -> str:
    return cfg.logger.run_name or f"{cfg.model.name}-{cfg.data.image_size}px-s{cfg.seed}"


def make_logger(cfg: DictConfig) -> MLFlowLogger:
    uri = tracking.tracking_uri(cfg.logger.tracking_uri)
    tracking.ensure_experiment(cfg.logger.experiment_name, uri)
    tags = {
        "model": cfg.model.name,
        "seed": str(cfg.seed),
        "image_size": str(cfg.data.image_size),
        "git_commit": tracking.git_commit(),
        "data_version": tracking.data_version(),
    }
    return MLFlowLogger(experiment_name=cfg.logger.experiment_name, run_name=run_name(cfg),
                        tracking_uri=uri, tags=tags)


def train(cfg: DictConfig) -> dict:
    if cfg.trainer.max_epochs is not None and cfg.trainer.max_epochs < 1:
        raise UserError(f"trainer.max_epochs must be >= 1, got {cfg.trainer.max_epochs}")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))

    mask_generator = hydra.utils.instantiate(cfg.mask)
    # _partial_: passing the generator through instantiate would turn its dataclass into a dict
    datamodule = hydra.utils.instantiate(cfg.datamodule, _partial_=True)(mask_generator=mask_generator, seed=cfg.seed)
    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim, num_samples=cfg.logger.num_samples)

    logger = make_logger(cfg)
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    shutil.rmtree(WORK_DIR / "checkpoints", ignore_errors=True)
    best = ModelCheckpoint(dirpath=WORK_DIR / "checkpoints", filename="best", monitor="val_psnr", mode="max",
                           save_last=True)
    history = EpochHistory(logger, HISTORY)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=logger, callbacks=[best, history],
                                                 default_root_dir=str(WORK_DIR))
    started = time.time()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.time() - started
    if trainer.interrupted or not best.best_model_path:
        logger.finalize("KILLED")
        raise UserError(f"training stopped before a checkpoint was saved; the last one is in {WORK_DIR}/checkpoints")

    # The checkpoint carries the run id (evaluate/export log into the same run) and the config.
    checkpoint = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
    checkpoint["inpaintlab"] = {"mlflow_run_id": logger.run_id, "config": OmegaConf.to_container(cfg, resolve=True)}
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    tmp = CHECKPOINT.with_suffix(".ckpt.tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, CHECKPOINT)

    best_row = max(history.rows, key=lambda r: r.get("val_psnr", -math.inf))
    summary = {
        "epochs": len(history.rows),
        "best_epoch": best_row["epoch"],
        "best_val_psnr": best_row.get("val_psnr"),
        "final": history.rows[-1],
    }
    atomic_write_json(TRAIN_METRICS, summary)
    logger.experiment.log_metric(logger.run_id, "train_seconds", round(seconds, 1))
    logger.experiment.log_artifact(logger.run_id, str(HISTORY))
    log.info("trained %d epochs in %.0fs; best val_psnr %.2f dB (epoch %d)", summary["epochs"], seconds,
             summary["best_val_psnr"], summary["best_epoch"])
    return summary


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@user_errors_as_one_line
def main(cfg: DictConfig) -> float:
    summary = train(cfg)
    print(f"best val_psnr {summary['best_val_psnr']:.2f} dB after {summary['epochs']} epochs -> {CHECKPOINT}")
    return float(summary["best_val_psnr"])  # the value Hydra sweepers optimise


if __name__ == "__main__":
    main()
