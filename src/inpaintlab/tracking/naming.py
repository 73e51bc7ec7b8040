"""What a run is called and tagged in MLflow, so runs can be found, filtered and grouped in the
UI: `<model>-<size>px-s<seed>` plus what sets the run apart (the overrides a sweep varies), and
tags for the model, mask, seed, code and data versions and the sweep it belongs to."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from inpaintlab.tracking.jobs import JobInfo
from inpaintlab.tracking.versions import data_version, git_commit

if TYPE_CHECKING:
    from inpaintlab.tracking.sweep import SweepParent

MAX_NAME = 250  # MLflow's run-name limit


def _short(override: str) -> str:
    """`optim.lr=0.0022694720080878735` -> `optim.lr=0.002269` (Optuna's floats are long)."""
    key, sep, value = override.partition("=")
    try:
        if sep and len(value) > 7 and not value.lstrip("-").isdigit():
            return f"{key}={float(value):.4g}"
    except ValueError:
        pass
    return override


def _parse(overrides: list[str]) -> list[tuple[str, bool]] | None:
    """[(key, is a sweep: a,b / range() / interval() ...)], None when Hydra cannot parse them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None
    return [(o.key_or_group, o.is_sweep_override()) for o in parsed]


def varying_overrides(job_overrides: list[str], sweep_overrides: list[str]) -> list[str]:
    """The job's overrides that set it apart from the other jobs: keys the sweep varies on the
    command line, or that the sweeper added (hydra.sweeper.params, Optuna's trials).
    Compared by key: the basic sweeper rewrites values (`false` -> `False`)."""
    job, sweep = _parse(job_overrides), _parse(sweep_overrides)
    if job is None or sweep is None:
        common = set(sweep_overrides)
        return [o for o in job_overrides if o not in common]
    swept = dict(sweep)
    return [o for o, (key, _) in zip(job_overrides, job, strict=True) if swept.get(key, True)]


def mask_name(cfg: DictConfig, choices: Mapping[str, str]) -> str:
    """The mask option (conf/mask/<name>.yaml); from the sampler class when composed without
    Hydra's defaults (DVC runs on params.yaml, which has no choices)."""
    return choices.get("mask") or _sampler_name(cfg.mask)


def _sampler_name(node: Any) -> str:
    """box / irregular / outpaint for a single kind of sampler (through wrappers and mixes of one
    kind), mixed for a mix of kinds."""
    if "generator" in node:  # a wrapper such as AreaLimit
        return _sampler_name(node.generator)
    if "generators" in node:
        kinds = {_sampler_name(g) for g in node.generators.values()}
        return kinds.pop() if len(kinds) == 1 else "mixed"
    cls = str(node.get("_target_", "unknown")).rsplit(".", 1)[-1]
    return {"StrokeMask": "irregular"}.get(cls, cls.removesuffix("Mask").lower())


def run_name(cfg: DictConfig, info: JobInfo, parent: SweepParent | None = None) -> str:
    """`<model>-<size>px-s<seed>` (or logger.run_name), then what this run changed: in a sweep the
    overrides that vary between jobs, in a single run its command-line overrides, in a DVC
    experiment the experiment's name."""
    base = cfg.logger.run_name or f"{cfg.model.name}-{cfg.data.image_size}px-s{cfg.seed}"
    extra = varying_overrides(info.overrides, parent.overrides if parent else [])
    parts = [base, *(_short(o) for o in extra)]
    if os.environ.get("DVC_EXP_NAME"):
        parts.append(f"[{os.environ['DVC_EXP_NAME']}]")
    return " ".join(parts)[:MAX_NAME]


def run_tags(
    cfg: DictConfig,
    info: JobInfo,
    parent: SweepParent | None = None,
    experiment_id: str | None = None,
) -> dict[str, str]:
    """Tags to filter and group by in the UI: model, mask, seed, code and data versions, the
    overrides, and for a sweep job its sweep id and parent run (MLflow nests it under that run)."""
    tags = {
        "model": str(cfg.model.name),
        "mask": mask_name(cfg, info.choices),
        "seed": str(cfg.seed),
        "image_size": str(cfg.data.image_size),
        "git_commit": git_commit(),
        "data_version": data_version(),
    }
    for group in ("experiment", "hparams_search"):
        if info.choices.get(group):
            tags[group] = info.choices[group]
    if info.overrides:
        tags["overrides"] = " ".join(info.overrides)
    if info.multirun:
        tags["sweep"] = (
            parent.sweep_id
            if parent and parent.sweep_id
            else (info.sweep_dir.name if info.sweep_dir else "unknown")
        )
        if info.job_num is not None:
            tags["sweep_job"] = str(info.job_num)
        if parent and (not parent.experiment_id or parent.experiment_id == experiment_id):
            tags["mlflow.parentRunId"] = parent.run_id
    for env, tag in (("DVC_EXP_NAME", "dvc_exp"), ("DVC_EXP_BASELINE_REV", "dvc_baseline_rev")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags
