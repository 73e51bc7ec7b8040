"""params.yaml (what `dvc repro` reads) must equal the composition of conf/."""

from __future__ import annotations

import yaml

from inpaintlab.params import composed_text


def test_committed_params_yaml_equals_composition_of_conf(root):
    committed = (root / "params.yaml").read_text()
    assert committed == composed_text([], root), "params.yaml is stale: run `make params`"


def test_composition_applies_experiment_overrides(root):
    ci = yaml.safe_load(composed_text(["experiment=ci", "seed=7"], root))
    assert ci["seed"] == 7
    assert ci["data"]["image_size"] == 32
    assert "hydra" not in ci  # DVC drops Hydra's own node


def test_every_dvc_stage_param_exists_in_params_yaml(root):
    params = yaml.safe_load((root / "params.yaml").read_text())
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for key in stage.get("params", []):
            node = params
            for part in key.split("."):
                assert part in node, f"stage {name} lists param {key!r}, missing from params.yaml"
                node = node[part]
