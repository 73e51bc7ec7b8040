"""tracking.versions: the data version is the md5 `dvc add` recorded for data/raw, read from a
data.dvc that real DVC wrote; git_commit names the commit, dirty or not."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import BIN, ROOT, clean_env, run_ok

from inpaintlab import tracking


def dvc_add(project: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (project / "data" / "raw" / name).parent.mkdir(parents=True, exist_ok=True)
        (project / "data" / "raw" / name).write_bytes(data)
    run_ok([str(BIN / "dvc"), "add", "-q", "data/raw"], project)


def test_data_version_is_the_md5_dvc_add_records(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    env = clean_env()
    run_ok(["git", "init", "-q"], project, env)
    run_ok([str(BIN / "dvc"), "init", "-q"], project, env)
    assert tracking.data_version(project) == "untracked"
    shutil.copy(ROOT / "data.dvc", project)  # `dvc add data/raw` updates the file that tracks it

    dvc_add(project, {"a.png": b"first image", "b.jpg": b"second image"})
    first = tracking.data_version(project)
    assert first.endswith(".dir") and first != tracking.data_version(ROOT)
    # the hash names the folder's listing in DVC's cache: it is DVC's version of these files
    digest = first.removesuffix(".dir")
    assert (project / ".dvc/cache/files/md5" / digest[:2] / f"{digest[2:]}.dir").is_file()

    dvc_add(project, {"b.jpg": b"an edited image"})
    assert tracking.data_version(project) not in ("unknown", first)

    run_ok(["git", "add", "-A"], project, env)
    run_ok(["git", "commit", "-q", "-m", "data"], project, env)
    commit = tracking.git_commit(project)
    assert commit != "unknown" and not commit.endswith("-dirty")
    (project / "data.dvc").write_text("outs: []\n")
    assert tracking.data_version(project) == "unknown"
    assert tracking.git_commit(project) == f"{commit}-dirty"
    (project / "data.dvc").write_text("outs: [\n")  # not YAML
    assert tracking.data_version(project) == "unknown"
    assert tracking.git_commit(tmp_path) == "unknown"  # not a repository
