"""`inpaintlab predict` end to end with a real exported model (tiny, random weights) and real
onnxruntime / TorchScript: pixel guarantees, size strategies, folder mode, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaintlab.data.io import load_rgb, save_image
from inpaintlab.inference import Model, Runner, inpaint, load_model, outpaint
from inpaintlab.inference.regions import parse_extend, resolve_extend
from inpaintlab.inference.strategy import working_scale
from inpaintlab.predict import main

TRAIN_SIZE = 64
MAGENTA = np.array([255, 0, 255], dtype=np.uint8)  # the sigmoid head never generates exactly this


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny contract-conforming inpainter exported as model.onnx (image_size metadata), model.pt,
    and a second ONNX copy without metadata next to an export.json."""
    import onnx
    import torch
    from torch import nn

    class TinyInpainter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
            self.conv2 = nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            x = torch.cat([image * (1 - mask), mask], 1)
            h = nn.functional.interpolate(
                torch.relu(self.conv1(x)), scale_factor=2.0, mode="nearest"
            )
            y = torch.sigmoid(self.conv2(h))
            return image * (1 - mask) + y * mask

    torch.manual_seed(0)
    model = TinyInpainter().eval()
    folder = tmp_path_factory.mktemp("models")
    image, mask = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 16:40] = 1
    axes = {name: {0: "N", 2: "H", 3: "W"} for name in ("image", "mask", "output")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (image, mask),
            str(folder / "model.onnx"),
            input_names=["image", "mask"],
            output_names=["output"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        traced = torch.jit.trace(model, (image, mask))
    traced.save(str(folder / "model.pt"), _extra_files={"image_size.txt": str(TRAIN_SIZE)})
    plain = folder / "plain"
    plain.mkdir()
    shutil.copy(folder / "model.onnx", plain / "model.onnx")
    (plain / "export.json").write_text(json.dumps({"image_size": 32, "model": "tiny"}))
    proto = onnx.load(str(folder / "model.onnx"))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "image_size", str(TRAIN_SIZE)
    onnx.save(proto, str(folder / "model.onnx"))
    return {"onnx": folder / "model.onnx", "pt": folder / "model.pt", "plain": plain / "model.onnx"}


@pytest.fixture(scope="session")
def onnx_model(models: dict[str, Path]) -> Model:
    return load_model(models["onnx"])


class Recorder:
    """Wraps a real model runner and records the input shapes it was called with."""

    def __init__(self, run: Runner) -> None:
        self.run, self.shapes = run, []

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.shapes.append(image.shape)
        return self.run(image, mask)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful image with some noise (JPEG-friendly, not constant)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [128 + 100 * np.sin(xx / 17.0), 128 + 100 * np.cos(yy / 13.0), (xx + yy) % 256], axis=2
    )
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def write_mask(path: Path, mask: np.ndarray) -> Path:
    save_image(path, (mask > 0).astype(np.uint8) * 255)
    return path


def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- pixels


def test_mask_pixels_generated_and_others_bit_exact(tmp_path: Path, models: dict, capsys) -> None:
    image = photo(64, 80)
    image[20:40, 30:50] = MAGENTA
    mask = np.zeros((64, 80), bool)
    mask[20:40, 30:50] = True
    save_image(tmp_path / "in.png", image)
    write_mask(tmp_path / "m.png", mask)
    code, out, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--image",
        tmp_path / "in.png",
        "--mask",
        tmp_path / "m.png",
        "--out",
        tmp_path / "out.png",
    )
    assert code == 0 and err == "" and "wrote" in out
    result = load_rgb(tmp_path / "out.png")
    np.testing.assert_array_equal(result[~mask], image[~mask])
    assert not (result[mask] == MAGENTA).all(axis=1).any()


def test_box_and_non_multiple_of_8_sizes(tmp_path: Path, models: dict, capsys) -> None:
    image = photo(37, 53)
    save_image(tmp_path / "in.png", image)
    code, _, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--image",
        tmp_path / "in.png",
        "--box",
        "-5,10,20,100",
        "--out",
        tmp_path / "out.png",
        "--quiet",
    )
    assert code == 0 and err == ""
    result = load_rgb(tmp_path / "out.png")
    assert result.shape == image.shape
    mask = np.zeros((37, 53), bool)
    mask[10:37, 0:15] = True  # clipped to the image
    np.testing.assert_array_equal(result[~mask], image[~mask])
    assert (result[mask] != image[mask]).any(axis=1).mean() > 0.9


