"""Faults injected for real (issue 14): crafted checkpoints, signals to real training processes,
SIGKILL, concurrent trainings and prepares, bad values, the umask. No mocks of MLflow, DVC or
Lightning: real subprocesses, a real SQLite MLflow store, real files.

The fast tests take about a minute together; the multi-process scenarios (interrupt and resume
against an uninterrupted run, `dvc repro` after a kill, two trainings at once, the fault-injection
benchmark) are marked slow and run in .ci/run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import BIN, ROOT, ci_project, clean_env, run_ok
from mlflow.tracking import MlflowClient

from inpaintlab import tracking
from inpaintlab.checkpoints import load_checkpoint, load_generator, save_atomic
from inpaintlab.errors import UserError
from inpaintlab.files import atomic_write_json, write_temp
from inpaintlab.settings import check_train

APP = [sys.executable, "-m"]
DVC_APP = ["--config-dir", ".", "--config-name", "params", "hydra.output_subdir=null"]


MLFLOW_LOG = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO mlflow")  # MLflow's store set-up


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and not MLFLOW_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- 1. safe loading -----------------------------------------------------------------------------


class RunsACommand:
    """Pickles to os.system(<command>): what a crafted checkpoint hides."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def crafted_checkpoints(tmp_path: Path, compose_cfg) -> dict[str, Path]:
    """A checkpoint whose pickle runs a command, and a plain one whose hyperparameters name
    `_target_: os.system` (weights_only lets plain dicts through; instantiate would run it)."""
    marker = tmp_path / "pwned"
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "x": RunsACommand(f"touch {marker}")}, pickled)
    cfg = compose_cfg("experiment=ci")
    from omegaconf import OmegaConf

    model = OmegaConf.to_container(cfg.model, resolve=True)
    model["generator"] = {"_target_": "os.system", "command": f"touch {marker}"}
    hp = {
        "model": model,
        "loss": dict(cfg.loss),
        "optim": OmegaConf.to_container(cfg.optim),
        "num_samples": 1,
    }
    target = tmp_path / "target.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": hp}, target)
    sneaky = tmp_path / "sneaky.ckpt"  # a module of inpaintlab.models that imports os
    hp_sneaky = hp | {
        "model": model
        | {
            "generator": {
                "_target_": "inpaintlab.models.unet.os.system",
                "command": f"touch {marker}",
            }
        }
    }
    torch.save({"state_dict": {}, "hyper_parameters": hp_sneaky}, sneaky)
    return {"pickled": pickled, "target": target, "sneaky": sneaky, "marker": marker}


def test_a_crafted_checkpoint_is_refused_with_one_line_and_runs_nothing(tmp_path, compose_cfg):
    files = crafted_checkpoints(tmp_path, compose_cfg)
    for name in ("pickled", "target", "sneaky"):
        with pytest.raises(UserError, match="refusing") as err:
            load_generator(str(files[name]))
        assert "\n" not in str(err.value)
    assert not files["marker"].exists()

    # the stage apps: evaluate and export refuse it with one line and exit 2, nothing runs
    env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    for stage, name in (("evaluate", "pickled"), ("export", "target"), ("evaluate", "sneaky")):
        done = subprocess.run(
            [
                *APP,
                f"inpaintlab.{stage}",
                "experiment=ci",
                f"{stage}.checkpoint={files[name]}",
                f"hydra.run.dir={tmp_path / 'hydra'}",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr  # a UserError: nothing done
        assert "refusing" in one_error_line(done.stderr)
        assert not files["marker"].exists(), f"{stage} ran the crafted checkpoint's command"


def test_checkpoints_hold_only_plain_values(tmp_path, compose_cfg):
    """What training saves (Lightning's full checkpoint with optimizer, loops and the run's
    random states; the weights-only best) loads with weights_only=True."""
    from test_adversarial import module_for, random_batches
    from torch.utils.data import DataLoader

    from inpaintlab.checkpoints import AtomicCheckpointIO
    from inpaintlab.recorder import RunRecorder
    from inpaintlab.train import make_trainer

    module, cfg = module_for(compose_cfg, "model.ema_decay=0.5")
    recorder = RunRecorder()
    trainer = make_trainer(
        cfg.trainer,
        module,
        max_epochs=1,
        logger=False,
        callbacks=[recorder],
        enable_checkpointing=False,
        enable_progress_bar=False,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(tmp_path),
    )
    recorder.on_train_start = lambda *a: None  # no run folder here: just the states
    recorder.on_train_epoch_end = lambda *a: None
    recorder.on_train_epoch_start = lambda *a: None
    train = DataLoader(random_batches(8, 32, seed=1), batch_size=4)
    trainer.fit(module, train, DataLoader(random_batches(4, 32, seed=2), batch_size=4))
    trainer.save_checkpoint(tmp_path / "full.ckpt", weights_only=False)
    full = load_checkpoint(tmp_path / "full.ckpt")
    assert {"optimizer_states", "lr_schedulers", "callbacks", "loops"} <= set(full)
    assert "rng" in full["callbacks"]["RunRecorder"]
    generator, _ = load_generator(str(tmp_path / "full.ckpt"))
    assert sum(p.numel() for p in generator.parameters()) > 0


# --- 6. bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.generator.lr=abc", "optim.generator.lr must be a number > 0, got 'abc'"),
        ("optim.generator.lr=0", "optim.generator.lr must be a number > 0"),
        ("optim.generator.betas=[0.9]", "optim.generator.betas"),
        ("optim.discriminator.lr=-1", "optim.discriminator.lr must be a number > 0"),
        ("optim.scheduler.warmup_fraction=2", "optim.scheduler.warmup_fraction"),
        ("optim.scheduler.final_fraction=abc", "optim.scheduler.final_fraction"),
        ("model.ema_decay=1.0", "model.ema_decay must be a number >= 0 and < 1"),
        ("datamodule.batch_size=0", "datamodule.batch_size must be an integer >= 1"),
        ("datamodule.batch_size=2.5", "datamodule.batch_size must be an integer"),
        ("datamodule.num_workers=-1", "datamodule.num_workers"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be an integer >= 1"),
        ("trainer.max_epochs=ten", "trainer.max_epochs"),
        ("trainer.precision=16bit", "trainer.precision must be one of"),
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"),
        ("data.image_size=30", "data.image_size must be a multiple of 8"),
        ("data.image_size=big", "data.image_size must be an integer"),
        ("data.prepared_dir=5", "data.prepared_dir must be a non-empty string"),
        ("mask.generator.weights.box=abc", "mask.generator.weights.box must be float, got 'abc'"),
        ("mask.generator.generators.box.min_size=abc", "generators.box.min_size must be float"),
        ("mask.max_tries=1.5", "mask.max_tries must be int"),
        ("model.generator.base_channels=abc", "model.generator.base_channels must be int"),
        ("datamodule.augment.train.0.p=1.5", "datamodule.augment.train[0].p"),
        ("loss.hole_l1=-1", "loss.hole_l1"),
        ("seed=abc", "seed must be an integer"),
        ("train.resume=perhaps", "train.resume must be true or false"),
        ("logger.num_samples=-1", "logger.num_samples"),
    ],
)
def test_bad_values_are_one_line_errors(compose_cfg, override, message):
    with pytest.raises(UserError) as err:
        check_train(compose_cfg("experiment=ci", override))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ranges_checked_by_the_classes_are_one_line_errors_before_anything_is_created(tmp_path):
    """A value the mask classes reject (a negative probability, min_area above max_area) and a
    mistyped learning rate, through the real app: exit 1, one line, and neither an MLflow store
    nor a run folder was created."""
    project = tmp_path / "project"
    project.mkdir()
    for override, message in [
        ("optim.generator.lr=abc", "optim.generator.lr must be a number > 0, got 'abc'"),
        ("mask.generator.weights.box=-1", "MixedMask: weights must be >= 0"),
    ]:
        done = subprocess.run(
            [*APP, "inpaintlab.train", "experiment=ci", override, "hydra.run.dir=hy"],
            cwd=project,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr  # a UserError: nothing done
        assert message in one_error_line(done.stderr)
        assert sorted(p.name for p in project.iterdir()) == ["hy"], list(project.iterdir())
        assert not (project / "mlflow.db").exists() and not (project / "logs").exists()


# --- 7. files: the umask ---------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "metrics" / "train.json", {"a": 1})
        save_atomic({"w": torch.zeros(2)}, tmp_path / "model.ckpt")
        tmp = write_temp(tmp_path / "plots" / "train_history.csv", "epoch\n")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    for path in (tmp_path / "metrics" / "train.json", tmp_path / "model.ckpt", tmp):
        assert path.stat().st_mode & 0o777 == expected, (path, oct(path.stat().st_mode))


# --- 4. prepare: a lock and unique temp folders --------------------------------------------------


HOLD_LOCK = """
import sys, time
from inpaintlab.files import FileLock
lock = FileLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_prepare_stops_with_one_line_and_concurrent_ones_stay_consistent(tmp_path):
    project = ci_project(tmp_path / "project")
    # 1. another process holds the prepared folder's lock: prepare stops with one line
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(project / "data/.prepared.lock")],
        env=clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        done = subprocess.run(
            [*APP, "inpaintlab.prepare", "experiment=ci", "hydra.run.dir=logs/hy"],
            cwd=project,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2  # a UserError: nothing done
        line = one_error_line(done.stderr)
        assert "another prepare is writing data/prepared" in line and f"pid {holder.pid}" in line
        assert not (project / "data/prepared").exists()
    finally:
        holder.kill()
        holder.wait()

    # 2. three prepares at once: each finishes or stops with that line; the result is whole
    cmd = [*APP, "inpaintlab.prepare", "experiment=ci"]
    runs = [
        subprocess.Popen(
            [*cmd, f"hydra.run.dir=logs/hy{i}"],
            cwd=project,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    assert any(code == 0 for code, _ in results), results
    for code, stderr in results:
        assert code == 0 or "another prepare is writing" in one_error_line(stderr), stderr
    manifest = json.loads((project / "data/prepared/manifest.json").read_text())
    names = {
        s: {p.name for p in (project / "data/prepared" / s).glob("*.png")}
        for s in manifest["counts"]
    }
    counts = dict(manifest["counts"], val=manifest["val_images"])  # val: with its crops
    assert {s: len(n) for s, n in names.items()} == counts
    stems = {n.split(".")[0] for files in names.values() for n in files}  # <stem>.<k>.png: a crop
    assert len(stems) == sum(manifest["counts"].values()) == 40  # no photo in two splits
    leftovers = [
        p.name for p in (project / "data").iterdir() if ".tmp" in p.name or ".old" in p.name
    ]
    assert leftovers == []


# --- 5. no stale runs ------------------------------------------------------------------------------


OPEN_A_RUN = """
import sys, time
from mlflow.tracking import MlflowClient
from inpaintlab import tracking
uri, experiment_id = sys.argv[1], sys.argv[2]
run = MlflowClient(tracking_uri=uri).create_run(experiment_id, tags=tracking.process_tags())
print(run.info.run_id, flush=True)
time.sleep(300)
"""


def test_a_run_whose_process_died_is_marked_killed(tmp_path):
    """A real process opens an MLflow run and is SIGKILLed: the next training start (its
    tracking.close_dead_runs) marks the run KILLED. A live process's run, and one from another
    host, stay RUNNING."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = tracking.ensure_experiment("inpaintlab", uri)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_A_RUN, uri, experiment_id],
            env=clean_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    dead, alive = (p.stdout.readline().strip() for p in procs)
    client = MlflowClient(tracking_uri=uri)
    elsewhere = client.create_run(
        experiment_id, tags=tracking.process_tags() | {"inpaintlab.host": "another-host"}
    ).info.run_id
    try:
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        assert client.get_run(dead).info.status == "RUNNING"  # what the UI showed forever
        assert tracking.close_dead_runs(uri, experiment_id) == [dead]
        assert client.get_run(dead).info.status == "KILLED"
        assert "was gone" in client.get_run(dead).data.tags["inpaintlab.closed"]
        assert client.get_run(alive).info.status == "RUNNING"
        assert client.get_run(elsewhere).info.status == "RUNNING"
    finally:
        procs[1].kill()
        procs[1].wait()
    assert tracking.close_dead_runs(uri, experiment_id) == [alive]


# --- 2. publishing: a publisher killed half way ---------------------------------------------------


PUBLISH_AND_DIE = """
import os, signal, sys
from pathlib import Path
from inpaintlab import runs

work, key, die_after = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
fingerprint = runs.Fingerprint({"seed": int(key[-1])}, {}, "data")
run = runs.open_run(work, fingerprint, resume=True, max_epochs=1, say=print)
runs.stage(run, {name: f"{name} of run {key}" for name in ("a.ckpt", "b.json", "c.csv")})
copied = []
original = runs._copy_into_place
def copy_then_maybe_die(source, target):
    original(source, target)
    copied.append(target)
    if len(copied) == die_after:
        os.kill(os.getpid(), signal.SIGKILL)  # killed between two files of the publish
runs._copy_into_place = copy_then_maybe_die
targets = [runs.Target(work / "out" / n, n) for n in ("a.ckpt", "b.json", "c.csv")]
runs.publish(work, run, targets)
print(run.key)
"""


def test_a_publisher_killed_half_way_is_completed_from_its_staged_files(tmp_path):
    """Run 1 publishes; run 2 is SIGKILLed after copying one of its three files; DVC (say) then
    deletes the outputs. The next publisher (or training start) first completes run 2's publish
    from its staged copies: the three files are all run 2's, never a mix."""
    work = tmp_path / "logs"
    out = work / "out"
    first = subprocess.run(
        [sys.executable, "-c", PUBLISH_AND_DIE, str(work), "run1", "0"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert sorted(p.read_text() for p in out.iterdir()) == [
        f"{n} of run run1" for n in ("a.ckpt", "b.json", "c.csv")
    ]
    killed = subprocess.run(
        [sys.executable, "-c", PUBLISH_AND_DIE, str(work), "run2", "1"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    contents = sorted(p.read_text().split()[-1] for p in out.iterdir())
    assert contents == ["run1", "run1", "run2"]  # what a reader sees right after the kill
    assert (work / "publish.json").exists()
    (out / "a.ckpt").unlink()  # DVC removes a stage's outputs before it runs the stage again
    from inpaintlab import runs

    key = runs.recover(work)
    state = runs.read_state(work / "runs" / key)
    assert state["fingerprint"]["config"] == {"seed": 2} and state["status"] == "published"
    assert {p.read_text().split()[-1] for p in out.iterdir() if p.is_file()} == {"run2"}
    assert sorted(p.name for p in out.iterdir()) == ["a.ckpt", "b.json", "c.csv"]  # no temp left
    assert not (work / "publish.json").exists()
    assert json.loads((work / "published.json").read_text())["run"] == key


# --- 2./3. interrupts and resume: one real training --------------------------------------------


def train_cmd(*overrides: str) -> list[str]:
    return [
        *APP,
        "inpaintlab.train",
        *DVC_APP,
        "hydra.run.dir=logs/hydra/test",
        "trainer.enable_progress_bar=false",
        *overrides,
    ]


def run_states(project: Path) -> dict[str, dict]:
    folder = project / "logs/train/runs"
    return {
        p.name: json.loads((p / "run.json").read_text())
        for p in sorted(folder.glob("*"))
        if (p / "run.json").is_file()
    }


def start_and_signal(
    project: Path, cmd: list[str], signum: int, after_epochs: int, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Start cmd (own process group) and send signum to the group once one of its trainings has
    `after_epochs` epochs done (SIGTERM/SIGINT: to the group, as a CI cancel or Ctrl-C does)."""
    process = subprocess.Popen(
        cmd,
        cwd=project,
        env=env or clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        for state in run_states(project).values():
            try:
                in_group = os.getpgid(int(state["process"]["pid"])) == process.pid
            except (OSError, KeyError, ValueError):
                in_group = False
            if in_group and state["status"] == "running" and state["epochs_done"] >= after_epochs:
                os.killpg(process.pid, signum)
                deadline = 0
                break
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=600)
    while True:  # every process of the group has exited (dvc's child after SIGTERM)
        try:
            os.killpg(process.pid, 0)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.1)
    return subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)


def outputs(project: Path) -> dict[str, bytes]:
    names = ["models/model.ckpt", "metrics/train.json", "plots/train_history.csv"]
    return {n: (project / n).read_bytes() for n in names if (project / n).exists()}


def consistent(project: Path) -> dict:
    """The published checkpoint's record, after checking train.json and the history are its own."""
    info = load_checkpoint(project / "models/model.ckpt")["inpaintlab"]
    assert (
        hashlib.sha256((project / "metrics/train.json").read_bytes()).hexdigest()
        == info["train_json_sha256"]
    )
    assert (
        hashlib.sha256((project / "plots/train_history.csv").read_bytes()).hexdigest()
        == info["history_sha256"]
    )
    return info


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    project = ci_project(tmp_path_factory.mktemp("faults") / "project")
    run_ok([*APP, "inpaintlab.params", "experiment=ci", "trainer.max_epochs=6"], project)
    run_ok([*APP, "inpaintlab.prepare", *DVC_APP, "hydra.run.dir=logs/hydra/prepare"], project)
    return project


def test_sigterm_stops_with_one_line_marks_killed_and_the_rerun_resumes(prepared):
    """SIGTERM mid-training: exit 143, one line naming the last checkpoint (which exists), the
    MLflow run KILLED, the outputs as they were; the same command again resumes from that epoch in
    the same MLflow run and ends with every epoch, files following the umask (027)."""
    project = prepared
    before = outputs(project)  # the committed train.json and history (DVC outputs kept in git)
    done = start_and_signal(project, train_cmd(), signal.SIGTERM, after_epochs=2)
    assert done.returncode == 143, done.stderr
    line = one_error_line(done.stderr)
    assert line.startswith("error: training interrupted by SIGTERM (") and "epochs done" in line
    last = Path(line.split("last checkpoint ", 1)[1].split(";")[0])
    assert (project / last).is_file()
    assert outputs(project) == before  # nothing of the killed run published
    [(key, state)] = run_states(project).items()
    assert state["status"] == "interrupted" and state["epochs_done"] >= 2
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    run_id = state["mlflow"]["run_id"]
    assert client.get_run(run_id).info.status == "KILLED"

    previous = os.umask(0o027)
    try:
        output = run_ok(train_cmd(), project)
    finally:
        os.umask(previous)
    assert f"resuming from epoch {state['epochs_done']}" in output
    info = consistent(project)
    assert info["run"] == key and info["mlflow_run_id"] == run_id
    assert (
        f"published models/model.ckpt, metrics/train.json and plots/train_history.csv from run {key}"
        in output
    )
    assert json.loads((project / "metrics/train.json").read_text())["epochs"] == 6
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_psnr")] == list(range(6))
    for name in outputs(project):
        assert (project / name).stat().st_mode & 0o777 == 0o640, name


# --- slow: the full scenarios ----------------------------------------------------------------------


@pytest.mark.slow
def test_interrupted_and_resumed_runs_match_an_uninterrupted_one(prepared):
    """Uninterrupted 6 epochs as the reference. Then SIGTERM after 2 epochs; a re-run with a
    changed learning rate starts fresh and says why (stopped with SIGINT); `train.resume=false`
    starts fresh and says so (SIGKILLed: its MLflow run stays RUNNING); the original command
    then marks that dead run KILLED, resumes the newest matching run and publishes outputs
    byte-identical to the reference, logged into the resumed MLflow run."""
    project = prepared
    run_ok(train_cmd(), project)
    reference = outputs(project)
    reference_run = consistent(project)["run"]

    first = start_and_signal(project, train_cmd(), signal.SIGTERM, after_epochs=2)
    assert first.returncode == 143
    assert outputs(project) == reference  # the previous run's outputs, untouched

    changed = start_and_signal(
        project, train_cmd("optim.generator.lr=0.003"), signal.SIGINT, after_epochs=1
    )
    assert changed.returncode == 130, changed.stderr
    assert "optim.generator.lr 0.002 -> 0.003; starting fresh" in changed.stdout, changed.stdout
    assert "training interrupted by SIGINT" in changed.stderr

    forced = start_and_signal(
        project, train_cmd("train.resume=false"), signal.SIGKILL, after_epochs=3
    )
    assert forced.returncode == -signal.SIGKILL
    assert "train.resume=false: starting fresh" in forced.stdout
    states = run_states(project)
    killed_key = max(k for k, s in states.items() if s["status"] == "running")
    killed_id = states[killed_key]["mlflow"]["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert client.get_run(killed_id).info.status == "RUNNING"

    output = run_ok(train_cmd(), project)
    assert f"resuming from epoch {states[killed_key]['epochs_done']} (run {killed_key}" in output
    assert "was gone" in client.get_run(killed_id).data.tags["inpaintlab.closed"]
    assert client.get_run(killed_id).info.status == "FINISHED"
    assert f"replacing those of run {reference_run}" in output
    now = outputs(project)
    for name in ("metrics/train.json", "plots/train_history.csv"):
        assert now[name] == reference[name], name  # resumed = uninterrupted, to the byte
    assert consistent(project)["run"] == killed_key
    weights = load_checkpoint(project / "models/model.ckpt")["state_dict"]
    ref = torch.load(__import__("io").BytesIO(reference["models/model.ckpt"]), weights_only=True)
    assert all(torch.equal(weights[k], v) for k, v in ref["state_dict"].items())


@pytest.mark.slow
def test_dvc_repro_after_an_interrupt_resumes_and_ends_clean(tmp_path):
    project = ci_project(tmp_path / "project")
    run_ok([*APP, "inpaintlab.params", "experiment=ci", "trainer.max_epochs=6"], project)
    killed = start_and_signal(project, [str(BIN / "dvc"), "repro"], signal.SIGTERM, after_epochs=3)
    assert killed.returncode != 0
    [(key, state)] = run_states(project).items()
    assert state["status"] == "interrupted"
    output = run_ok([str(BIN / "dvc"), "repro"], project)
    assert f"resuming from epoch {state['epochs_done']} (run {key}" in output, output
    info = consistent(project)
    assert info["run"] == key and info["mlflow_run_id"] == state["mlflow"]["run_id"]
    assert json.loads((project / "metrics/train.json").read_text())["epochs"] == 6
    assert "up to date" in run_ok([str(BIN / "dvc"), "status"], project)
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("inpaintlab")
    [training] = client.search_runs([experiment.experiment_id])
    assert training.info.run_id == info["mlflow_run_id"] and training.info.status == "FINISHED"
    assert "test_box_psnr_masked" in training.data.metrics  # evaluate logged into the resumed run


@pytest.mark.slow
def test_two_trainings_at_once_never_swap_weights(prepared):
    """Two trainings of different widths at once: each has its own run folder, both exit 0 and
    say they published; the published checkpoint's weights fit its own config (a swap would not
    load), its train.json and history are its own, and its MLflow run has its own params."""
    project = prepared
    cmds = [
        train_cmd("model.generator.base_channels=8"),
        train_cmd("model.generator.base_channels=16"),
    ]
    procs = [
        subprocess.Popen(
            c,
            cwd=project,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in cmds
    ]
    results = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    keys = []
    for stdout, _ in results:
        [line] = [x for x in stdout.splitlines() if x.startswith("published ")]
        keys.append(line.split(" from run ")[1].split()[0])
    assert len(set(keys)) == 2
    info = consistent(project)
    assert info["run"] in keys
    generator, _ = load_generator(str(project / "models/model.ckpt"))
    channels = info["config"]["model"]["generator"]["base_channels"]
    state = run_states(project)[info["run"]]
    assert state["fingerprint"]["config"]["model.generator.base_channels"] == channels
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert client.get_run(info["mlflow_run_id"]).data.params[
        "model/generator/base_channels"
    ] == str(channels)
    last = json.loads((project / "logs/train/published.json").read_text())
    assert last["run"] == info["run"]
    published_last = results[keys.index(info["run"])][0]
    assert f"replacing those of run {keys[1 - keys.index(info['run'])]}" in published_last


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("faults", ROOT / "benchmarks" / "faults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["faults"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_fault_injection_loses_no_run_and_leaves_consistent_outputs(capsys):
    faults = _load_benchmark()
    assert faults.main(["--trials", "4", "--epochs", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "runs lost 0, outputs inconsistent 0" in out, out
