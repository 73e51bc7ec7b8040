"""evaluate's full-size section: the exported model through the inference code `predict` runs,
against every classical method on the same full-size images and masks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.serve import tiny_onnx

from inpaintlab.baselines import classical_inpaint
from inpaintlab.data.masks import EVAL_FAMILIES, make_masks
from inpaintlab.full_size import evaluate_full_size, sample_columns
from inpaintlab.inference import inpaint, load_model
from inpaintlab.prepare import write_prepared_image
from inpaintlab.visualize import sample_grid

FAMILIES = ["box", "outpaint"]
BASELINES = ["telea", "ns"]


@pytest.fixture
def prepared(tmp_path):
    """data/prepared with 3 full-size test images at 96 px (and none at 128)."""
    out = tmp_path / "prepared"
    (out / "test_96").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:96, 0:96]
    for i in range(3):
        image = np.stack([ys * 2, xs * 2, (ys + xs) % 256], -1).astype(np.uint8)
        image = np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)
        write_prepared_image(out / "test_96", f"photo{i}.png", image)
    masks = {f: make_masks(EVAL_FAMILIES[f], 3, 96, 96, 1234).astype(np.uint8) for f in FAMILIES}
    np.savez_compressed(out / "masks_test_96.npz", **masks)
    return out


def test_section_compares_predicts_output_with_the_best_classical_method(prepared, tmp_path):
    model = load_model(tiny_onnx(tmp_path / "model.onnx"))
    sections, largest = evaluate_full_size(model, prepared, [96, 128], FAMILIES, BASELINES, 2)
    assert list(sections) == ["96"]  # no 128 px images: that size is skipped, not an error
    section = sections["96"]
    assert section["n"] == 2  # max_images: the same first 2 images for every method
    for family in FAMILIES:
        scores = {b: section["baselines"][b][family]["psnr_masked"] for b in BASELINES}
        best = max(scores, key=scores.get)
        assert section["best_baseline"][family] == best
        model_psnr = section["model"][family]["psnr_masked"]
        assert section["margin"][family] == pytest.approx(model_psnr - scores[best], abs=1e-3)
        assert section["model"][family]["ms"] > 0 and section["baselines"]["ns"][family]["ms"] > 0
    images, masks, outputs, _ = largest
    for family in FAMILIES:
        for i in range(2):
            # the model's output is exactly what `predict`'s inference code gives
            expected = inpaint(images[i], masks[family][i], model.run, model.image_size)
            assert np.array_equal(outputs["model"][family][i], expected)
            telea = classical_inpaint(images[i], masks[family][i], "telea")
            assert np.array_equal(outputs["telea"][family][i], telea)


def test_sample_grid_has_the_four_labelled_columns_at_full_size(prepared, tmp_path):
    model = load_model(tiny_onnx(tmp_path / "model.onnx"))
    sections, (images, masks, outputs, section) = evaluate_full_size(
        model, prepared, [96], FAMILIES, BASELINES, 3
    )
    columns, labels, rows = sample_columns(images, masks, outputs, section["best_baseline"])
    assert labels == ["input, hole in white", "model (predict)", "best classical", "ground truth"]
    assert len(rows) == len(FAMILIES) and all("best classical" in r for r in rows)
    grid = sample_grid(columns, labels=labels, row_labels=rows)
    # 96-px tiles are enlarged 2x (>= 192 px each), 4 columns, a header row for the labels
    assert grid.shape[1] >= 4 * 192 and grid.shape[0] >= len(FAMILIES) * 192 + 20
    header = grid[:20]
    assert (header < 128).any()  # the labels are drawn (dark text on white)
