"""The model registry part of export: signature, input example, registration into the training run,
and the best-effort rule (a registry failure is a warning, never an error).

The end-to-end check (a `dvc repro` registers the pipeline's model under its training run) is
`test_export_registers_the_onnx_model_under_the_training_run` in test_pipeline.py, which reuses that
file's pipeline run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from inpaintlab import tracking
from inpaintlab.export import export_onnx, onnx_signature, register_onnx, registry_example


class Composite(torch.nn.Module):
    """A stand-in generator with the exported contract: fills the hole with grey, composited."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image * (1 - mask) + 0.5 * mask


@pytest.fixture
def onnx_path(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    example = (torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
    export_onnx(Composite(), path, example, opset=17, metadata={"model": "composite"})
    return path


def test_signature_is_the_exported_contract_with_dynamic_n_h_w():
    signature = onnx_signature()
    inputs = {s.name: s for s in signature.inputs.inputs}
    assert list(inputs) == ["image", "mask"]
    assert inputs["image"].shape == (-1, 3, -1, -1) and inputs["mask"].shape == (-1, 1, -1, -1)
    assert inputs["image"].type == np.dtype(np.float32)
    assert [(s.name, s.shape) for s in signature.outputs.inputs] == [("output", (-1, 3, -1, -1))]


def test_input_example_is_a_small_crop_with_a_hole():
    images = torch.rand(2, 3, 256, 256)
    masks = torch.zeros(2, 1, 256, 256)
    masks[..., :20, :] = 1  # an outpaint band: outside a centre crop
    example = registry_example(images, masks)
    assert example["image"].shape == (1, 3, 64, 64) and example["mask"].shape == (1, 1, 64, 64)
    assert example["image"].dtype == np.float32 and example["mask"].any()
    np.testing.assert_array_equal(example["image"], images[:1, :, 96:160, 96:160].numpy())
    small = registry_example(images[..., :32, :40], masks[..., :32, :40])  # smaller than the limit
    assert small["image"].shape == (1, 3, 32, 32)


def test_register_logs_into_the_training_run_and_the_version_predicts(
    tmp_path, onnx_path, monkeypatch
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = tracking.ensure_experiment("inpaintlab", uri, root=tmp_path)
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(experiment_id, run_name="train")
    client.set_terminated(run.info.run_id)
    ended = client.get_run(run.info.run_id).info.end_time
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    uri_before = mlflow.get_tracking_uri()
    example = {
        "image": np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32),
        "mask": np.zeros((1, 1, 16, 16), np.float32),
    }
    example["mask"][..., 4:12, 4:12] = 1

    version = register_onnx(
        onnx_path, run.info.run_id, uri, example, metadata={"model": "composite"}
    )

    assert version == "1"
    # the process's MLflow settings are as they were (set_tracking_uri also exports the variable)
    assert os.environ.get("MLFLOW_TRACKING_URI") == env_before
    assert mlflow.get_tracking_uri() == uri_before
    [found] = client.search_model_versions("name='inpaintlab'")
    assert found.run_id == run.info.run_id and str(found.version) == "1"
    after = client.get_run(run.info.run_id)  # linked, not reopened
    assert after.info.status == "FINISHED" and after.info.end_time == ended
    [output] = after.outputs.model_outputs  # the run lists the logged model among its outputs
    assert found.source == f"models:/{output.model_id}"
    logged = client.get_logged_model(output.model_id)
    assert logged.source_run_id == run.info.run_id and logged.experiment_id == experiment_id

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    model = mlflow.pyfunc.load_model("models:/inpaintlab/1")
    stored = model.input_example
    output = model.predict(stored)["output"]
    np.testing.assert_array_equal(stored["image"], example["image"])
    expected = example["image"] * (1 - example["mask"]) + 0.5 * example["mask"]
    np.testing.assert_allclose(output, expected, atol=1e-6)
    assert model.metadata.get_input_schema().input_names() == ["image", "mask"]


def test_a_registry_failure_is_a_warning_not_an_error(onnx_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    example = {
        "image": np.zeros((1, 3, 16, 16), np.float32),
        "mask": np.ones((1, 1, 16, 16), np.float32),
    }
    with caplog.at_level(logging.WARNING, logger="inpaintlab.export"):
        assert register_onnx(onnx_path, "0" * 32, "http://127.0.0.1:9", example) is None
        assert register_onnx(onnx_path, None, "http://127.0.0.1:9", example) is None
    assert "registering the model in MLflow (http://127.0.0.1:9) failed" in caplog.text
    assert "no MLflow run id" in caplog.text
    assert onnx_path.is_file()