@pytest.mark.parametrize(
    ("extend", "added"),
    [("3,5,11,0", (3, 5, 11, 0)), ("0,0,50%,10%", (0, 0, 20, 3)), ("10%,0,10%,0", (4, 0, 4, 0))],
)
def test_extend_grows_exactly_and_keeps_original(
    tmp_path: Path, models: dict, capsys, extend, added
) -> None:
    image = photo(30, 40)
    save_image(tmp_path / "in.png", image)
    code, _, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--image",
        tmp_path / "in.png",
        "--extend",
        extend,
        "--out",
        tmp_path / "out.png",
    )
    assert code == 0 and err == ""
    left, top, right, bottom = added
    result = load_rgb(tmp_path / "out.png")
    assert result.shape == (30 + top + bottom, 40 + left + right, 3)
    np.testing.assert_array_equal(result[top : top + 30, left : left + 40], image)


def test_wide_extension_takes_several_steps(onnx_model: Model) -> None:
    image = photo(40, 40)
    recorder = Recorder(onnx_model.run)
    result = outpaint(image, (0, 0, 60, 0), recorder, TRAIN_SIZE)
    assert result.shape == (40, 100, 3)
    np.testing.assert_array_equal(result[:, :40], image)
    widths = [shape[3] for shape in recorder.shapes]
    # 40 -> 60 (padded to 64) -> 90 (a 90-wide window, padded) -> 100 (the 10 new columns only
    # need a 64-wide window of context); the 20 and 30 px deep bands reach beyond S/4 = 16, so
    # each first runs at the scale where they reach 16 px (48 px wide), then their 16 px edge
    # at full resolution with S/2 of context (56 and 64 px wide)
    assert widths == [48, 56, 48, 64, 64]
    # the CLI agrees: 150% of the width in one call
    recorder.shapes.clear()
    assert outpaint(
        image,
        resolve_extend(parse_extend("0,0,150%,0"), 40, 40),
        recorder,
        TRAIN_SIZE,
    ).shape == (40, 100, 3)


def test_large_image_small_hole_runs_locally(
    tmp_path: Path, models: dict, onnx_model, capsys
) -> None:
    image = photo(300, 500)
    mask = np.zeros((300, 500), bool)
    mask[140:152, 300:318] = True
    recorder = Recorder(onnx_model.run)
    result = inpaint(image, mask, recorder, TRAIN_SIZE)
    assert len(recorder.shapes) == 1 and recorder.shapes[0][2:] == (64, 64)  # one S x S crop
    np.testing.assert_array_equal(result[~mask], image[~mask])
    # and through the CLI, saved as PNG
    save_image(tmp_path / "in.png", image)
    write_mask(tmp_path / "m.png", mask)
    code, _, _ = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--image",
        tmp_path / "in.png",
        "--mask",
        tmp_path / "m.png",
        "--out",
        tmp_path / "out.png",
    )
    assert code == 0
    out = load_rgb(tmp_path / "out.png")
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_large_thin_and_scattered_holes_stay_full_resolution(onnx_model: Model) -> None:
    image = photo(300, 500)
    mask = np.zeros((300, 500), bool)
    mask[10:14, 20:480] = True  # a long scratch, 4 px thick
    mask[250:260, 30:40] = True  # two small holes far apart
    mask[270:280, 460:470] = True
    image[mask] = MAGENTA
    recorder = Recorder(onnx_model.run)
    result = inpaint(image, mask, recorder, TRAIN_SIZE, max_side=128)
    assert all(
        h <= 128 and w <= 128 and h % 8 == 0 and w % 8 == 0 for _, _, h, w in recorder.shapes
    )
    assert working_scale(mask[:64], TRAIN_SIZE) == 1.0
    np.testing.assert_array_equal(result[~mask], image[~mask])
    assert not (result[mask] == MAGENTA).all(axis=1).any()  # every masked pixel was generated


