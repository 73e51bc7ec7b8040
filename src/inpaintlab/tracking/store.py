"""The MLflow store and the lifecycle of its runs: which store (tracking URI, artifact location,
the project root even inside a DVC temp workspace), the experiment created race-safely, and runs
opened, reopened, ended or closed after their process died."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from inpaintlab.processes import identity_alive, process_identity
from inpaintlab.slurm import job_id_in_env

log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
DVC_TEMP_WORKSPACE = (".dvc", "tmp", "exps")
PROCESS_TAG = "inpaintlab.{}"  # inpaintlab.host, .boot, .pid, .pid_start: who runs the run


def project_root(cwd: str | Path = ".") -> Path:
    """Where the shared store lives.

    Queued DVC experiments run in a temp copy (<root>/.dvc/tmp/exps/<tmp>/); a store relative to
    that copy would be deleted with it. DVC sets $DVC_ROOT for every stage it runs, and for queued
    experiments points it at the parent repository: use it, else recognise the temp copy's path.
    """
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path(cwd).resolve()
    parts = here.parts
    n = len(DVC_TEMP_WORKSPACE)
    for i in range(len(parts) - n, 0, -1):
        if parts[i : i + n] == DVC_TEMP_WORKSPACE:
            return Path(*parts[:i])
    return here


def tracking_uri(configured: str | None = None, root: str | Path | None = None) -> str:
    """Config value, else $MLFLOW_TRACKING_URI, else sqlite:///<project root>/mlflow.db (absolute,
    so runs from another working directory or a DVC temp workspace land in the project's store)."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    base = Path(root).resolve() if root is not None else project_root()
    return f"sqlite:///{(base / DEFAULT_DB).as_posix()}"


def artifact_location(uri: str, root: str | Path | None = None) -> str | None:
    """Artifacts beside a local SQLite store (mlartifacts/); a server decides for itself."""
    if uri.startswith("sqlite:"):
        base = Path(root).resolve() if root is not None else project_root()
        return (base / "mlartifacts").as_uri()
    return None


def ensure_experiment(name: str, uri: str, root: str | Path | None = None) -> str:
    """Create the store and experiment if missing and return its id.

    Done once before a run (or a parallel sweep) starts: parallel jobs racing to create the
    SQLite tables or the same experiment is a known failure, so a lost race is retried as a lookup.
    """
    from mlflow.tracking import MlflowClient

    error: Exception | None = None
    for attempt in range(8):
        try:
            client = MlflowClient(tracking_uri=uri)
            experiment = client.get_experiment_by_name(name)
            if experiment is not None:
                return experiment.experiment_id
            return client.create_experiment(name, artifact_location=artifact_location(uri, root))
        except Exception as err:  # lost a race on table or experiment creation: look again
            error = err
            time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"could not create or find MLflow experiment {name!r} at {uri}: {error}")


# --- which process runs a run; closing runs whose process died -----------------------------------


def process_tags() -> dict[str, str]:
    """Tags naming this process (host, boot, pid and its start time): a later run can tell
    whether the process that holds a RUNNING run is still alive (close_dead_runs). Inside a
    Slurm job also the job's id and how often it was requeued (`inpaintlab.slurm_job_id`,
    `.slurm_restart_count`): which job trained the run, or resumed it."""
    tags = {PROCESS_TAG.format(k): v for k, v in process_identity().items()}
    job = job_id_in_env()
    if job is not None:
        tags[PROCESS_TAG.format("slurm_job_id")] = job
        tags[PROCESS_TAG.format("slurm_restart_count")] = os.environ.get("SLURM_RESTART_COUNT", "0")
    return tags


def close_dead_runs(uri: str, experiment_id: str) -> list[str]:
    """Mark KILLED every RUNNING run of the experiment whose process (by its process tags, on
    this host) is gone: killed with SIGKILL, out of memory, a machine that rebooted. Runs of
    other hosts and runs without the tags are left alone. Returns the ids it closed."""
    import socket

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    host = socket.gethostname().replace("'", "")
    closed: list[str] = []
    try:
        found = client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`inpaintlab.host` = '{host}'",
            max_results=1000,
        )
    except Exception as err:  # a store that cannot answer: not worth failing the training for
        log.warning("could not look for dead MLflow runs in %s: %s", uri, err)
        return closed
    for run in found:
        tags = run.data.tags
        identity = {
            k: tags.get(PROCESS_TAG.format(k), "") for k in ("host", "boot", "pid", "pid_start")
        }
        if identity_alive(identity) is not False:
            continue
        try:
            client.set_tag(
                run.info.run_id,
                "inpaintlab.closed",
                f"KILLED by pid {os.getpid()}: its process {identity['pid']} on {identity['host']} was gone",
            )
            client.set_terminated(run.info.run_id, status="KILLED")
        except Exception as err:
            log.warning("could not mark dead MLflow run %s KILLED: %s", run.info.run_id, err)
            continue
        closed.append(run.info.run_id)
        log.info(
            "MLflow run %s (%s) was RUNNING but its process %s is gone: marked KILLED",
            run.info.run_id,
            run.info.run_name,
            identity["pid"],
        )
    return closed


def terminate(uri: str, run_id: str, status: str) -> None:
    """End a run (FINISHED, FAILED, KILLED); a failure here only warns."""
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).set_terminated(run_id, status=status)
    except Exception as err:
        log.warning("could not mark MLflow run %s %s: %s", run_id, status, err)


def reopen_run(uri: str, run_id: str, tags: Mapping[str, str]) -> bool:
    """Continue an earlier run (resume): this process's tags, then status RUNNING. False when
    the run is not in this store (deleted, another tracking URI)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return False
    if run.info.lifecycle_stage == "deleted":
        return False
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    client.update_run(run_id, status="RUNNING")
    return True
