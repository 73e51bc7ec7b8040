"""A training's record while it runs: signals that stop it at a batch boundary, the random
states a resume restores, and RunRecorder, the Lightning callback that writes the history, the
checkpoints and the MLflow metrics of every epoch (train.py runs it and publishes the outputs).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from inpaintlab import runs, tracking
from inpaintlab.checkpoints import load_checkpoint
from inpaintlab.errors import Interrupted, one_line
from inpaintlab.files import atomic_write_text
from inpaintlab.inpaint_module import InpaintModule
from inpaintlab.visualize import masked_view, sample_grid

# The three outputs' file names, staged in the run folder (train.Outputs: where they are published).
CHECKPOINT_NAME, TRAIN_METRICS_NAME, HISTORY_NAME = "model.ckpt", "train.json", "train_history.csv"
HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_psnr"]


# --- signals -------------------------------------------------------------------------------------


class StopRequested(BaseException):
    """Raised at a batch boundary after SIGINT/SIGTERM (at once on a second signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalStop:
    """SIGINT and SIGTERM during training: stop at the next batch boundary (a second signal
    stops at once). Lightning's own SIGTERM handler wraps this one and also stops at a batch
    boundary (SIGTERMException); both end in the same interrupted path."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.finishing = False  # training is done: the outputs are being written
        self._previous: dict[int, Any] = {}

    def install(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def take_back_sigterm(self) -> None:
        """Data-parallel: SIGTERM to this handler alone. Lightning's own SIGTERM handler
        broadcasts from inside the signal handler (lightning 2.6, signal_connector.py), which
        meets whatever collective the other ranks are in and hangs them when every rank gets
        the signal (Ctrl-C, Slurm); check_stop decides collectively at batch boundaries."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum  # the loop stops at the next batch boundary
            return
        raise StopRequested(signum)

    def check(self) -> None:
        if self.signum is not None and not self.finishing:
            raise StopRequested(self.signum)


# --- the run's record: checkpoints, history, MLflow metrics ------------------------------------


def _loader_generators(loader: object) -> dict[str, torch.Generator]:
    """A train loader's shuffle generators (the DataLoader's and its RandomSampler's)."""
    found = {
        "loader": getattr(loader, "generator", None),
        "sampler": getattr(getattr(loader, "sampler", None), "generator", None),
    }
    return {k: g for k, g in found.items() if isinstance(g, torch.Generator)}


def rng_state(trainer: L.Trainer) -> dict[str, Any]:
    """The random states the rest of the training draws from, as tensors and plain values
    (so weights_only=True loads them): torch, numpy, python and the train loader's shuffle."""
    kind, keys, *rest = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), *rest],
        "python": random.getstate(),
    }
    try:
        loader = trainer.train_dataloader
    except Exception:
        loader = None
    for name, generator in _loader_generators(loader).items():
        state[name] = generator.get_state()
    return state


def restore_global_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def restore_loader_rng(datamodule: L.LightningDataModule, state: dict[str, Any]) -> None:
    """Give the next train loader the saved shuffle state. Lightning creates the loader, and
    its first iterator (which draws the epoch's order), before any epoch hook runs, so the
    state is set as the datamodule hands the loader out."""
    make_loader = type(datamodule).train_dataloader

    def train_dataloader() -> Any:
        loader = make_loader(datamodule)
        for name, generator in _loader_generators(loader).items():
            if name in state:
                generator.set_state(state[name])
        del datamodule.train_dataloader  # once: later loaders are the datamodule's own
        return loader

    datamodule.train_dataloader = train_dataloader