def test_large_hole_is_downscaled_and_fully_generated(onnx_model: Model) -> None:
    image = photo(400, 400)
    mask = np.zeros((400, 400), bool)
    mask[100:300, 120:320] = True  # reach 100 > S/4 = 16: run at 16/100 of the resolution
    image[mask] = MAGENTA
    assert working_scale(mask, TRAIN_SIZE) == pytest.approx(0.16, abs=0.01)
    recorder = Recorder(onnx_model.run)
    result = inpaint(image, mask, recorder, TRAIN_SIZE, max_side=128)
    assert all(h <= 128 and w <= 128 for _, _, h, w in recorder.shapes)
    assert recorder.shapes[0][2:] == (64, 64)  # the whole coarse window in one call
    assert len(recorder.shapes) > 1  # edge refine at full resolution, in 128 px tiles
    np.testing.assert_array_equal(result[~mask], image[~mask])
    assert not (result[mask] == MAGENTA).all(axis=1).any()


def test_holes_run_where_their_reach_is_the_training_holes(onnx_model: Model) -> None:
    """The default: a large hole in a 400 x 400 photo runs at the scale where its reach is S/4
    (one call on the whole window), then its edge band at the photo's own resolution (one more
    call, on the band's box grown by S/2); a thin one runs at full resolution in one call on its
    own window."""
    image = photo(400, 400)
    mask = np.zeros((400, 400), bool)
    mask[100:300, 120:320] = True
    recorder = Recorder(onnx_model.run)
    result = inpaint(image, mask, recorder, TRAIN_SIZE)
    assert recorder.shapes == [(1, 3, 64, 64), (1, 3, 264, 264)]  # 200 + 2 x 32
    np.testing.assert_array_equal(result[~mask], image[~mask])
    thin = np.zeros((400, 400), bool)
    thin[50:350, 196:204] = True  # reach 4
    recorder = Recorder(onnx_model.run)
    inpaint(image, thin, recorder, TRAIN_SIZE)
    assert len(recorder.shapes) == 1 and recorder.shapes[0][2] >= 300  # its window, not shrunk


def test_the_reach_and_band_of_the_strategy_can_be_varied(onnx_model: Model) -> None:
    """What benchmarks/strategy_variants.py measures: band 0 keeps the coarse pass alone, a
    reach of half the training size halves the downscaling, a huge one runs at full size."""
    image = photo(400, 400)
    mask = np.zeros((400, 400), bool)
    mask[100:300, 120:320] = True  # reach 100
    calls = {}
    for name, options in {
        "no band": {"band": 0.0},
        "reach S/2": {"reach": 0.5},
        "full size": {"reach": 100.0},
    }.items():
        recorder = Recorder(onnx_model.run)
        result = inpaint(image, mask, recorder, TRAIN_SIZE, **options)
        np.testing.assert_array_equal(result[~mask], image[~mask])
        calls[name] = recorder.shapes
    assert calls["no band"] == [(1, 3, 64, 64)]
    assert calls["reach S/2"] == [(1, 3, 128, 128), (1, 3, 264, 264)]
    assert calls["full size"] == [(1, 3, 400, 400)]


def test_torchscript_model_matches_onnx(tmp_path: Path, models: dict, capsys) -> None:
    image = photo(48, 56)
    save_image(tmp_path / "in.png", image)
    for kind in ("onnx", "pt"):
        code, _, err = run_cli(
            capsys,
            "--model",
            models[kind],
            "--image",
            tmp_path / "in.png",
            "--box",
            "10,10,20,16",
            "--out",
            tmp_path / f"{kind}.png",
        )
        assert code == 0 and err == ""
    a, b = load_rgb(tmp_path / "onnx.png"), load_rgb(tmp_path / "pt.png")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_training_size_from_metadata_export_json_or_default(tmp_path: Path, models: dict) -> None:
    assert load_model(models["onnx"]).image_size == TRAIN_SIZE
    assert load_model(models["pt"]).image_size == TRAIN_SIZE
    assert load_model(models["plain"]).image_size == 32
    shutil.copy(models["plain"], tmp_path / "model.onnx")
    assert load_model(tmp_path / "model.onnx").image_size == 256


# --------------------------------------------------------------------------- odd but valid input


