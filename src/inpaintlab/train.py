"""train stage: data/prepared -> models/model.ckpt, metrics/train.json, plots/train_history.csv.

Every run is an MLflow run: the resolved config as params, per-epoch metrics with step = epoch,
and a grid of the same validation images each epoch (masked input | output | ground truth).
In a Hydra multirun (`-m`) each job writes the same files under its own job dir instead, and its
run is a child of the sweep's parent run (tracking.SweepCallback).

Data-parallel (trainer=ddp, torchrun, srun; distributed.py): every rank runs this stage; rank 0
owns the run (folder, MLflow, outputs) and the others follow its decisions.

Interrupt and resume (runs.py): every training has its own folder under logs/train/runs/ with a
last.ckpt written at each epoch end. SIGINT/SIGTERM stop at the next batch, mark the MLflow run
KILLED and exit 130/143 with one line naming that checkpoint; re-running the same command (or
`dvc repro`) continues it, in the same MLflow run. The three outputs are published together, at
the end, from one completed run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from inpaintlab import cpu_share, distributed, runs, settings, slurm, tracking
from inpaintlab.checkpoints import AtomicCheckpointIO, load_generator
from inpaintlab.errors import Interrupted, UserError, one_line, stage
from inpaintlab.inpaint_module import InpaintModule
from inpaintlab.recorder import (
    CHECKPOINT_NAME,
    HISTORY_NAME,
    TRAIN_METRICS_NAME,
    RunRecorder,
    SignalStop,
    StopRequested,
    failed,
    interrupted,
    stage_outputs,
    summarise,
)

log = logging.getLogger(__name__)

# Lightning chatter that asks nothing of the user (tips, GPU/TPU availability, pytree deprecations).
# Lightning's "Received SIGTERM" too: the interrupt ends with one line of ours.
for name in (
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.trainer.connectors.signal_connector",
):
    logging.getLogger(name).setLevel(logging.WARNING)
warnings.filterwarnings(
    "ignore",
    message=".*(LeafSpec|log_every_n_steps|does not have many workers|`srun` command is available).*",
)


@dataclass(frozen=True)
class Outputs:
    """Where a run writes: the `paths` config (the same keys dvc.yaml's outs read). Sweep jobs run
    side by side (joblib, Slurm) and would clobber each other there, so each writes the same
    relative paths under its Hydra job dir."""

    checkpoint: Path
    metrics: Path
    history: Path
    work_dir: Path

    @classmethod
    def for_job(cls, paths: DictConfig, info: tracking.JobInfo) -> Outputs:
        base = info.output_dir if info.multirun and info.output_dir else Path()
        return cls(
            base / paths.checkpoint,
            base / paths.train_metrics,
            base / paths.train_history,
            base / paths.train_runs,
        )

    def targets(self) -> list[runs.Target]:
        """The published files and the names of their staged copies in a run folder."""
        return [
            runs.Target(self.checkpoint, CHECKPOINT_NAME),
            runs.Target(self.metrics, TRAIN_METRICS_NAME),
            runs.Target(self.history, HISTORY_NAME),
        ]


# --- MLflow, trainer, model ----------------------------------------------------------------------


def start_mlflow(
    cfg: DictConfig,
    info: tracking.JobInfo,
    uri: str,
    experiment_id: str,
    run: runs.Run,
    config: dict,
    say: Callable[[str], None],
) -> str:
    """The MLflow run of this training, by id: a resumed run continues its own (this process's
    tags, status RUNNING again); else a new one, named and tagged by what changed
    (tracking.run_name / run_tags), a sweep job's a child of the sweep's parent run."""
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient
    from mlflow.tracking.context.registry import resolve_tags

    process = tracking.process_tags() | {"inpaintlab.run_dir": str(run.dir.resolve())}
    previous = run.state.get("mlflow") or {}
    if run.resumed and previous.get("run_id"):
        resumed = process | {"inpaintlab.resumed_at_epoch": str(run.state.get("epochs_done", 0))}
        if previous.get("tracking_uri") == uri and tracking.reopen_run(
            uri, previous["run_id"], resumed
        ):
            return previous["run_id"]
        process["inpaintlab.resumed_from_run"] = previous["run_id"]
        say(
            f"MLflow run {previous['run_id']} is not in {uri}; continuing in a new run "
            "(its tag inpaintlab.resumed_from_run links to the old one)"
        )
    parent = tracking.sweep_parent(info)
    tags = tracking.run_tags(cfg, info, parent, experiment_id) | process
    tags["mlflow.runName"] = tracking.run_name(cfg, info, parent)
    created = MlflowClient(tracking_uri=uri).create_run(experiment_id, tags=resolve_tags(tags))
    run_id = created.info.run_id
    run.update(mlflow={"run_id": run_id, "tracking_uri": uri, "experiment_id": experiment_id})
    MLFlowLogger(tracking_uri=uri, run_id=run_id).log_hyperparams(config)
    return run_id


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


def apply_speed_settings(module: InpaintModule, cfg: DictConfig) -> None:
    """`train.channels_last` (NHWC convolutions: faster on GPUs with tensor cores and on some
    CPUs) and `train.compile` (torch.compile the generator, in place so the checkpoint's keys
    and the export stay the same). Neither changes what is learned beyond float rounding."""
    if OmegaConf.select(cfg, "train.channels_last", default=False):
        module.to(memory_format=torch.channels_last)
    if OmegaConf.select(cfg, "train.compile", default=False):
        module.generator.compile()


def build(
    cfg: DictConfig, callbacks: Sequence[L.Callback] = ()
) -> tuple[InpaintModule, L.LightningDataModule, L.Trainer, RunRecorder]:
    """The module, the datamodule (set up: data/prepared read and checked), the trainer (with
    `callbacks` besides its recorder) and the recorder. Nothing here writes: a bad value fails as
    one line before anything is created or deleted."""
    try:
        mask_generator = hydra.utils.instantiate(cfg.mask)
        # _partial_: passing the generator through instantiate would turn its dataclass into a dict
        datamodule = hydra.utils.instantiate(cfg.datamodule, _partial_=True)(
            mask_generator=mask_generator, seed=cfg.seed
        )
        datamodule.setup("fit")
        module = InpaintModule(
            model=cfg.model, loss=cfg.loss, optim=cfg.optim, num_samples=cfg.logger.num_samples
        )
        apply_speed_settings(module, cfg)
        recorder = RunRecorder()
        trainer = make_trainer(
            cfg.trainer,
            module,
            logger=False,  # MLflow: RunRecorder logs each epoch with step = epoch
            callbacks=[recorder, *callbacks],
            enable_checkpointing=False,  # RunRecorder writes the checkpoints
            plugins=[AtomicCheckpointIO()],
        )
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"invalid setting: {one_line(err)}") from None
    return module, datamodule, trainer, recorder


def say(message: str) -> None:
    """A line for the user on stdout: what happens to the run (resumed, fresh and why,
    published)."""
    print(message, flush=True)


# --- the stage -----------------------------------------------------------------------------------


def train(cfg: DictConfig) -> dict:
    """One training; resumes an interrupted one with the same settings (runs.py). SIGINT and
    SIGTERM end it with errors.Interrupted (exit 130/143) after marking the MLflow run KILLED."""
    settings.check_train(cfg)
    info = tracking.job_info()
    out = Outputs.for_job(cfg.paths, info)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    threads = tracking.threads_per_job(info.launcher if info.multirun else None)
    torch.set_num_threads(threads)
    log.info("torch threads: %d (OMP_NUM_THREADS=%s)", threads, os.environ.get("OMP_NUM_THREADS"))
    # Trainings at once on this machine (other commands, data-parallel ranks) share the CPUs.
    with cpu_share.TrainingSlot() as slot:
        module, datamodule, trainer, recorder = build(cfg, [cpu_share.ShareCpus(slot, threads)])
        if trainer.global_rank > 0:  # data-parallel
            return follow_leader(out, module, datamodule, trainer, recorder)
        config = OmegaConf.to_container(cfg, resolve=True)
        fingerprint = runs.Fingerprint(
            runs.train_config(config), runs.code_digest(), runs.data_digest(datamodule.prepared_dir)
        )
        stop = SignalStop().install()
        try:
            with slurm.requeue_on_signal():
                return lead(
                    cfg, info, out, fingerprint, config, module, datamodule, trainer, recorder, stop
                )
        finally:
            stop.uninstall()


def lead(
    cfg: DictConfig,
    info: tracking.JobInfo,
    out: Outputs,
    fingerprint: runs.Fingerprint,
    config: dict,
    module: InpaintModule,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    recorder: RunRecorder,
    stop: SignalStop,
) -> dict:
    """Rank 0 (or the only process): resume or open the run, start its MLflow run, fit, publish."""
    from mlflow.tracking import MlflowClient

    resume = bool(OmegaConf.select(cfg, "train.resume", default=True))
    uri = tracking.tracking_uri(cfg.logger.tracking_uri)
    experiment_id = tracking.ensure_experiment(cfg.logger.experiment_name, uri)
    tracking.close_dead_runs(uri, experiment_id)

    finished = runs.recover(out.work_dir)
    if finished:
        state = runs.read_state(out.work_dir / runs.RUNS / finished) or {}
        say(f"completed publishing run {finished}, which a stopped process had begun")
        if resume and state.get("summary") and not fingerprint.differences(state["fingerprint"]):
            tracking.terminate(uri, state["mlflow"]["run_id"], "FINISHED")
            return state["summary"] | {
                "checkpoint": str(out.checkpoint),
                "mlflow_run_id": state["mlflow"]["run_id"],
            }
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        raise Interrupted(f"interrupted by {name} before training started", stop.signum)

    run = runs.open_run(out.work_dir, fingerprint, resume, cfg.trainer.max_epochs, say)
    try:
        mlflow_run_id = start_mlflow(cfg, info, uri, experiment_id, run, config, say)
        recorder.bind(run, MlflowClient(tracking_uri=uri), mlflow_run_id, stop)
        session = contextlib.nullcontext()
        if trainer.world_size > 1:  # hand the run to the other ranks (distributed.py)
            resume_from = run.resume_from
            launch = distributed.Launch(
                str(run.dir.resolve()),
                str(resume_from.resolve()) if resume_from else None,
                mlflow_run_id,
            )
            session = distributed.leader_session(out.work_dir, launch)
        with session:
            return fit_and_publish(
                config, out, module, datamodule, trainer, recorder, stop, run, uri
            )
    finally:
        run.close()


def follow_leader(
    out: Outputs,
    module: InpaintModule,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    recorder: RunRecorder,
) -> dict:
    """A data-parallel rank > 0: fit with rank 0's run folder and checkpoint; rank 0 logs and
    publishes. A signal to any rank stops every rank at the same batch (RunRecorder.check_stop)."""
    launch = distributed.follow(out.work_dir, trainer.global_rank)
    run_dir = Path(launch.run_dir)
    run = runs.Run(dir=run_dir, state=runs.read_state(run_dir) or {}, lock=None)  # type: ignore[arg-type]
    stop = SignalStop().install()
    recorder.bind(run, None, launch.mlflow_run_id, stop, leader=False)
    try:
        with slurm.requeue_on_signal(leader=False):
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=launch.resume_from, weights_only=True
            )
    except (StopRequested, KeyboardInterrupt, SIGTERMException) as err:
        signum = getattr(err, "signum", None) or stop.signum or signal.SIGTERM
        raise Interrupted(
            f"rank {trainer.global_rank} stopped with the others ({signal.Signals(signum).name})",
            signum,
        ) from None
    finally:
        stop.uninstall()
    return summarise(recorder.rows) | {"rank": trainer.global_rank, "checkpoint": None}


def fit_and_publish(
    config: dict,
    out: Outputs,
    module: InpaintModule,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    recorder: RunRecorder,
    stop: SignalStop,
    run: runs.Run,
    uri: str,
) -> dict:
    """Fit (from the run's last checkpoint when resuming), then stage and publish the outputs."""
    client, mlflow_run_id = recorder.client, recorder.mlflow_run_id
    resume_from = run.resume_from
    if resume_from is not None:
        say(
            f"resuming from epoch {run.state.get('epochs_done', 0)} "
            f"(run {run.key}, MLflow run {mlflow_run_id}): {resume_from}"
        )
    started = time.time()
    try:
        stop.check()
        trainer.fit(
            module,
            datamodule=datamodule,
            ckpt_path=str(resume_from) if resume_from else None,
            weights_only=True,
        )
        if trainer.interrupted:
            raise StopRequested(stop.signum or signal.SIGINT)
    except (StopRequested, KeyboardInterrupt, SystemExit) as err:
        lightning_sigterm = isinstance(err, SIGTERMException)
        if isinstance(err, SystemExit) and not lightning_sigterm and stop.signum is None:
            failed(run, uri, mlflow_run_id, started, err)
            raise
        signum = getattr(err, "signum", None) or stop.signum
        signum = signum or (signal.SIGTERM if lightning_sigterm else signal.SIGINT)
        interrupted(run, uri, mlflow_run_id, started, signum)
    except BaseException as err:
        if stop.signum is not None:  # e.g. a loader worker killed by the same Ctrl-C
            interrupted(run, uri, mlflow_run_id, started, stop.signum)
        failed(run, uri, mlflow_run_id, started, err)
        raise

    # Training is complete: a first signal from here on waits for the outputs (a second one
    # stops at once; the publish journal then completes them at the next start).
    stop.finishing = True
    seconds = run.state.get("seconds", 0.0) + time.time() - started
    if recorder.best_path is None or not recorder.rows:
        failed(run, uri, mlflow_run_id, started, None)
        raise UserError(
            f"training produced no finite val_psnr; the run is in {run.dir} "
            "(train.resume=false starts over instead of resuming it)"
        )
    summary = summarise(recorder.rows)
    scale = None
    if config["model"].get("calibrate_correction"):
        scale, report = calibrate(recorder.best_path, config)
        summary |= {"correction_scale": scale, "val_psnr_by_size": report}
        client.log_metric(mlflow_run_id, "calibrated_correction_scale", scale)
        for size, values in report.items():
            client.log_metric(mlflow_run_id, f"val_{size}px_psnr", values["model"])
            client.log_metric(mlflow_run_id, f"val_{size}px_fill_psnr", values["fill"])
    stage_outputs(run, recorder, summary, mlflow_run_id, config, scale)
    run.update(status="trained", summary=summary, seconds=round(seconds, 1))
    client.log_metric(mlflow_run_id, "train_seconds", round(seconds, 1))
    if summary["best_val_psnr"] is not None:  # the sweep objective, comparable across runs
        client.log_metric(mlflow_run_id, "best_val_psnr", summary["best_val_psnr"])
    client.log_artifact(mlflow_run_id, str(run.staged / HISTORY_NAME))
    client.set_terminated(mlflow_run_id, status="FINISHED")

    previous = runs.publish(out.work_dir, run, out.targets())
    replaced = ""
    if previous and previous.get("run") != run.key:
        replaced = f", replacing those of run {previous['run']}"
    say(
        f"published {out.checkpoint}, {out.metrics} and {out.history} from run {run.key} "
        f"(MLflow run {mlflow_run_id}){replaced}"
    )
    log.info(
        "trained %d epochs in %.0fs; best val_psnr %.2f dB (epoch %d)",
        summary["epochs"],
        seconds,
        summary["best_val_psnr"],
        summary["best_epoch"],
    )
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        say(f"{name} arrived after training had finished; the outputs are complete")
    return summary | {"checkpoint": str(out.checkpoint), "mlflow_run_id": mlflow_run_id}


def calibrate(best: Path, config: dict) -> tuple[float, dict]:
    """The share of the correction the published model keeps, chosen on the val photos at the
    training size and at full size (calibration.py), and the val PSNR per size."""
    from inpaintlab.calibration import choose_scale

    generator, _ = load_generator(str(best))
    data = config["data"]
    say("choosing the share of the correction on the val photos at full size ...")
    return choose_scale(
        generator,
        Path(config["datamodule"]["prepared_dir"]),
        int(data["image_size"]),
        [int(f) for f in data.get("full_sizes") or []],
        list(data["val_families"]),
    )


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@stage
def main(cfg: DictConfig) -> float:
    summary = train(cfg)
    if summary.get("rank"):  # a data-parallel follower: rank 0 reports
        return float(summary["best_val_psnr"])
    print(
        f"best val_psnr {summary['best_val_psnr']:.2f} dB after {summary['epochs']} epochs -> {summary['checkpoint']}"
    )
    return float(summary["best_val_psnr"])  # the value Hydra sweepers optimise


if __name__ == "__main__":
    main()
