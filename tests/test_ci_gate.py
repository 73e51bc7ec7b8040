"""CI's metric regression gate, at unit level: `inpaintlab check-metrics` against the committed
baseline (metrics/baseline_ci.json, written by `make ci-baseline`) passes for the same metrics and
fails when a model metric gets worse. `.ci/run` runs the real pipeline (`make ci-pipeline`)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest

from inpaintlab.check_metrics import main as check_metrics

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "metrics" / "baseline_ci.json"
CI_PIPELINE = ROOT / ".ci" / "ci-pipeline"


@pytest.fixture(scope="module")
def baseline() -> dict:
    return json.loads(BASELINE.read_text())


def ci_tolerance() -> str:
    """The relative tolerance .ci/ci-pipeline passes to check-metrics."""
    found = re.search(r"TOLERANCE=\$\{CI_TOLERANCE:-([0-9.]+)\}", CI_PIPELINE.read_text())
    assert found, "TOLERANCE=${CI_TOLERANCE:-X} not found in .ci/ci-pipeline"
    return found.group(1)


def gate(tmp_path: Path, current: dict) -> int:
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(current))
    return check_metrics(
        ["--baseline", str(BASELINE), "--current", str(path), "--tolerance", ci_tolerance()]
    )


def edited(data: dict, key: str, change) -> dict:
    """Copy of data with the dotted key's value replaced by change(value)."""
    out = copy.deepcopy(data)
    *parents, leaf = key.split(".")
    node = out
    for name in parents:
        node = node[name]
    node[leaf] = change(node[leaf])
    return out


def test_baseline_is_an_eval_json_of_the_ci_configuration(baseline):
    assert set(baseline) == {"model", "baselines", "full_size"}
    model = baseline["model"]
    assert {"box", "irregular", "outpaint", "all", "area_bins"} <= set(model)
    assert model["all"]["n"] == 3 * model["box"]["n"]  # experiment=ci evaluates three families
    for family in ("box", "irregular", "outpaint", "all"):
        assert set(model[family]) == {"psnr_masked", "ssim", "l1_masked", "accuracy", "n", "ms"}
    # the CI data is 256 px: the gate covers what predict gives at 256 px too
    full = baseline["full_size"]["256"]
    assert {"box", "irregular", "outpaint", "all"} <= set(full["model"])
    assert set(full["baselines"]) == {"telea", "ns", "fsr", "biharmonic", "patchmatch"}


def test_the_same_metrics_pass(tmp_path, baseline, capsys):
    assert gate(tmp_path, baseline) == 0
    assert "no regression" in capsys.readouterr().out


def test_run_to_run_noise_passes(tmp_path, baseline):
    """The variation measured between runs (another thread count: 1e-6 on PSNR) is not a regression."""
    noisy = edited(baseline, "model.irregular.psnr_masked", lambda v: v - 1e-6)
    noisy = edited(noisy, "model.all.l1_masked", lambda v: v + 1e-6)
    assert gate(tmp_path, noisy) == 0


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("model.box.psnr_masked", lambda v: v * 0.95),  # higher is better: 5% lower
        ("model.outpaint.ssim", lambda v: v - 0.05),
        ("model.all.l1_masked", lambda v: v * 1.10),  # lower is better: 10% higher
        ("model.irregular.accuracy", lambda v: v - 0.05),
    ],
)
def test_a_worse_model_metric_fails(tmp_path, baseline, capsys, key, change):
    assert gate(tmp_path, edited(baseline, key, change)) == 1
    assert f"regressed: {key}" in capsys.readouterr().out


def test_a_missing_model_metric_fails(tmp_path, baseline):
    current = copy.deepcopy(baseline)
    del current["model"]["outpaint"]
    assert gate(tmp_path, current) == 1


def test_worse_classical_baselines_do_not_fail(tmp_path, baseline):
    """Only the model is gated; Telea and Navier-Stokes are context."""
    assert gate(tmp_path, edited(baseline, "baselines.telea.box.psnr_masked", lambda v: v - 5)) == 0


def test_ci_runs_make_test_first_then_the_gate_and_the_ui_tests():
    steps = [
        line.strip()
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    order = [
        next(i for i, s in enumerate(steps) if s.startswith(cmd))
        for cmd in (
            "make test",
            "make ci-pipeline",
            ".venv/bin/python -m pytest -q -m slow tests/test_ui.py",
        )
    ]
    assert order == sorted(order), steps
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^ci-pipeline:.*\n\t\.ci/ci-pipeline$", makefile, re.M)
    assert re.search(r"^ci-baseline:.*\n\t\.ci/ci-pipeline --update$", makefile, re.M)
    subprocess.run(["bash", "-n", str(CI_PIPELINE)], check=True)
    subprocess.run(["bash", "-n", str(ROOT / ".ci/run")], check=True)