def test_odd_image_modes_work(tmp_path: Path, models: dict, capsys) -> None:
    gray16 = photo(40, 48)[..., 0].astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    rgba = np.dstack([photo(40, 48), np.full((40, 48), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba[..., [2, 1, 0, 3]])
    cv2.imwrite(str(tmp_path / "gray.png"), photo(40, 48)[..., 1])
    for name in ("g16.png", "rgba.png", "gray.png"):
        code, _, err = run_cli(
            capsys,
            "--model",
            models["onnx"],
            "--image",
            tmp_path / name,
            "--box",
            "5,5,10,10",
            "--out",
            tmp_path / f"out_{name}",
        )
        assert code == 0 and err == "", name
        out = load_rgb(tmp_path / f"out_{name}")
        source = load_rgb(tmp_path / name)
        keep = np.ones((40, 48), bool)
        keep[5:15, 5:15] = False
        np.testing.assert_array_equal(out[keep], source[keep])


def test_notes_for_soft_empty_and_full_masks(tmp_path: Path, models: dict, capsys) -> None:
    image = photo(32, 40)
    save_image(tmp_path / "in.png", image)
    soft = np.zeros((32, 40), np.uint8)
    soft[8:20, 8:20] = 200
    soft[0, 0] = 90
    save_image(tmp_path / "soft.png", soft)
    save_image(tmp_path / "empty.png", np.zeros((32, 40), np.uint8))
    save_image(tmp_path / "full.png", np.full((32, 40), 255, np.uint8))
    outputs = {}
    for name, word in (("soft", "not binary"), ("empty", "empty"), ("full", "covers all")):
        code, _, err = run_cli(
            capsys,
            "--model",
            models["onnx"],
            "--image",
            tmp_path / "in.png",
            "--mask",
            tmp_path / f"{name}.png",
            "--out",
            tmp_path / f"out_{name}.png",
        )
        lines = err.strip().splitlines()
        assert (
            code == 0 and len(lines) == 1 and lines[0].startswith("note: ") and word in lines[0]
        ), err
        outputs[name] = load_rgb(tmp_path / f"out_{name}.png")
    np.testing.assert_array_equal(outputs["empty"], image)
    changed = (outputs["soft"] != image).any(axis=2)
    assert changed[8:20, 8:20].mean() > 0.9 and not changed[0, 0] and changed.sum() <= 144
    assert (outputs["full"] != image).any(axis=2).mean() > 0.9


# --------------------------------------------------------------------------- errors


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    save_image(tmp_path / "in.png", photo(32, 40))
    write_mask(tmp_path / "m.png", np.pad(np.ones((8, 8), bool), ((4, 20), (4, 28))))
    write_mask(tmp_path / "small_mask.png", np.ones((16, 16), bool))
    (tmp_path / "noise.png").write_bytes(
        np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    )
    (tmp_path / "model.h5").write_bytes(b"x")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    (tmp_path / "file.txt").write_text("x")
    return tmp_path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"--image": "missing.png"}, "no such file"),
        ({"--image": "noise.png"}, "not an image"),
        ({"--model": "missing.onnx"}, "not found"),
        ({"--model": "model.h5"}, "unsupported model"),
        ({"--model": "broken.onnx"}, "cannot load model"),
        ({"--mask": "small_mask.png"}, "16x16 but image"),
        ({"--mask": "missing_mask.png"}, "no such file"),
        ({"--mask": "noise.png"}, "cannot read mask"),
        ({"--out": "file.txt/out.png"}, "cannot write"),
        ({"--out": "out.xyz"}, "unsupported extension"),
        ({"--mask": None, "--box": "100,100,5,5"}, "lies outside"),
    ],
)
def test_bad_input_is_one_error_line(
    scene: Path, models: dict, capsys, change: dict, expected: str
) -> None:
    options = {
        "--model": models["onnx"],
        "--image": "in.png",
        "--mask": "m.png",
        "--out": "out.png",
    }
    options.update(change)
    argv = []
    for key, value in options.items():
        if value is not None:
            argv += [key, value if key == "--model" and value == models["onnx"] else scene / value]
    if "--box" in change:
        argv[argv.index("--box") + 1] = change["--box"]
    code, out, err = run_cli(capsys, *argv)
    assert expected in assert_one_error(code, err)
    assert not (scene / "out.png").exists()


