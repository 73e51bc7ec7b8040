"""experiment=gpu256 (the GPU recipe) composes the seed's shapes with the GPU settings, and
benchmarks/train_speed.py times its training step on this CPU (shrunk to stay fast)."""

from __future__ import annotations

import re
import sys

from conftest import ROOT, clean_env, run_ok


def test_gpu256_is_the_seed_shapes_with_gpu_settings(compose_cfg):
    cfg = compose_cfg("experiment=gpu256")
    seed = compose_cfg("experiment=seed256")
    assert cfg.model == seed.model and cfg.data.image_size == 256
    assert cfg.trainer.accelerator == "auto" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.train.channels_last is True
    assert cfg.datamodule.batch_size == 32 and cfg.datamodule.num_workers == 8


def test_train_speed_reports_images_per_second_and_share_of_matmul_peak(tmp_path):
    out = run_ok(
        [
            sys.executable, str(ROOT / "benchmarks/train_speed.py"), "experiment=gpu256",
            "data.image_size=64", "model.generator.base_channels=8", "datamodule.batch_size=2",
            "--steps", "2", "--matmul-size", "256",
        ],
        tmp_path,
        clean_env(OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert "channels_last=True" in out
    images = float(re.search(r"([\d.]+) images/s", out).group(1))
    share = float(re.search(r"share ([\d.]+)%", out).group(1))
    assert images > 0 and 0 < share < 100, out
