"""What a finished sweep must leave in an MLflow store: one parent run, one child per job with its
outputs in its job dir (test_sweeps.py, test_slurm.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from inpaintlab import tracking


def sweep_runs(uri: str) -> tuple[object, list]:
    """(parent run, child runs) of the single sweep in the store at uri."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("inpaintlab")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], children


def check_sweep(uri: str, seeds: list[int]) -> tuple[object, list]:
    """What a sweep over seeds must leave: one finished parent, one finished child per seed with
    its own name, seed param and job dir outputs, all sharing the parent's sweep tag."""
    parent, children = sweep_runs(uri)
    assert parent.info.status == "FINISHED"
    assert len(children) == len(seeds)
    assert sorted(int(r.data.params["seed"]) for r in children) == seeds
    assert len({r.info.run_name for r in children}) == len(seeds)
    sweep_dir = Path(parent.data.tags["sweep_dir"])
    for child in children:
        assert child.info.status == "FINISHED"
        seed = child.data.params["seed"]
        assert child.info.run_name == f"unet-32px-s{seed} seed={seed}"
        assert child.data.tags["sweep"] == parent.data.tags["sweep"]
        assert child.data.tags["seed"] == seed and child.data.tags["mask"] == "mixed"
        assert child.data.tags["experiment"] == "ci"
        assert f"seed={seed}" in child.data.tags["overrides"]
        job_dir = sweep_dir / child.data.tags["sweep_job"]
        checkpoint = torch.load(
            job_dir / "models/model.ckpt", map_location="cpu", weights_only=True
        )
        assert checkpoint["inpaintlab"]["mlflow_run_id"] == child.info.run_id
        summary = json.loads((job_dir / "metrics/train.json").read_text())
        assert summary["best_val_psnr"] == pytest.approx(child.data.metrics["best_val_psnr"])
        assert (job_dir / "plots/train_history.csv").is_file()
    assert parent.data.metrics["jobs"] == len(seeds)
    assert parent.data.metrics["best_val_psnr"] == max(
        r.data.metrics["best_val_psnr"] for r in children
    )
    assert (
        json.loads((sweep_dir / tracking.SWEEP_FILE).read_text())["parent_run_id"]
        == parent.info.run_id
    )
    return parent, children
