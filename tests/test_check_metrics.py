"""The CI regression gate: exit codes are the contract, so most tests assert on them."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inpaintlab.check_metrics import compare, direction, flatten, main


def _m(psnr: float, ssim: float, l1: float, acc: float, n: int = 32) -> dict:
    return {"psnr_masked": psnr, "ssim": ssim, "l1_masked": l1, "accuracy": acc, "n": n}


BASE = {
    "model": {
        "box": _m(25.0, 0.90, 0.040, 0.80),
        "irregular": _m(27.0, 0.95, 0.020, 0.90),
        "outpaint": _m(19.0, 0.80, 0.080, 0.60),
        "all": _m(23.7, 0.88, 0.047, 0.77, 96),
        "area_bins": {"0-10": _m(29.0, 0.97, 0.010, 0.95, 40)},
    },
    "baselines": {
        "telea": {"box": _m(23.0, 0.85, 0.050, 0.70), "all": _m(21.0, 0.84, 0.06, 0.65, 96)},
        "ns": {"box": _m(23.5, 0.86, 0.049, 0.71), "all": _m(21.3, 0.85, 0.06, 0.66, 96)},
    },
    "note": "strings are ignored",
}


def _write(path: Path, data: dict) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def _changed(**edits: float) -> dict:
    """Copy of BASE with dotted keys set, e.g. _changed(**{"model.box.ssim": 0.5})."""
    data = copy.deepcopy(BASE)
    for key, value in edits.items():
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = value
    return data


def _gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], current: dict, *extra: str
) -> tuple[int, str, str]:
    """Run the gate on BASE vs `current`: (exit code, stdout, stderr)."""
    base = _write(tmp_path / "baseline.json", BASE)
    cur = _write(tmp_path / "current.json", current)
    code = main(["--baseline", base, "--current", cur, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_flatten_and_direction() -> None:
    flat = flatten({"a": {"b": 1, "c": {"psnr": 2.5}, "s": "x", "t": True, "l": [1]}})
    assert flat == {"a.b": 1, "a.c.psnr": 2.5}
    assert direction("model.box.psnr_masked") == 1
    assert direction("model.box.ssim") == 1
    assert direction("model.box.accuracy") == 1
    assert direction("model.box.l1_masked") == -1
    assert direction("train.val_loss") == -1
    assert direction("model.box.n") == 0
    assert direction("model.confidence") == 0  # "fid" only as a whole word


def test_directions_come_from_the_table_not_from_words() -> None:
    """Every metric the pipeline writes has an explicit direction; a name that merely contains
    a word like 'loss' or 'psnr' is not guessed."""
    import torch

    from inpaintlab.metric_names import DIRECTIONS, INFORMATIONAL, METRIC_NAMES
    from inpaintlab.metrics import image_metrics

    image = torch.rand(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    assert tuple(image_metrics(image, image, mask)) == METRIC_NAMES
    assert set(METRIC_NAMES) <= set(DIRECTIONS) and {"n", "ms"} <= INFORMATIONAL
    assert direction("model.box.psnr") == 0 and direction("model.box.my_loss") == 0
    assert direction("final.val_psnr") == 1 and direction("final.train_loss") == -1


def test_unknown_metrics_are_shown_with_a_note_and_never_gated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = copy.deepcopy(BASE)
    base["model"]["box"]["lpips"] = 0.20
    current = copy.deepcopy(base)
    current["model"]["box"]["lpips"] = 0.90  # worse, were it known to be lower-is-better
    base_file = _write(tmp_path / "baseline.json", base)
    code = main(["--baseline", base_file, "--current", _write(tmp_path / "c.json", current)])
    out = capsys.readouterr().out
    assert code == 0
    assert "note: not gated, no direction in inpaintlab/metric_names.py: lpips" in out
    assert "model.box.lpips" in out and "info" in out


def test_equal_files_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _gate(tmp_path, capsys, BASE)
    assert code == 0
    assert out.strip().splitlines()[-1] == "OK: no regression (20 metrics compared)"
    assert err == ""


def test_worse_fails_and_names_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _gate(tmp_path, capsys, _changed(**{"model.box.psnr_masked": 24.0}))
    assert code == 1
    assert "model.box.psnr_masked" in out and "WORSE" in out
    assert out.strip().splitlines()[-1] == "FAIL: 1 metrics regressed beyond tolerance"


def test_better_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    better = _changed(**{"model.box.psnr_masked": 26.0, "model.box.l1_masked": 0.03})
    code, out, _ = _gate(tmp_path, capsys, better)
    assert code == 0
    assert "better" in out and "model.box.l1_masked" in out


def test_within_tolerance_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 1% of 25 dB = 0.25 dB allowed by default
    current = _changed(**{"model.box.psnr_masked": 24.8})
    code, out, _ = _gate(tmp_path, capsys, current)
    assert code == 0
    assert " ok" in out
    # the same drop fails with a tighter relative tolerance ...
    assert _gate(tmp_path, capsys, current, "--tolerance", "0.005")[0] == 1
    # ... and passes again with an absolute floor for psnr
    assert (
        _gate(tmp_path, capsys, current, "--tolerance", "0", "--abs-tolerance", "psnr=0.3")[0] == 0
    )


def test_l1_up_fails_psnr_up_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _gate(tmp_path, capsys, _changed(**{"model.irregular.l1_masked": 0.03}))
    assert code == 1 and "model.irregular.l1_masked" in out
    assert _gate(tmp_path, capsys, _changed(**{"model.irregular.psnr_masked": 30.0}))[0] == 0


def test_missing_metric_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = copy.deepcopy(BASE)
    del current["model"]["outpaint"]
    code, out, _ = _gate(tmp_path, capsys, current)
    assert code == 1
    assert "model.outpaint.psnr_masked" in out and "MISSING" in out


def test_nan_in_current_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _gate(tmp_path, capsys, _changed(**{"model.all.ssim": math.nan}))
    assert code == 1 and "model.all.ssim" in out


def test_new_metric_and_n_are_informational(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = _changed(**{"model.box.n": 30})
    current["model"]["thin"] = _m(20.0, 0.9, 0.05, 0.7)
    code, out, _ = _gate(tmp_path, capsys, current)
    assert code == 0
    assert "model.thin.psnr_masked" in out and "new" in out
    assert "warning: model.box.n changed 32 -> 30" in out


def test_baselines_only_gated_with_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = _changed(**{"baselines.telea.box.psnr_masked": 20.0})
    code, out, _ = _gate(tmp_path, capsys, current)
    assert code == 0 and "baselines.telea.box.psnr_masked" in out
    code, out, _ = _gate(tmp_path, capsys, current, "--all")
    assert code == 1 and "WORSE" in out


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_bad_file_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    base = _write(tmp_path / "baseline.json", BASE)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    code = main(["--baseline", base, "--current", str(bad)])
    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "bad.json" in lines[0]


def test_bad_arguments_return_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path / "baseline.json", BASE)
    assert main(["--baseline", base]) == 2
    assert main(["--baseline", base, "--current", base, "--tolerance", "-1"]) == 2
    assert main(["--baseline", base, "--current", base, "--abs-tolerance", "psnr=x"]) == 2
    assert main(["--help"]) == 0
    assert "relative" in capsys.readouterr().out


def test_nothing_to_gate_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A vacuous pass (e.g. the wrong file) must not look like a green gate."""
    other = {"train_loss": 0.1}
    f = _write(tmp_path / "train.json", other)
    assert main(["--baseline", f, "--current", f]) == 2
    assert main(["--baseline", f, "--current", f, "--all"]) == 0


