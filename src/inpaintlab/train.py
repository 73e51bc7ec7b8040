"""train stage: data/prepared -> models/model.ckpt, metrics/train.json, plots/train_history.csv.

Every run is an MLflow run: the resolved config as params, per-epoch metrics with step = epoch,
and a grid of the same validation images each epoch (masked input | output | ground truth).
In a Hydra multirun (`-m`) each job writes the same files under its own job dir instead, and its
run is a child of the sweep's parent run (tracking.SweepCallback).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass
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

# Lightning chatter that asks nothing of the user (tips, GPU/TPU availability, pytree deprecations).
for name in ("lightning.fabric.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
    logging.getLogger(name).setLevel(logging.WARNING)
warnings.filterwarnings(
    "ignore", message=".*(LeafSpec|log_every_n_steps|does not have many workers).*"
)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_psnr"]
CHECKPOINT = Path("models/model.ckpt")
TRAIN_METRICS = Path("metrics/train.json")
HISTORY = Path("plots/train_history.csv")
WORK_DIR = Path("logs/train")


@dataclass(frozen=True)
class Outputs:
    """Where a run writes. The repo paths belong to the single-run DVC pipeline; sweep jobs run
    side by side (joblib) and would clobber each other there, so each uses its Hydra job dir."""

    checkpoint: Path = CHECKPOINT
    metrics: Path = TRAIN_METRICS
    history: Path = HISTORY
    work_dir: Path = WORK_DIR

    @classmethod
    def for_job(cls, info: tracking.JobInfo) -> Outputs:
        if not (info.multirun and info.output_dir):
            return cls()
        base = info.output_dir
        return cls(base / CHECKPOINT, base / TRAIN_METRICS, base / HISTORY, base / WORK_DIR)


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
        row = {"epoch": epoch} | {
            k: round(float(found[k]), 6) for k in HISTORY_COLUMNS[1:] if k in found
        }
        self.rows.append(row)
        client, run_id = self.logger.experiment, self.logger.run_id
        # MLflow gets every epoch metric (e.g. train_d_loss with loss=adversarial), the CSV its columns
        for key, value in sorted(found.items()):
            value = round(float(value), 6)
            if math.isfinite(value):
                client.log_metric(run_id, key, value, step=epoch)
        if pl_module.samples:
            s = pl_module.samples
            grid = sample_grid(
                [masked_view(s["image"], s["mask"]), s["output"], s["image"]],
                labels=["input, hole in white", "model", "ground truth"],
            )
            client.log_image(run_id, grid, key="val_samples", step=epoch)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.history_path, buffer.getvalue())


def make_logger(cfg: DictConfig, info: tracking.JobInfo) -> MLFlowLogger:
    """The run, named and tagged by what changed (tracking.run_name / run_tags); a sweep job
    becomes a child of the sweep's parent run."""
    uri = tracking.tracking_uri(cfg.logger.tracking_uri)
    experiment_id = tracking.ensure_experiment(cfg.logger.experiment_name, uri)
    parent = tracking.sweep_parent(info)
    tags = tracking.run_tags(cfg, info, parent, experiment_id)
    return MLFlowLogger(
        experiment_name=cfg.logger.experiment_name,
        run_name=tracking.run_name(cfg, info, parent),
        tracking_uri=uri,
        tags=tags,
    )


def make_trainer(trainer_cfg: DictConfig, module: InpaintModule, **kwargs: object) -> L.Trainer:
    """The `trainer` config as a Trainer. Lightning refuses `gradient_clip_val` with manual
    optimization (loss=adversarial), so there the module clips each optimizer's gradients
    itself, with the same value and algorithm, and the Trainer gets none."""
    if not module.automatic_optimization:
        module.clip_val = trainer_cfg.get("gradient_clip_val")
        module.clip_algorithm = trainer_cfg.get("gradient_clip_algorithm") or "norm"
        kwargs["gradient_clip_val"] = None
        kwargs["gradient_clip_algorithm"] = None
    return hydra.utils.instantiate(trainer_cfg, **kwargs)


def train(cfg: DictConfig) -> dict:
    if cfg.trainer.max_epochs is not None and cfg.trainer.max_epochs < 1:
        raise UserError(f"trainer.max_epochs must be >= 1, got {cfg.trainer.max_epochs}")
    info = tracking.job_info()
    out = Outputs.for_job(info)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_num_threads(tracking.threads_per_job(info.launcher if info.multirun else None))
    log.info(
        "torch threads: %d (OMP_NUM_THREADS=%s)",
        torch.get_num_threads(),
        os.environ.get("OMP_NUM_THREADS"),
    )

    mask_generator = hydra.utils.instantiate(cfg.mask)
    # _partial_: passing the generator through instantiate would turn its dataclass into a dict
    datamodule = hydra.utils.instantiate(cfg.datamodule, _partial_=True)(
        mask_generator=mask_generator, seed=cfg.seed
    )
    module = InpaintModule(
        model=cfg.model, loss=cfg.loss, optim=cfg.optim, num_samples=cfg.logger.num_samples
    )

    logger = make_logger(cfg, info)
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    shutil.rmtree(out.work_dir / "checkpoints", ignore_errors=True)
    best = ModelCheckpoint(
        dirpath=out.work_dir / "checkpoints",
        filename="best",
        monitor="val_psnr",
        mode="max",
        save_last=True,
    )
    history = EpochHistory(logger, out.history)
    trainer = make_trainer(
        cfg.trainer,
        module,
        logger=logger,
        callbacks=[best, history],
        default_root_dir=str(out.work_dir),
    )
    started = time.time()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.time() - started
    if trainer.interrupted or not best.best_model_path:
        logger.finalize("KILLED")
        raise UserError(
            f"training stopped before a checkpoint was saved; the last one is in {out.work_dir}/checkpoints"
        )

    # The checkpoint carries the run id (evaluate/export log into the same run) and the config.
    checkpoint = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
    checkpoint["inpaintlab"] = {
        "mlflow_run_id": logger.run_id,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    out.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.checkpoint.with_suffix(".ckpt.tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, out.checkpoint)

    best_row = max(history.rows, key=lambda r: r.get("val_psnr", -math.inf))
    summary = {
        "epochs": len(history.rows),
        "best_epoch": best_row["epoch"],
        "best_val_psnr": best_row.get("val_psnr"),
        "final": history.rows[-1],
    }
    atomic_write_json(out.metrics, summary)
    logger.experiment.log_metric(logger.run_id, "train_seconds", round(seconds, 1))
    if (
        summary["best_val_psnr"] is not None
    ):  # the sweep objective, comparable across runs in the UI
        logger.experiment.log_metric(logger.run_id, "best_val_psnr", summary["best_val_psnr"])
    logger.experiment.log_artifact(logger.run_id, str(out.history))
    log.info(
        "trained %d epochs in %.0fs; best val_psnr %.2f dB (epoch %d)",
        summary["epochs"],
        seconds,
        summary["best_val_psnr"],
        summary["best_epoch"],
    )
    return summary | {"checkpoint": str(out.checkpoint), "mlflow_run_id": logger.run_id}


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@user_errors_as_one_line
def main(cfg: DictConfig) -> float:
    summary = train(cfg)
    print(
        f"best val_psnr {summary['best_val_psnr']:.2f} dB after {summary['epochs']} epochs -> {summary['checkpoint']}"
    )
    return float(summary["best_val_psnr"])  # the value Hydra sweepers optimise


if __name__ == "__main__":
    main()
