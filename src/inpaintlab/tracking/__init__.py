"""MLflow plumbing, one module per job: `store` (which store, the experiment, runs opened, ended,
closed after their process died), `versions` (git commit, data version), `jobs` (the Hydra job
and its CPU threads), `naming` (run names and tags), `sweep` (a parent run per Hydra sweep).
Callers use the names re-exported here: `tracking.tracking_uri(...)`, `tracking.SweepCallback`."""

from inpaintlab.tracking.jobs import JobInfo, job_info, parallel_jobs, threads_per_job
from inpaintlab.tracking.naming import MAX_NAME, mask_name, run_name, run_tags, varying_overrides
from inpaintlab.tracking.store import (
    DEFAULT_DB,
    artifact_location,
    close_dead_runs,
    ensure_experiment,
    process_tags,
    project_root,
    reopen_run,
    terminate,
    tracking_uri,
)
from inpaintlab.tracking.sweep import (
    ENV_PARENT_RUN,
    ENV_SWEEP_ID,
    SWEEP_FILE,
    SweepCallback,
    SweepParent,
    sweep_parent,
)
from inpaintlab.tracking.versions import data_version, git_commit

__all__ = [
    "DEFAULT_DB",
    "ENV_PARENT_RUN",
    "ENV_SWEEP_ID",
    "MAX_NAME",
    "SWEEP_FILE",
    "JobInfo",
    "SweepCallback",
    "SweepParent",
    "artifact_location",
    "close_dead_runs",
    "data_version",
    "ensure_experiment",
    "git_commit",
    "job_info",
    "mask_name",
    "parallel_jobs",
    "process_tags",
    "project_root",
    "reopen_run",
    "run_name",
    "run_tags",
    "sweep_parent",
    "terminate",
    "threads_per_job",
    "tracking_uri",
    "varying_overrides",
]
