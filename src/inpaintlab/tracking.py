"""MLflow plumbing: one place decides the tracking URI, the experiment, the run's name and tags,
and how the jobs of a Hydra sweep are grouped (a parent run per sweep, see SweepCallback)."""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from inpaintlab.utils import available_cpus, identity_alive, process_identity

log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
SWEEP_FILE = "mlflow_sweep.json"  # in the sweep dir: how jobs find their parent run
ENV_PARENT_RUN = "INPAINTLAB_SWEEP_PARENT_RUN_ID"
ENV_SWEEP_ID = "INPAINTLAB_SWEEP_ID"
DVC_TEMP_WORKSPACE = (".dvc", "tmp", "exps")
MAX_NAME = 250  # MLflow's run-name limit
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


def git_commit(root: str | Path = ".") -> str:
    """Current commit (with -dirty), or 'unknown' outside git."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_version(root: str | Path = ".") -> str:
    """The md5 recorded in data.dvc: which data the run trained on."""
    path = Path(root) / "data.dvc"
    if not path.exists():
        return "untracked"
    for line in path.read_text().splitlines():
        if line.strip().startswith("- md5:") or line.strip().startswith("md5:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


# --- which process runs a run; closing runs whose process died -----------------------------------


def process_tags() -> dict[str, str]:
    """Tags naming this process (host, boot, pid and its start time): a later run can tell
    whether the process that holds a RUNNING run is still alive (close_dead_runs). Inside a
    Slurm job also the job's id and how often it was requeued (`inpaintlab.slurm_job_id`,
    `.slurm_restart_count`): which job trained the run, or resumed it."""
    tags = {PROCESS_TAG.format(k): v for k, v in process_identity().items()}
    env = os.environ
    if env.get("SLURM_JOB_ID"):
        array_job, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        job = f"{array_job}_{task}" if array_job and task else env["SLURM_JOB_ID"]
        tags[PROCESS_TAG.format("slurm_job_id")] = job
        tags[PROCESS_TAG.format("slurm_restart_count")] = env.get("SLURM_RESTART_COUNT", "0")
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


# --- Hydra job context ---------------------------------------------------------------------------


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


# --- run names and tags ---------------------------------------------------------------------------


def _short(override: str) -> str:
    """`optim.lr=0.0022694720080878735` -> `optim.lr=0.002269` (Optuna's floats are long)."""
    key, sep, value = override.partition("=")
    try:
        if sep and len(value) > 7 and not value.lstrip("-").isdigit():
            return f"{key}={float(value):.4g}"
    except ValueError:
        pass
    return override


def _parse(overrides: list[str]) -> list[tuple[str, bool]] | None:
    """[(key, is a sweep: a,b / range() / interval() ...)], None when Hydra cannot parse them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None
    return [(o.key_or_group, o.is_sweep_override()) for o in parsed]


def varying_overrides(job_overrides: list[str], sweep_overrides: list[str]) -> list[str]:
    """The job's overrides that set it apart from the other jobs: keys the sweep varies on the
    command line, or that the sweeper added (hydra.sweeper.params, Optuna's trials).
    Compared by key: the basic sweeper rewrites values (`false` -> `False`)."""
    job, sweep = _parse(job_overrides), _parse(sweep_overrides)
    if job is None or sweep is None:
        common = set(sweep_overrides)
        return [o for o in job_overrides if o not in common]
    swept = dict(sweep)
    return [o for o, (key, _) in zip(job_overrides, job, strict=True) if swept.get(key, True)]


def mask_name(cfg: DictConfig, choices: Mapping[str, str]) -> str:
    """The mask option (conf/mask/<name>.yaml); from the sampler class when composed without
    Hydra's defaults (DVC runs on params.yaml, which has no choices)."""
    return choices.get("mask") or _sampler_name(cfg.mask)


def _sampler_name(node: Any) -> str:
    """box / irregular / outpaint for a single kind of sampler (through wrappers and mixes of one
    kind), mixed for a mix of kinds."""
    if "generator" in node:  # a wrapper such as AreaLimit
        return _sampler_name(node.generator)
    if "generators" in node:
        kinds = {_sampler_name(g) for g in node.generators.values()}
        return kinds.pop() if len(kinds) == 1 else "mixed"
    cls = str(node.get("_target_", "unknown")).rsplit(".", 1)[-1]
    return {"StrokeMask": "irregular"}.get(cls, cls.removesuffix("Mask").lower())


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


def run_name(cfg: DictConfig, info: JobInfo, parent: SweepParent | None = None) -> str:
    """`<model>-<size>px-s<seed>` (or logger.run_name), then what this run changed: in a sweep the
    overrides that vary between jobs, in a single run its command-line overrides, in a DVC
    experiment the experiment's name."""
    base = cfg.logger.run_name or f"{cfg.model.name}-{cfg.data.image_size}px-s{cfg.seed}"
    extra = varying_overrides(info.overrides, parent.overrides if parent else [])
    parts = [base, *(_short(o) for o in extra)]
    if os.environ.get("DVC_EXP_NAME"):
        parts.append(f"[{os.environ['DVC_EXP_NAME']}]")
    return " ".join(parts)[:MAX_NAME]


def run_tags(
    cfg: DictConfig,
    info: JobInfo,
    parent: SweepParent | None = None,
    experiment_id: str | None = None,
) -> dict[str, str]:
    """Tags to filter and group by in the UI: model, mask, seed, code and data versions, the
    overrides, and for a sweep job its sweep id and parent run (MLflow nests it under that run)."""
    tags = {
        "model": str(cfg.model.name),
        "mask": mask_name(cfg, info.choices),
        "seed": str(cfg.seed),
        "image_size": str(cfg.data.image_size),
        "git_commit": git_commit(),
        "data_version": data_version(),
    }
    for group in ("experiment", "hparams_search"):
        if info.choices.get(group):
            tags[group] = info.choices[group]
    if info.overrides:
        tags["overrides"] = " ".join(info.overrides)
    if info.multirun:
        tags["sweep"] = (
            parent.sweep_id
            if parent and parent.sweep_id
            else (info.sweep_dir.name if info.sweep_dir else "unknown")
        )
        if info.job_num is not None:
            tags["sweep_job"] = str(info.job_num)
        if parent and (not parent.experiment_id or parent.experiment_id == experiment_id):
            tags["mlflow.parentRunId"] = parent.run_id
    for env, tag in (("DVC_EXP_NAME", "dvc_exp"), ("DVC_EXP_BASELINE_REV", "dvc_baseline_rev")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


# --- Hydra callback: one parent run per sweep ---------------------------------------------------


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
        sweep_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "parent_run_id": self.parent.run_id,
            "sweep_id": sweep_id,
            "tracking_uri": uri,
            "experiment_id": experiment_id,
            "overrides": overrides,
        }
        tmp = sweep_dir / f".{SWEEP_FILE}.tmp"
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(sweep_dir / SWEEP_FILE)
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
