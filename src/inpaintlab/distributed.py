"""Data-parallel training (`trainer=ddp`): rank 0 leads, the other ranks follow.

Every rank runs the whole `train` entry point: Lightning's own launcher re-runs the command
line once per extra device (`trainer.devices=2`), and `torchrun` or `srun` start one process
per rank. Only rank 0 (the leader) owns the run: it opens the run folder, resumes or starts the
MLflow run, logs, and publishes the outputs. Before fitting it hands the other ranks its
decisions (the run folder, the checkpoint to resume from), which they must share: all ranks
load the same checkpoint and write checkpoints together (Lightning writes on rank 0 only).

The hand-over: Lightning's launcher starts the other ranks from inside `fit`, with a copy of
the leader's environment, so the decisions travel in an environment variable. Processes started
together by torchrun or srun cannot see the leader's environment; they read the same record from
a file named after their launch (the torchrun/Slurm job and restart) in the run's work folder.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from inpaintlab.errors import UserError
from inpaintlab.files import atomic_write_json

LAUNCH_ENV = "INPAINTLAB_DDP_LAUNCH"
LAUNCH_DIR = "launch"  # under the training's work folder (logs/train/launch/<launch id>.json)
FOLLOW_TIMEOUT_S = 600.0
_STARTED = time.time()  # a launch record older than this process is a previous launch's
# What Lightning's launcher sets in the leader's own environment for the ranks it starts.
_LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", LAUNCH_ENV)


@dataclass(frozen=True)
class Launch:
    """What the leader decided before fitting."""

    run_dir: str
    resume_from: str | None
    mlflow_run_id: str
    written: float = 0.0


def launch_id() -> str | None:
    """The launch this process belongs to when an external launcher started every rank (torchrun,
    srun); None under Lightning's own launcher (or no launcher)."""
    env = os.environ
    if env.get("TORCHELASTIC_RUN_ID"):
        return f"torchrun-{env['TORCHELASTIC_RUN_ID']}-{env.get('TORCHELASTIC_RESTART_COUNT', 0)}"
    if env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1")) > 1:
        step = env.get("SLURM_STEP_ID", "batch")
        return f"slurm-{env['SLURM_JOB_ID']}.{step}-{env.get('SLURM_RESTART_COUNT', 0)}"
    return None


def announce(work_dir: Path, launch: Launch) -> Path | None:
    """Leader: hand the decisions to the other ranks (before `fit` starts them); the launch
    file's path when there is one."""
    record = asdict(launch) | {"written": time.time()}
    os.environ[LAUNCH_ENV] = json.dumps(record)
    name = launch_id()
    if not name:
        return None
    path = work_dir / LAUNCH_DIR / f"{name}.json"
    atomic_write_json(path, record)
    return path


def follow(work_dir: Path, rank: int, timeout: float = FOLLOW_TIMEOUT_S) -> Launch:
    """Follower: the leader's decisions, waiting for them when the ranks started together."""
    if os.environ.get(LAUNCH_ENV):
        return Launch(**json.loads(os.environ[LAUNCH_ENV]))
    name = launch_id()
    if name is None:
        raise UserError(
            f"rank {rank} was started without rank 0's launch record: start data-parallel "
            "training with trainer=ddp (Lightning starts the ranks), torchrun or srun"
        )
    path = work_dir / LAUNCH_DIR / f"{name}.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            record = json.loads(path.read_text())
            if record["written"] >= _STARTED - 60:  # not a file left by an earlier launch
                return Launch(**record)
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise UserError(
        f"rank {rank}: rank 0 did not start the run within {timeout:.0f}s (no {path}); "
        "see rank 0's output"
    )


def relaunch_as_this_job() -> None:
    """In a Hydra multirun, make Lightning's launcher re-run this one job, not the sweep.

    Lightning starts each extra rank with this process's `sys.argv` plus `hydra.run.dir=<this
    job's run dir>` (lightning.fabric.strategies.launchers.subprocess_script). In a sweep job
    that command line is the whole sweep (`-m seed=1,2`): every rank would start a sweep of its
    own, with extra runs and folders. So the command line becomes this job's own overrides
    (Hydra's `overrides.task`, e.g. `seed=1`) without `-m`, and the run dir this job's output
    folder, where the ranks then write nothing (`hydra.output_subdir=null`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return
    flags, args = [], iter(sys.argv[1:])
    for arg in args:  # keep --config-dir/--config-name/--config-path and their values
        if arg.startswith("--config"):
            flags.append(arg)
            if "=" not in arg:
                flags.append(next(args, ""))
    sys.argv = [sys.argv[0], *flags, *hc.overrides.task]
    with read_write(hc), open_dict(hc):
        hc.run.dir = hc.runtime.output_dir


@contextmanager
def leader_session(work_dir: Path, launch: Launch) -> Iterator[None]:
    """The leader's data-parallel training: the decisions handed over (announce), the command
    line made this job's (relaunch_as_this_job), and all of it undone afterwards: the process
    group destroyed, the launch file removed, the environment and command line restored. A
    sequential sweep (`-m`, the basic launcher) runs its jobs in this one process; without this
    the next job would reuse a process group whose other ranks have exited, and read the
    LOCAL_RANK Lightning's launcher left as a sign that it was started externally."""
    import torch.distributed as dist

    saved_env = {k: os.environ.get(k) for k in _LAUNCHER_ENV}
    saved_argv = list(sys.argv)
    path = announce(work_dir, launch)
    relaunch_as_this_job()
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        if path is not None:
            path.unlink(missing_ok=True)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.argv = saved_argv
