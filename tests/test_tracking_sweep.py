"""tracking.sweep without training: SweepCallback creates the sweep's parent run and the sweep
file its jobs read (sweep_parent), and ends the parent with the jobs' summary."""

from __future__ import annotations

import json

from conftest import ROOT
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from inpaintlab import tracking


def test_callback_writes_the_sweep_file_jobs_read_and_finishes_the_parent(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir = tmp_path / "sweep"
    overrides = ["experiment=ci", "seed=2", f"logger.tracking_uri={uri}"]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        config = compose(
            "config",
            overrides=[*overrides, f"hydra.sweep.dir={sweep_dir}"],
            return_hydra_config=True,
        )
    callback = tracking.SweepCallback()
    callback.on_multirun_start(config)
    try:
        text = (sweep_dir / tracking.SWEEP_FILE).read_text()
        assert text.endswith("}\n")  # files.atomic_write_json's trailing newline
        assert sorted(p.name for p in sweep_dir.iterdir()) == [tracking.SWEEP_FILE]  # no temp
        info = tracking.JobInfo(multirun=True, sweep_dir=sweep_dir, overrides=["seed=2"])
        parent = tracking.sweep_parent(info)
        assert parent == callback.parent
        assert parent.tracking_uri == uri and json.loads(text)["overrides"] == overrides
        client = MlflowClient(tracking_uri=uri)
        assert client.get_run(parent.run_id).info.status == "RUNNING"
        assert client.get_run(parent.run_id).data.tags["sweep"] == parent.sweep_id
    finally:
        callback.on_multirun_end(config)
    assert client.get_run(parent.run_id).info.status == "FINISHED"
    assert client.get_run(parent.run_id).data.metrics["jobs"] == 0
