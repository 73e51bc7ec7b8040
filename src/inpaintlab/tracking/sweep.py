"""One MLflow parent run per Hydra sweep (the `hydra.callbacks.mlflow_sweep` callback), and how a
sweep's jobs find it: the jobs of a multirun then appear nested under one run in the UI, with the
best job named on the parent."""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from inpaintlab.files import atomic_write_json
from inpaintlab.tracking.jobs import JobInfo, parallel_jobs, threads_per_job
from inpaintlab.tracking.naming import MAX_NAME
from inpaintlab.tracking.store import ensure_experiment, process_tags, tracking_uri
from inpaintlab.tracking.versions import data_version, git_commit

log = logging.getLogger(__name__)

SWEEP_FILE = "mlflow_sweep.json"  # in the sweep dir: how jobs find their parent run
ENV_PARENT_RUN = "INPAINTLAB_SWEEP_PARENT_RUN_ID"
ENV_SWEEP_ID = "INPAINTLAB_SWEEP_ID"


@dataclass(frozen=True)
class SweepParent:
    run_id: str
    sweep_id: str
    tracking_uri: str
    experiment_id: str
    overrides: list[str]


def sweep_parent(info: JobInfo) -> SweepParent | None:
    """The parent run SweepCallback created for this sweep: from the sweep dir (works for every
    launcher, also loky worker processes), else from the environment."""
    if not info.multirun:
        return None
    if info.sweep_dir is not None and (info.sweep_dir / SWEEP_FILE).is_file():
        data = json.loads((info.sweep_dir / SWEEP_FILE).read_text())
        return SweepParent(
            data["parent_run_id"],
            data["sweep_id"],
            data["tracking_uri"],
            data["experiment_id"],
            data.get("overrides", []),
        )
    if os.environ.get(ENV_PARENT_RUN):
        return SweepParent(os.environ[ENV_PARENT_RUN], os.environ.get(ENV_SWEEP_ID, ""), "", "", [])
    return None


class SweepCallback(Callback):
    """Groups a multirun's jobs under one MLflow parent run (children get `mlflow.parentRunId`
    and a `sweep` tag), created before any job starts.

    Creating the store and experiment here, once, avoids parallel jobs racing on a fresh SQLite
    file. The parent's id goes to the jobs through a file in the sweep dir (every launcher can read
    it, loky workers included) and the environment. For joblib sweeps it also caps
    OMP_NUM_THREADS before the workers are spawned, so n_jobs x threads fits the cores.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.parent: SweepParent | None = None
        self._closed = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient
        from omegaconf import OmegaConf

        launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
        if parallel_jobs(launcher) > 1:
            threads = threads_per_job(launcher)
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = str(threads)
            log.info(
                "joblib sweep: %d parallel jobs x %d threads", parallel_jobs(launcher), threads
            )
        if not self.enabled or "logger" not in config:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        sweep_id = f"{sweep_dir.name}-{secrets.token_hex(2)}"
        overrides = list(config.hydra.overrides.task)
        uri = tracking_uri(config.logger.get("tracking_uri"))
        experiment_id = ensure_experiment(config.logger.experiment_name, uri)
        choices = OmegaConf.to_container(config.hydra.runtime.choices)
        tags = {
            "sweep": sweep_id,
            "sweep_dir": str(sweep_dir),
            "sweeper": str(choices.get("hydra/sweeper")),
            "launcher": str(choices.get("hydra/launcher")),
            "overrides": " ".join(overrides),
            "git_commit": git_commit(),
            "data_version": data_version(),
            "model": str(config.model.name),
        } | process_tags()
        client = MlflowClient(tracking_uri=uri)
        run = client.create_run(
            experiment_id, run_name=f"sweep {' '.join(overrides)}"[:MAX_NAME], tags=tags
        )
        self.parent = SweepParent(run.info.run_id, sweep_id, uri, experiment_id, overrides)
        atomic_write_json(
            sweep_dir / SWEEP_FILE,
            {
                "parent_run_id": self.parent.run_id,
                "sweep_id": sweep_id,
                "tracking_uri": uri,
                "experiment_id": experiment_id,
                "overrides": overrides,
            },
        )
        os.environ[ENV_PARENT_RUN], os.environ[ENV_SWEEP_ID] = self.parent.run_id, sweep_id
        atexit.register(self._close, "FAILED")  # a failed job ends Hydra with sys.exit(1)
        log.info("MLflow sweep %s: parent run %s in %s", sweep_id, self.parent.run_id, uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close("FINISHED")

    def _close(self, status: str) -> None:
        """Summarise the children on the parent (best val_psnr and which run) and end it."""
        if self.parent is None or self._closed:
            return
        self._closed = True
        from mlflow.tracking import MlflowClient

        run_id = self.parent.run_id
        try:
            client = MlflowClient(tracking_uri=self.parent.tracking_uri)
            children = client.search_runs(
                [self.parent.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'"
            )
            client.log_metric(run_id, "jobs", len(children))
            scored = [r for r in children if "best_val_psnr" in r.data.metrics]
            if scored:
                best = max(scored, key=lambda r: r.data.metrics["best_val_psnr"])
                client.log_metric(run_id, "best_val_psnr", best.data.metrics["best_val_psnr"])
                client.set_tag(run_id, "best_run_id", best.info.run_id)
                client.set_tag(run_id, "best_run_name", best.info.run_name)
            client.set_terminated(run_id, status=status)
        except Exception as err:  # the jobs' own runs are what matters; do not fail the sweep here
            log.warning("could not finish MLflow parent run %s: %s", run_id, err)
        for var in (ENV_PARENT_RUN, ENV_SWEEP_ID):
            os.environ.pop(var, None)
