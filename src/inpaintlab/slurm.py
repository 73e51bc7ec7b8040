"""Training inside a Slurm job: the scheduler's warning signal requeues the job, and the requeued
job resumes the training from its last checkpoint (runs.py), in the same MLflow run.

Slurm sends SIGUSR1 ahead of a time limit or a preemption when asked to (`--signal=USR1@90`,
the signal Lightning's docs use; `scancel --signal=USR1 <job>` does it by hand). Inside a Slurm job
Lightning would handle it itself (`SLURMEnvironment(auto_requeue=True)`): save a mid-epoch
`hpc_ckpt_<n>.ckpt` into `trainer.default_root_dir`, the working directory, i.e. the repo root,
then `scontrol requeue`. We do not want that file: train.py resumes only at epoch ends (a
mid-epoch resume re-draws the loader's shuffle), and Lightning loads the newest such file into any
later fit without a checkpoint (every fresh training) under Slurm in that folder, whatever its
settings. Lightning leaves a signal that already has a handler alone, so train.py installs one
(`requeue_on_signal`) before the training starts: it only requeues. Slurm then stops the job
with SIGTERM, which train.py turns into a stop at the next batch (MLflow run KILLED, `last.ckpt`
kept); the requeued job runs the same command again, which
resumes that run. A plain `scontrol requeue` or a preemption with PreemptMode=REQUEUE takes the
same path from the SIGTERM on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

REQUEUE_SIGNAL = signal.SIGUSR1  # Lightning's SLURMEnvironment.requeue_signal


def job_id_in_env() -> str | None:
    """The Slurm job id in this process's environment as scontrol takes it (`<array job>_<task>`
    for an array task, as the submitit launcher submits sweeps); None outside Slurm."""
    env = os.environ
    if not env.get("SLURM_JOB_ID"):
        return None
    array_job, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    return f"{array_job}_{task}" if array_job and task else env["SLURM_JOB_ID"]


def slurm_job_id() -> str | None:
    """job_id_in_env() inside a batch job; None outside Slurm or in an interactive job."""
    job = job_id_in_env()
    if job is None:
        return None
    from lightning.fabric.plugins.environments import SLURMEnvironment  # only inside Slurm: slow

    return job if SLURMEnvironment.detect() else None


def requeue(job_id: str) -> bool:
    """`scontrol requeue <job>`: Slurm ends the job (SIGTERM) and queues it again."""
    try:
        result = subprocess.run(
            ["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("could not requeue Slurm job %s: %s", job_id, err)
        return False
    if result.returncode != 0:
        log.warning("could not requeue Slurm job %s: %s", job_id, result.stderr.strip())
        return False
    return True


@contextmanager
def requeue_on_signal(leader: bool = True) -> Iterator[None]:
    """Inside a (non-interactive) Slurm job, while training: SIGUSR1 requeues the job, without
    Lightning's mid-epoch checkpoint (module docstring); data-parallel ranks other than rank 0
    only log it (one requeue per job). Nothing changes outside Slurm. train.py uses it, so a
    sweep job, `dvc repro` and a plain command line under sbatch all get it."""
    job_id = slurm_job_id()
    if job_id is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        if not leader:
            return
        log.warning(
            "%s: requeueing Slurm job %s; the training stops at the next batch and the "
            "requeued job resumes it from its last checkpoint",
            signal.Signals(signum).name,
            job_id,
        )
        requeue(job_id)

    previous = signal.signal(REQUEUE_SIGNAL, handle)
    try:
        yield
    finally:
        signal.signal(REQUEUE_SIGNAL, previous)
