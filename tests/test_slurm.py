"""Sweeps on a Slurm cluster, and preemption, against a real single-node Slurm (tests/helpers/slurm.py):
`python -m inpaintlab.train -m hydra/launcher=slurm experiment=ci seed=1,2` runs each job as a
Slurm job and each job is an MLflow child run of the sweep's parent run; a job requeued during its
training (`scontrol requeue`, SIGUSR1, submitit's SIGUSR2) resumes from its last checkpoint into
the same MLflow run and ends with every epoch logged once.

The cluster tests are slow. They skip without Slurm's and munge's daemons or root, unless
INPAINTLAB_REQUIRE_SLURM=1 (what `.ci/run` sets, after installing them), where that is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import ROOT, ci_project, clean_env, run_ok
from helpers import slurm
from helpers.sweeps import check_sweep, sweep_runs
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from inpaintlab.slurm import requeue_on_signal

SWEEP_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def cluster() -> Iterator[slurm.SlurmCluster]:
    if reason := slurm.missing():
        if os.environ.get("INPAINTLAB_REQUIRE_SLURM") == "1":
            pytest.fail(f"INPAINTLAB_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    with slurm.slurm_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A project copy with 40 tiny images prepared at experiment=ci."""
    project = ci_project(tmp_path_factory.mktemp("slurm") / "project")
    run_ok([sys.executable, "-m", "inpaintlab.prepare", "experiment=ci"], project, env())
    return project


def env(cluster: slurm.SlurmCluster | None = None) -> dict[str, str]:
    """The test's venv, no inherited MLflow settings, one torch thread per job (the machine is
    shared), the cluster's SLURM_CONF; sbatch passes all of it on to the jobs."""
    base = {k: v for k, v in clean_env().items() if not k.startswith(("OMP_", "MKL_"))}
    return base | {"OMP_NUM_THREADS": "1"} | (cluster.env if cluster else {})


def train_sweep(*overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "inpaintlab.train",
        "-m",
        "hydra/launcher=slurm",
        "experiment=ci",
        *overrides,
        "trainer.enable_progress_bar=false",
    ]


def job_logs(sweep_dir: Path) -> str:
    """Every job's stdout and stderr (submitit's files, appended to by each run of a job)."""
    files = sorted(sweep_dir.glob("**/.submitit/*/*_log.*"))
    return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-4000:]}" for f in files)


