"""The Hydra job a training runs in (single run or one job of a sweep, its overrides, choices
and launcher) and the CPU threads it may use, so parallel sweep jobs share the cores instead of
oversubscribing them. Kept apart from MLflow: train reads it before any store is opened."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpaintlab.processes import available_cpus


@dataclass(frozen=True)
class JobInfo:
    """What Hydra knows about the running job; empty outside a Hydra app (e.g. a test calling train)."""

    multirun: bool = False
    output_dir: Path | None = None
    sweep_dir: Path | None = None
    job_num: int | None = None
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    launcher: dict[str, Any] = field(default_factory=dict)


def job_info() -> JobInfo:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return JobInfo()
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    choices = {
        k: str(v) for k, v in OmegaConf.to_container(hc.runtime.choices).items() if v is not None
    }
    launcher = OmegaConf.to_container(hc.launcher, resolve=True) if hc.get("launcher") else {}
    return JobInfo(
        multirun=multirun,
        output_dir=Path(hc.runtime.output_dir) if hc.runtime.get("output_dir") else None,
        sweep_dir=Path(hc.sweep.dir).resolve() if multirun else None,
        job_num=hc.job.get("num") if multirun else None,
        overrides=list(hc.overrides.task),
        choices=choices,
        launcher=launcher,
    )


def parallel_jobs(launcher: Mapping[str, Any]) -> int:
    """How many jobs the launcher runs at once: joblib's n_jobs (negative counts back from the CPU
    count, as in joblib), 1 for the sequential basic launcher."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    n_jobs = int(launcher.get("n_jobs") or 1)
    if n_jobs < 0:
        n_jobs = available_cpus() + 1 + n_jobs
    return max(1, n_jobs)


def threads_per_job(launcher: Mapping[str, Any] | None = None) -> int:
    """Torch threads for one job: the CPUs shared among the parallel jobs, capped by an explicit
    $OMP_NUM_THREADS, so a joblib sweep does not oversubscribe the cores."""
    per_job = max(1, available_cpus() // parallel_jobs(launcher or {}))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return min(per_job, int(omp)) if omp.isdigit() and int(omp) > 0 else per_job
