"""dvc.yaml tells the truth about what each stage reads: every module a stage imports (directly
or through other inpaintlab modules, lazy imports inside functions included) is one of its deps,
so changing it makes `dvc repro` re-run the stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    """src/ path of an inpaintlab module or package (None for anything else)."""
    if name != "inpaintlab" and not name.startswith("inpaintlab."):
        return None
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path) -> set[str]:
    """Names of the modules a file imports anywhere in it (function bodies too)."""
    names: set[str] = set()
    package = ".".join(path.relative_to(SRC).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level)[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def import_closure(start: Path) -> set[Path]:
    """Every inpaintlab source file reachable from `start` by imports, parents' __init__ too."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__
                found = module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def stage_deps(stage: str) -> list[Path]:
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["deps"]
    return [ROOT / d for d in deps]


def covered(path: Path, deps: list[Path]) -> bool:
    return any(path == d or d in path.parents for d in deps)


STAGES = ["prepare", "train", "evaluate", "export"]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_deps_cover_its_import_closure(stage):
    closure = import_closure(SRC / "inpaintlab" / f"{stage}.py")
    missing = sorted(str(p.relative_to(ROOT)) for p in closure if not covered(p, stage_deps(stage)))
    assert not missing, f"dvc.yaml stage {stage!r} does not list what it imports: {missing}"


def test_the_closure_follows_lazy_and_package_imports(tmp_path):
    """The check itself: evaluate reaches the inference package and, through it, runtime."""
    closure = import_closure(SRC / "inpaintlab" / "evaluate.py")
    names = {str(p.relative_to(SRC)) for p in closure}
    assert "inpaintlab/inference/runtime.py" in names
    assert "inpaintlab/report.py" in names  # imported inside main()


def test_prepare_depends_on_the_mask_family_files():
    """prepare draws the val/test masks from conf/mask/family/ (data.masks.EVAL_FAMILIES), files
    that are no stage's params: a changed family must re-run prepare."""
    from inpaintlab.data import masks

    assert covered(masks.FAMILY_DIR / "box.yaml", stage_deps("prepare"))
