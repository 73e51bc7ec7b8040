"""evaluate stage: the model against the classical methods on the same held-out images and masks,
at two places:

- at the training size (the checkpoint, batched: the numbers training is tuned on), and
- at full size, 256 and 512 px (`full_size`): the exported model through `predict`'s inference
  code, which is what users get (src/inpaintlab/full_size.py).

Writes metrics/eval.json (schema in docs/DESIGN.md), reports/samples.png (full-size examples with
labelled columns when there are full-size images), and logs the test metrics and files into the
training's MLflow run.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

import cv2
import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from inpaintlab import tracking
from inpaintlab.baselines import classical_inpaint_many
from inpaintlab.checkpoints import load_generator
from inpaintlab.data.datamodule import read_rgb, split_files, to_tensor
from inpaintlab.data.full_size_sets import as_tensor, has_full_size_set
from inpaintlab.data.masks import area_bin, mask_area
from inpaintlab.errors import UserError, stage
from inpaintlab.files import atomic_write_bytes, atomic_write_json
from inpaintlab.full_size import evaluate_full_size, sample_columns
from inpaintlab.inference import load_model
from inpaintlab.metrics import METRIC_NAMES, image_metrics, summarize
from inpaintlab.processes import available_cpus
from inpaintlab.visualize import masked_view, sample_grid, to_uint8

log = logging.getLogger(__name__)


def load_test_set(prepared_dir: Path) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    images = torch.stack([to_tensor(read_rgb(f)) for f in split_files(prepared_dir, "test")])
    masks_file = prepared_dir / "masks_test.npz"
    if not masks_file.exists():
        raise UserError(f"{masks_file} is missing: re-run the prepare stage")
    with np.load(masks_file) as data:
        masks = {family: data[family] for family in data.files}
    return images, masks


@torch.no_grad()
def run_model(
    generator: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, batch_size: int
) -> torch.Tensor:
    outputs = [
        generator(images[i : i + batch_size], masks[i : i + batch_size])
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(outputs).clamp(0, 1)


def run_baseline(
    method: str, images: torch.Tensor, masks: torch.Tensor, radius: int
) -> tuple[torch.Tensor, float]:
    """A classical method on every image (in a process per CPU); (outputs, ms per image)."""
    filled, ms = classical_inpaint_many(
        list(to_uint8(images)), [m[0].numpy() for m in masks], method, radius, available_cpus()
    )
    return as_tensor(filled), ms


def evaluate(cfg: DictConfig, prepared_dir: Path) -> dict:
    checkpoint = Path(cfg.checkpoint)
    if not checkpoint.exists():
        raise UserError(f"{checkpoint} does not exist: run the train stage first")
    generator, info = load_generator(str(checkpoint))
    images, family_masks = load_test_set(prepared_dir)
    methods = ["model", *cfg.baselines]

    # per method -> group (family, area bin, all) -> metric -> per-image values
    values: dict[str, dict[str, dict[str, list[float]]]] = {
        m: defaultdict(lambda: defaultdict(list)) for m in methods
    }
    times: dict[str, dict[str, float]] = defaultdict(dict)  # method -> family -> s per image
    sample_rows: list[list[torch.Tensor]] = []
    for family, masks_np in tqdm(
        family_masks.items(), desc="evaluate", unit="family", disable=None
    ):
        masks = torch.from_numpy(masks_np.astype(np.float32))[:, None]
        bins = [f"area:{area_bin(mask_area(m))}" for m in masks_np]
        start = time.perf_counter()
        outputs = {"model": run_model(generator, images, masks, cfg.batch_size)}
        times["model"][family] = (time.perf_counter() - start) / len(images)
        for method in cfg.baselines:
            outputs[method], ms = run_baseline(method, images, masks, cfg.baseline_radius)
            times[method][family] = ms / 1000
        for method, output in outputs.items():
            per_image = image_metrics(output, images, masks)
            for name in METRIC_NAMES:
                for i, value in enumerate(per_image[name].tolist()):
                    for group in (family, bins[i], "all"):
                        values[method][group][name].append(value)
        k = cfg.samples_per_family
        sample_rows.append(
            [
                masked_view(images[:k], masks[:k]),
                outputs["model"][:k],
                *(outputs[b][:k] for b in cfg.baselines),
                images[:k],
            ]
        )

    def summarise(method: str) -> dict:
        """{family: M, ..., "all": M, "area_bins": {"0-10": M, ...}} (bins by masked area, %)."""
        groups = values[method]
        summary = {group: summarize(groups[group]) for group in [*family_masks, "all"]}
        for family, seconds in times[method].items():
            summary[family]["ms"] = round(1000 * seconds, 3)
        summary["all"]["ms"] = round(1000 * float(np.mean(list(times[method].values()))), 3)
        bins = sorted(
            (g for g in groups if g.startswith("area:")), key=lambda g: int(g[5:].split("-")[0])
        )
        summary["area_bins"] = {g[5:]: summarize(groups[g]) for g in bins}
        return summary

    result = {"model": summarise("model"), "baselines": {b: summarise(b) for b in cfg.baselines}}
    columns = [torch.cat(parts) for parts in zip(*sample_rows, strict=True)]
    labels = ["input, hole in white", "model", *cfg.baselines, "ground truth"]
    grid = sample_grid(columns, labels=labels)

    full = cfg.full_size
    sizes = [s for s in full.sizes if has_full_size_set(prepared_dir, s)]
    if sizes:
        try:
            model = load_model(Path(full.model))
        except UserError as err:  # missing or broken: ModelError keeps its exit code
            raise type(err)(f"{err} (the export stage writes it)") from None
        sections, largest = evaluate_full_size(
            model,
            prepared_dir,
            sizes,
            full.families,
            cfg.baselines,
            full.max_images,
            cfg.baseline_radius,
        )
        result["full_size"] = sections
        if largest is not None:
            images_full, masks_full, outputs_full, section = largest
            columns, labels, rows = sample_columns(
                images_full, masks_full, outputs_full, section["best_baseline"]
            )
            grid = sample_grid(columns, labels=labels, row_labels=rows)
    elif full.sizes:
        log.warning(
            "no full-size test images in %s (photos smaller than %s px)",
            prepared_dir,
            min(full.sizes),
        )
    return {"metrics": result, "grid": grid, "run_id": info.get("mlflow_run_id")}


def log_to_training_run(run_id: str | None, metrics: dict, files: list[Path], uri: str) -> None:
    """Test metrics as `test_<family>_<metric>` on the run that trained the model."""
    if not run_id:
        log.warning("checkpoint has no MLflow run id; test metrics not logged to MLflow")
        return
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        log.warning("MLflow run %s not found at %s; test metrics not logged there", run_id, uri)
        return
    model = metrics["model"]
    groups = {k: v for k, v in model.items() if k != "area_bins"}
    groups |= {f"area_{b}": v for b, v in model.get("area_bins", {}).items()}
    for group, summary in groups.items():
        for name in METRIC_NAMES:
            client.log_metric(run_id, f"test_{group}_{name}".replace("-", "_"), summary[name])
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path="evaluation")


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@stage
def main(cfg: DictConfig) -> None:
    result = evaluate(cfg.evaluate, Path(cfg.data.prepared_dir))
    metrics_path, samples_path = Path(cfg.evaluate.metrics_path), Path(cfg.evaluate.samples_path)
    atomic_write_json(metrics_path, result["metrics"])
    atomic_write_bytes(samples_path, cv2.imencode(".png", result["grid"][..., ::-1])[1].tobytes())
    log_to_training_run(
        result["run_id"],
        result["metrics"],
        [metrics_path, samples_path],
        tracking.tracking_uri(cfg.logger.tracking_uri),
    )
    from inpaintlab.report import format_table

    print(format_table(result["metrics"]))


if __name__ == "__main__":
    main()