def test_existing_output_needs_overwrite(scene: Path, models: dict, capsys) -> None:
    (scene / "out.png").write_bytes(b"precious")
    argv = [
        "--model",
        models["onnx"],
        "--image",
        scene / "in.png",
        "--mask",
        scene / "m.png",
        "--out",
        scene / "out.png",
    ]
    code, _, err = run_cli(capsys, *argv)
    assert "--overwrite" in assert_one_error(code, err)
    assert (scene / "out.png").read_bytes() == b"precious"
    code, _, err = run_cli(capsys, *argv, "--overwrite")
    assert code == 0 and err == ""
    assert load_rgb(scene / "out.png").shape == (32, 40, 3)


@pytest.mark.parametrize(
    "argv",
    [
        ["--image", "a.png", "--box", "1,1,2,2", "--out", "o.png"],  # no --model
        [
            "--model",
            "m.onnx",
            "--image",
            "a.png",
            "--box",
            "1,1,2,2",
            "--mask",
            "m.png",
            "--out",
            "o.png",
        ],
        ["--model", "m.onnx", "--image", "a.png", "--box", "1,1,0,2", "--out", "o.png"],
        ["--model", "m.onnx", "--image", "a.png", "--extend", "1,2,3", "--out", "o.png"],
        ["--model", "m.onnx", "--image", "a.png", "--extend", "1,-2,3,4", "--out", "o.png"],
        [
            "--model",
            "m.onnx",
            "--image",
            "a.png",
            "--box",
            "1,1,2,2",
            "--out",
            "o.png",
            "--threshold",
            "2",
        ],
        ["--model", "m.onnx", "--input-dir", "d", "--box", "1,1,2,2", "--out", "o.png"],
        ["--model", "m.onnx", "--image", "a.png", "--mask-dir", "d", "--out", "o.png"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    assert main(argv) == 2  # argparse's exit, returned like every other exit code
    assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- folders


def test_folder_mode_with_mask_dir(tmp_path: Path, models: dict, capsys) -> None:
    images, masks, outs = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    box = np.zeros((32, 40), bool)
    box[8:16, 8:20] = True
    for rel in ("a.png", "sub/b.jpg", "c.bmp"):
        save_image(images / rel, photo(32, 40, seed=len(rel)))
    (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (images / "nomask.png").parent.mkdir(exist_ok=True)
    save_image(images / "nomask.png", photo(32, 40))
    write_mask(masks / "a.png", box)
    write_mask(masks / "sub" / "b_mask.png", box)
    write_mask(masks / "c_mask.png", box)
    write_mask(masks / "bad.png", box)
    code, out, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--input-dir",
        images,
        "--mask-dir",
        masks,
        "--output-dir",
        outs,
        "--quiet",
    )
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("3 written, 2 skipped")
    skips = [line for line in err.splitlines() if line.startswith("skipped: ")]
    assert (
        len(skips) == 2
        and any("bad.png" in s for s in skips)
        and any("nomask.png" in s for s in skips)
    )
    assert "Traceback" not in err
    written = sorted(p.relative_to(outs).as_posix() for p in outs.rglob("*") if p.is_file())
    assert written == ["a.png", "c.png", "sub/b.jpg"]
    a_in, a_out = load_rgb(images / "a.png"), load_rgb(outs / "a.png")
    np.testing.assert_array_equal(a_out[~box], a_in[~box])
    # rerun without --overwrite: everything is skipped, nothing changes
    before = (outs / "a.png").read_bytes()
    code, out, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--input-dir",
        images,
        "--mask-dir",
        masks,
        "--output-dir",
        outs,
        "--quiet",
    )
    assert code == 1 and "0 written, 5 skipped" in out
    assert (outs / "a.png").read_bytes() == before


def test_folder_mode_skips_symlinks_out_of_the_input_and_never_writes_through_one(
    tmp_path: Path, models: dict, capsys
) -> None:
    """A symlinked input pointing outside --input-dir is skipped with a note (never read); one
    pointing inside is fine. A symlinked subfolder of --output-dir (pointing anywhere) is never
    written through, nor is a symlinked output file replaced through its link."""
    images, outs, secret, elsewhere = (tmp_path / n for n in ("in", "out", "secret", "elsewhere"))
    save_image(images / "a.png", photo(32, 40, seed=1))
    save_image(images / "sub" / "c.png", photo(32, 40, seed=3))
    save_image(secret / "private.png", photo(32, 40, seed=2))
    (images / "leak.png").symlink_to(secret / "private.png")
    (images / "alias.png").symlink_to(images / "a.png")
    elsewhere.mkdir()
    outs.mkdir()
    (outs / "sub").symlink_to(elsewhere, target_is_directory=True)
    (outs / "alias.png").symlink_to(elsewhere / "victim.png")
    code, out, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--input-dir",
        images,
        "--box",
        "4,4,8,8",
        "--output-dir",
        outs,
        "--quiet",
        "--overwrite",
    )
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert any("leak.png" in n and "outside" in n and str(secret) in n for n in notes), err
    skips = [line for line in err.splitlines() if line.startswith("skipped: ")]
    assert any("sub/c.png" in s and "symlink" in s for s in skips), err
    assert any("alias.png" in s and "symlink" in s for s in skips), err
    assert list(elsewhere.iterdir()) == []  # nothing written through the links
    assert not (outs / "leak.png").exists()
    assert sorted(p.name for p in outs.iterdir() if not p.is_symlink()) == ["a.png"]
    assert code == 1  # the refused outputs count as skipped; the symlinked input only as a note


def test_folder_mode_extend_with_progress_and_masks_beside_images(
    tmp_path: Path, models: dict, capsys
) -> None:
    images = tmp_path / "in"
    for name in ("x.png", "y.png"):
        save_image(images / name, photo(24, 32))
    code, out, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--input-dir",
        images,
        "--extend",
        "8,0,0,0",
        "--output-dir",
        tmp_path / "wide",
    )
    assert code == 0 and "2 written, 0 skipped" in out
    assert "predict" in err and "Traceback" not in err  # the tqdm bar
    assert load_rgb(tmp_path / "wide" / "x.png").shape == (24, 40, 3)
    # masks in the same folder, named <stem>_mask
    write_mask(images / "x_mask.png", np.pad(np.ones((4, 4), bool), ((2, 18), (2, 26))))
    write_mask(images / "y_mask.png", np.pad(np.ones((4, 4), bool), ((10, 10), (10, 18))))
    code, out, err = run_cli(
        capsys,
        "--model",
        models["onnx"],
        "--input-dir",
        images,
        "--mask-dir",
        images,
        "--output-dir",
        tmp_path / "filled",
        "--quiet",
    )
    assert code == 0 and "2 written, 0 skipped" in out and err == ""
    assert sorted(p.name for p in (tmp_path / "filled").iterdir()) == ["x.png", "y.png"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--input-dir", "nowhere", "--box", "1,1,4,4"], "not found"),
        (["--input-dir", "empty", "--box", "1,1,4,4"], "no image files"),
        (["--input-dir", "empty", "--mask-dir", "nowhere"], "mask folder"),
        (["--input-dir", "empty", "--mask", "nowhere.png"], "cannot read mask"),
    ],
)
def test_folder_mode_errors(
    tmp_path: Path, models: dict, capsys, extra: list, expected: str
) -> None:
    (tmp_path / "empty").mkdir()
    argv = [tmp_path / a if not a.startswith("-") and "," not in a else a for a in extra]
    code, _, err = run_cli(capsys, "--model", models["onnx"], *argv, "--output-dir", tmp_path / "o")
    assert code == 2 and expected in assert_one_error(code, err)


# --------------------------------------------------------------------------- processes


def test_predict_import_does_not_import_torch() -> None:
    code = "import inpaintlab.predict, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_entry_point_runs_without_torch(tmp_path: Path, models: dict) -> None:
    save_image(tmp_path / "in.jpg", photo(40, 40))
    script = (
        "import runpy, sys; sys.argv = ['predict'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('inpaintlab.predict', run_name='__main__')\n"
        "finally:\n    assert 'torch' not in sys.modules\n"
    )
    args = [
        "--model",
        str(models["onnx"]),
        "--image",
        str(tmp_path / "in.jpg"),
        "--box",
        "8,8,16,16",
        "--out",
        str(tmp_path / "out.jpg"),
    ]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "wrote" in done.stdout
    assert load_rgb(tmp_path / "out.jpg").shape == (40, 40, 3)
    done = subprocess.run(
        [sys.executable, "-m", "inpaintlab.predict", *args], capture_output=True, text=True
    )
    assert (
        done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    )