def test_compare_ignores_float_noise() -> None:
    flat = flatten(BASE)
    noisy = {k: v + 1e-14 for k, v in flat.items()}
    assert compare(flat, noisy) == []


def test_exit_code_is_real_in_a_subprocess(tmp_path: Path) -> None:
    base = _write(tmp_path / "baseline.json", BASE)
    worse = _write(tmp_path / "current.json", _changed(**{"model.all.accuracy": 0.5}))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "inpaintlab.check_metrics", "--baseline", base]
    failed = subprocess.run([*cmd, "--current", worse], capture_output=True, text=True, env=env)
    assert failed.returncode == 1, failed.stderr
    assert "model.all.accuracy" in failed.stdout
    passed = subprocess.run([*cmd, "--current", base], capture_output=True, text=True, env=env)
    assert passed.returncode == 0, passed.stderr
    assert (
        "torch"
        not in subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, inpaintlab.check_metrics; print(sorted(sys.modules))",
            ],
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    )


def test_full_size_model_metrics_are_gated_and_baselines_are_not(tmp_path) -> None:
    base = {
        "model": {"box": {"psnr_masked": 20.0}},
        "full_size": {
            "512": {
                "model": {"box": {"psnr_masked": 22.0}},
                "baselines": {"ns": {"box": {"psnr_masked": 21.0}}},
            }
        },
    }
    worse_model = copy.deepcopy(base)
    worse_model["full_size"]["512"]["model"]["box"]["psnr_masked"] = 20.0
    worse_baseline = copy.deepcopy(base)
    worse_baseline["full_size"]["512"]["baselines"]["ns"]["box"]["psnr_masked"] = 15.0
    paths = {}
    for name, data in {"base": base, "model": worse_model, "baseline": worse_baseline}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    assert main(["--baseline", str(paths["base"]), "--current", str(paths["model"])]) == 1
    assert main(["--baseline", str(paths["base"]), "--current", str(paths["baseline"])]) == 0
