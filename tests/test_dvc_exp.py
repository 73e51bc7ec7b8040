"""DVC experiments: `dvc exp run -S ...` composes conf/ (Hydra), runs the pipeline and records
metrics for `dvc exp show`; queued experiments, which run in a temp copy under .dvc/tmp/exps/,
log into the project's own MLflow store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import BIN, ci_project, clean_env, run_ok
from mlflow.tracking import MlflowClient

from inpaintlab import tracking


def run(cmd: list[str], cwd: Path) -> str:
    return run_ok(cmd, cwd, clean_env(OMP_NUM_THREADS="1"))


def test_store_of_a_dvc_temp_workspace_is_the_parent_projects(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    temp = tmp_path / "project" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    temp.mkdir(parents=True)
    assert tracking.project_root(temp) == tmp_path / "project"  # path of DVC's temp copy
    assert tracking.project_root(tmp_path) == tmp_path
    monkeypatch.chdir(temp)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'project' / 'mlflow.db'}"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "elsewhere"))  # DVC sets it for every stage
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
    assert (
        tracking.artifact_location(tracking.tracking_uri())
        == (tmp_path / "elsewhere" / "mlartifacts").as_uri()
    )
    assert tracking.tracking_uri("http://mlflow:5000") == "http://mlflow:5000"


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> Path:
    """A project copy with tiny data tracked by DVC, committed (dvc exp needs a commit)."""
    project = ci_project(
        tmp_path_factory.mktemp("dvcexp") / "project", clean_env(OMP_NUM_THREADS="1")
    )
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline"], project)
    return project


def experiments(project: Path) -> dict[str, dict]:
    """{experiment name: its data} from `dvc exp show --json`."""
    rows = json.loads(run([str(BIN / "dvc"), "exp", "show", "--json"], project))
    return {
        rev["name"]: rev["data"]
        for row in rows
        for exp in row.get("experiments") or []
        for rev in exp["revs"]
        if rev.get("name")
    }


def mlflow_run(project: Path, exp_name: str):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("inpaintlab")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.dvc_exp = '{exp_name}'"
    )
    assert len(runs) == 1, exp_name
    return runs[0]


def test_exp_run_composes_conf_and_exp_show_lists_its_metrics(committed):
    out = run([str(BIN / "dvc"), "exp", "run", "-S", "experiment=ci", "-S", "seed=7"], committed)
    name = re.search(r"Ran experiment\(s\): (\S+)", out).group(1)
    data = experiments(committed)[name]
    assert data["params"]["params.yaml"]["data"]["seed"] == 7
    assert (
        data["params"]["params.yaml"]["data"]["data"]["image_size"] == 32
    )  # experiment=ci composed
    model = data["metrics"]["metrics/eval.json"]["data"]["model"]
    assert model["all"]["psnr_masked"] > 0 and model["all"]["n"] > 0
    assert data["metrics"]["metrics/train.json"]["data"]["epochs"] == 2
    tracked = mlflow_run(committed, name)
    assert tracked.info.run_name == f"unet-32px-s7 [{name}]"
    assert tracked.data.params["seed"] == "7" and "test_all_psnr_masked" in tracked.data.metrics


@pytest.mark.slow  # ~30 s more on 2 cores: the whole pipeline again, in DVC's temp copy
def test_queued_experiment_logs_into_the_projects_mlflow_store(committed):
    run(
        [
            str(BIN / "dvc"),
            "exp",
            "run",
            "--queue",
            "-n",
            "queued-s8",
            "-S",
            "experiment=ci",
            "-S",
            "seed=8",
        ],
        committed,
    )
    run([str(BIN / "dvc"), "exp", "run", "--run-all"], committed)
    data = experiments(committed)["queued-s8"]
    assert data["metrics"]["metrics/eval.json"]["data"]["model"]["all"]["n"] > 0
    tracked = mlflow_run(committed, "queued-s8")  # ran in .dvc/tmp/exps/..., logged here
    assert tracked.data.params["seed"] == "8"
    assert "test_all_psnr_masked" in tracked.data.metrics  # evaluate found the same run
    assert tracked.info.artifact_uri.startswith((committed / "mlartifacts").as_uri())