class RunRecorder(Callback):
    """The run's record, once per epoch after validation, in this order: the history row; the
    best weights when val_psnr improved (checkpoints/best-eNNNN.ckpt); checkpoints/last.ckpt
    (weights, optimizer, schedule, loop and random states, and this callback's rows); then the
    MLflow metrics (step = epoch), the sample grid and the run folder's history CSV.

    A process killed at any point leaves a last.ckpt whose rows and best file agree. Resuming
    restores the random states (the resumed epochs draw what they would have drawn) and logs the
    epochs MLflow missed. A stop asked for by a signal takes effect at the next batch."""

    def __init__(self) -> None:
        self.run: runs.Run
        self.client: Any = None
        self.mlflow_run_id = ""
        self.stop = SignalStop()
        self.rows: list[dict[str, float]] = []
        self.best: dict[str, Any] | None = None  # {"epoch", "val_psnr", "file"}
        self.trainer: L.Trainer | None = None
        self.leader = True  # rank 0 (or the only process): it logs and writes the run's files

    def bind(
        self, run: runs.Run, client: Any, mlflow_run_id: str, stop: SignalStop, leader: bool = True
    ) -> None:
        """Attach the run (known only after the settings were checked and the trainer built).
        A follower (data-parallel rank > 0) only takes part in the collective checkpoint saves."""
        self.run, self.client, self.mlflow_run_id, self.stop = run, client, mlflow_run_id, stop
        self.leader = leader

    def check_stop(self, trainer: L.Trainer) -> None:
        """Stop at this batch boundary if a signal asked for it, on every rank at the same
        batch (data-parallel: a signal to any rank stops all of them; one tiny all-reduce)."""
        wanted = self.stop.signum is not None and not self.stop.finishing
        if trainer.world_size > 1:
            wanted = trainer.strategy.reduce_boolean_decision(wanted, all=False)
        if wanted:
            raise StopRequested(self.stop.signum or signal.SIGTERM)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "best": self.best, "rng": rng_state(self.trainer)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resuming: the rows and best file so far, and the random states, so the resumed epochs
        draw what the uninterrupted run would have drawn. Lightning restores callbacks after
        `setup` and before the train loader exists (configure_optimizers creates it)."""
        self.rows = list(state_dict.get("rows", []))
        self.best = state_dict.get("best")
        rng = state_dict.get("rng")
        if rng is not None:
            restore_global_rng(rng)
            if self.trainer is not None and self.trainer.datamodule is not None:
                restore_loader_rng(self.trainer.datamodule, rng)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.trainer = trainer

    @property
    def best_path(self) -> Path | None:
        return self.run.checkpoints / self.best["file"] if self.best else None

    def _prune(self) -> None:
        """Remove best files other than the one the state names (a killed epoch's)."""
        keep = self.best["file"] if self.best else None
        for path in self.run.checkpoints.glob("best-e*.ckpt"):
            if path.name != keep:
                path.unlink(missing_ok=True)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.leader:
            self.run.checkpoints.mkdir(parents=True, exist_ok=True)
            self._prune()
        if self.rows and self.leader:  # resumed: log the epochs a killed process did not log
            history = self.client.get_metric_history(self.mlflow_run_id, "val_psnr")
            logged = {m.step for m in history}
            for row in self.rows:
                if row["epoch"] not in logged:
                    self._log_metrics(row)
        if trainer.world_size > 1:
            self.stop.take_back_sigterm()
        # So a checkpoint exists from the start. Saving is collective: rank 0 decides for all.
        if trainer.strategy.broadcast(not self.rows and not self.run.last.exists()):
            trainer.save_checkpoint(self.run.last, weights_only=False)  # (False: the full state)
        self.check_stop(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.datamodule.set_epoch(trainer.current_epoch)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.check_stop(trainer)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.check_stop(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: InpaintModule) -> None:
        epoch = trainer.current_epoch
        row = {"epoch": epoch} | {
            k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items())
        }
        self.rows.append(row)
        score = row.get("val_psnr")  # the same on every rank (logged with sync_dist)
        improved = (
            score is not None
            and math.isfinite(score)
            and (self.best is None or score > self.best["val_psnr"])
        )
        if trainer.strategy.broadcast(improved):  # a collective save: rank 0 decides
            name = f"best-e{epoch:04d}.ckpt"
            trainer.save_checkpoint(self.run.checkpoints / name, weights_only=True)
            self.best = {"epoch": epoch, "val_psnr": score, "file": name}
        trainer.save_checkpoint(self.run.last, weights_only=False)
        if not self.leader:
            self.check_stop(trainer)
            return
        self.run.update(epochs_done=epoch + 1)
        self._log_metrics(row)
        if pl_module.samples:
            s = pl_module.samples
            grid = sample_grid(
                [masked_view(s["image"], s["mask"]), s["output"], s["image"]],
                labels=["input, hole in white", "model", "ground truth"],
            )
            self.client.log_image(self.mlflow_run_id, grid, key="val_samples", step=epoch)
        atomic_write_text(self.run.history, history_csv(self.rows))
        self._prune()
        self.check_stop(trainer)

    def _log_metrics(self, row: dict[str, float]) -> None:
        """Every epoch metric to MLflow (e.g. train_d_loss with loss=adversarial), step = epoch."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, value, now, int(row["epoch"]))
            for key, value in row.items()
            if key != "epoch" and math.isfinite(value)
        ]
        self.client.log_batch(self.mlflow_run_id, metrics=metrics)


def history_csv(rows: list[dict[str, float]]) -> str:
    """plots/train_history.csv: one row per epoch, HISTORY_COLUMNS."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    """metrics/train.json."""
    columns = [{k: r[k] for k in HISTORY_COLUMNS if k in r} for r in rows]
    best_row = max(columns, key=lambda r: r.get("val_psnr", -math.inf))
    return {
        "epochs": len(columns),
        "best_epoch": best_row["epoch"],
        "best_val_psnr": best_row.get("val_psnr"),
        "final": columns[-1],
    }


# --- the end of a run: outputs staged, or the stop recorded -------------------------------------


def stage_outputs(
    run: runs.Run,
    recorder: RunRecorder,
    summary: dict,
    mlflow_run_id: str,
    config: dict,
    correction_scale: float | None = None,
) -> None:
    """The three outputs, written completely into the run folder before any is published. The
    checkpoint is the best epoch's weights (with `correction_scale`, when given, as the share of
    the correction its generators keep) plus `inpaintlab`: the MLflow run (evaluate and export
    log into it), the config, the run, and the digests of its train.json and history CSV."""
    metrics_text = json.dumps(summary, indent=2) + "\n"
    history_text = history_csv(recorder.rows)
    checkpoint = load_checkpoint(recorder.best_path)
    if correction_scale is not None:
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.endswith("correction_scale")]:  # generator, ema.module
            state[key] = torch.tensor(float(correction_scale))
    checkpoint["inpaintlab"] = {
        "mlflow_run_id": mlflow_run_id,
        "config": config,
        "run": run.key,
        "train_json_sha256": hashlib.sha256(metrics_text.encode()).hexdigest(),
        "history_sha256": hashlib.sha256(history_text.encode()).hexdigest(),
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    runs.stage(
        run,
        {
            CHECKPOINT_NAME: buffer.getvalue(),
            TRAIN_METRICS_NAME: metrics_text,
            HISTORY_NAME: history_text,
        },
    )


def interrupted(run: runs.Run, uri: str, mlflow_run_id: str, started: float, signum: int) -> None:
    """Record the stop (run.json: interrupted; MLflow: KILLED) and raise the one-line message."""
    name = signal.Signals(signum).name
    seconds = run.state.get("seconds", 0.0) + time.time() - started
    run.update(status="interrupted", signal=name, seconds=round(seconds, 1))
    tracking.terminate(uri, mlflow_run_id, "KILLED")
    done, total = run.state.get("epochs_done", 0), run.state.get("max_epochs")
    raise Interrupted(
        f"training interrupted by {name} ({done}{f' of {total}' if total else ''} epochs done); "
        f"last checkpoint {run.last}; run the same command again to resume",
        signum,
    )


def failed(
    run: runs.Run, uri: str, mlflow_run_id: str, started: float, err: BaseException | None
) -> None:
    seconds = run.state.get("seconds", 0.0) + time.time() - started
    reason = one_line(err)[:300] if err is not None else "no finite val_psnr"
    run.update(status="failed", error=reason, seconds=round(seconds, 1))
    tracking.terminate(uri, mlflow_run_id, "FAILED")