def finish(process: subprocess.Popen, log: Path, cluster: slurm.SlurmCluster, sweep_dir: Path):
    """Wait for the sweep command; on a time-out stop its process group. Fail with the logs."""
    try:
        process.wait(timeout=SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0, (
        f"sweep exited with {process.returncode}:\n{log.read_text()[-3000:]}\n"
        f"{job_logs(sweep_dir)}\n{cluster.logs()}"
    )


def start(cmd: list[str], cwd: Path, cluster: slurm.SlurmCluster, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env(cluster), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


@pytest.mark.slow
def test_sweep_jobs_run_as_slurm_jobs_under_one_mlflow_parent(cluster, prepared, tmp_path):
    log = tmp_path / "sweep.log"
    earlier = set(cluster.jobs())
    process = start(train_sweep("seed=1,2"), prepared, cluster, log)
    finish(process, log, cluster, prepared / "logs/hydra/multirun")
    # the default store (sqlite:///<project>/mlflow.db, absolute) is the jobs' store too
    parent, children = check_sweep(f"sqlite:///{prepared / 'mlflow.db'}", [1, 2])
    assert parent.data.tags["launcher"] == "slurm"
    sweep_dir = Path(parent.data.tags["sweep_dir"])
    jobs = {c.data.tags["sweep_job"]: c.data.tags["inpaintlab.slurm_job_id"] for c in children}
    (array,) = {job.split("_")[0] for job in jobs.values()}  # one job array, a task per job
    assert jobs == {"0": f"{array}_0", "1": f"{array}_1"}
    for number, job in jobs.items():  # each job's own sbatch logs: it trained and published there
        out = (sweep_dir / ".submitit" / job / f"{job}_0_log.out").read_text()
        assert f"published {sweep_dir / number / 'models/model.ckpt'}" in out
    # submitit hands the result over before the job's process exits: Slurm's word comes after
    assert cluster.wait_ended(set(cluster.jobs()) - earlier) == dict.fromkeys(
        jobs.values(), "COMPLETED"
    )


def run_state(sweep_dir: Path) -> dict:
    """run.json of the sweep's one job (logs/train/runs/<key>/ in its job dir), {} before it exists."""
    found = list((sweep_dir / "0/logs/train/runs").glob("*/run.json"))
    assert len(found) <= 1, found  # a resumed job continues its run: never a second folder
    try:
        return json.loads(found[0].read_text()) if found else {}
    except ValueError:
        return {}


def wait_until(what: str, check: Callable[[], bool], process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"sweep ended while waiting for {what}:\n{log.read_text()}"
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def trained_an_epoch(sweep_dir: Path, previous_pid: str | None) -> Callable[[], bool]:
    """True once a process other than previous_pid has trained an epoch of the run itself (so
    its signal handlers are in place): its run.json names it, with more epochs than it began at."""
    began: list[int] = []

    def check() -> bool:
        state = run_state(sweep_dir)
        if state.get("status") != "running" or state["process"]["pid"] == previous_pid:
            return False
        began[:] = began or [state["epochs_done"]]
        return state["epochs_done"] > began[0]

    return check


@pytest.mark.slow
def test_a_requeued_job_resumes_from_its_last_checkpoint_in_the_same_mlflow_run(
    cluster, prepared, tmp_path
):
    epochs = 8
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir = tmp_path / "sweep"
    log = tmp_path / "sweep.log"
    cmd = train_sweep(
        "seed=5", f"trainer.max_epochs={epochs}", f"logger.tracking_uri={uri}",
        f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    earlier = set(cluster.jobs())
    process = start(cmd, prepared, cluster, log)
    try:
        wait_until("the Slurm job", lambda: bool(set(cluster.jobs()) - earlier), process, log)
        (job,) = set(cluster.jobs()) - earlier
        # The three ways a running training gets requeued, one after the other, each once the
        # job's new process has trained an epoch: scontrol requeue (as a preemption with
        # PreemptMode=REQUEUE: SIGTERM), SIGUSR1 (Slurm's warning before the time limit;
        # inpaintlab.slurm requeues), SIGUSR2 (submitit's own preemption signal; it requeues).
        preemptions = [
            cluster.requeue,
            lambda job: cluster.signal(job, "USR1"),
            lambda job: cluster.signal(job, "USR2"),
        ]
        pid = None
        for preempt in preemptions:
            wait_until("an epoch of a new process", trained_an_epoch(sweep_dir, pid), process, log)
            pid = run_state(sweep_dir)["process"]["pid"]
            preempt(job)
            cluster.start_now(job)
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        raise
    finish(process, log, cluster, sweep_dir)

    out = (sweep_dir / ".submitit" / job / f"{job}_0_log.out").read_text()
    err = (sweep_dir / ".submitit" / job / f"{job}_0_log.err").read_text()
    assert out.count("resuming from epoch") == 3, out
    assert err.count("training interrupted by SIGTERM") >= 2, err  # USR2: submitit exits itself
    assert f"SIGUSR1: requeueing Slurm job {job}" in out + err
    assert "Caught signal SIGUSR2" in out + err
    # Lightning's own SIGUSR1 handler would have left a mid-epoch hpc_ckpt_<n>.ckpt in the project
    assert not list(prepared.rglob("hpc_ckpt_*")) and not list(tmp_path.rglob("hpc_ckpt_*"))

    parent, children = sweep_runs(uri)
    assert parent.info.status == "FINISHED" and len(children) == 1
    (child,) = children
    assert child.info.status == "FINISHED"
    assert child.data.tags["inpaintlab.slurm_job_id"] == job
    assert child.data.tags["inpaintlab.slurm_restart_count"] == "3"
    assert int(child.data.tags["inpaintlab.resumed_at_epoch"]) >= 3
    client = MlflowClient(tracking_uri=uri)
    for metric in ("train_loss", "val_psnr"):  # every epoch once, none lost or logged twice
        steps = [m.step for m in client.get_metric_history(child.info.run_id, metric)]
        assert sorted(steps) == list(range(epochs)), (metric, steps)
    state = run_state(sweep_dir)
    assert state["status"] == "published" and state["epochs_done"] == epochs
    summary = json.loads((sweep_dir / "0/metrics/train.json").read_text())
    assert summary["epochs"] == epochs
    checkpoint = torch.load(
        sweep_dir / "0/models/model.ckpt", map_location="cpu", weights_only=True
    )
    assert checkpoint["inpaintlab"]["mlflow_run_id"] == child.info.run_id


# --- fast: the configs and the signal handler outside a cluster ------------------------------------


def test_the_slurm_launcher_takes_its_resources_from_config():
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.timeout_min) == (2, 4, 60)
    assert launcher.partition == "gpu"


def test_the_requeue_handler_is_installed_only_inside_a_slurm_job(monkeypatch):
    before = signal.getsignal(signal.SIGUSR1)
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        monkeypatch.delenv(var)
    with requeue_on_signal():
        assert signal.getsignal(signal.SIGUSR1) is before  # outside Slurm: Lightning's default
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    with requeue_on_signal():
        assert signal.getsignal(signal.SIGUSR1) is not before
    assert signal.getsignal(signal.SIGUSR1) is before
