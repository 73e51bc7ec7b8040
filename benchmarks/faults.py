"""Fault injection: kill `train` and `dvc repro` at random moments, re-run, check nothing is lost.

    python benchmarks/faults.py [--trials 16] [--epochs 30] [--seed 0] [--keep]

In a temp copy of the working tree with the CI dataset (experiment=ci, trainer.max_epochs=E), each
trial runs `python -m inpaintlab.train ...` (even trials) or `dvc repro` (odd trials) in its own
process group, sends SIGTERM, SIGINT or SIGKILL to the whole group at a random moment (start-up,
training, publishing, evaluate, export: uniform over the command's measured duration), then runs
the same command again to completion. Every trial trains a new seed, so `dvc repro` has work to do.

A trial counts as
- **fault injected** when the signal reached a live process;
- **run lost** when the re-run failed, or did not continue the killed training although that run
  had a checkpoint (a new run folder, a new MLflow run, or not `resuming from epoch N`);
- **outputs inconsistent** when, after the kill or after the re-run, models/model.ckpt,
  metrics/train.json and plots/train_history.csv are not all from one run (the checkpoint
  records the digests of the other two), the history has not E epochs, an MLflow run is left
  RUNNING, a temp file is left beside an output, `dvc status` is not clean after a `dvc repro`
  re-run, or SIGTERM/SIGINT during training gave exit code 0.

Prints one line per trial and the totals. Needs nothing but the project's venv; ~1 minute a trial
on a 2-core machine. tests/test_faults.py runs it with 4 trials (marked slow).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CI_DATA = ["--count", "40", "--size", "48", "--seed", "3", "--quiet"]
OUTPUTS = ["models/model.ckpt", "metrics/train.json", "plots/train_history.csv"]
TRAIN = [
    "-m",
    "inpaintlab.train",
    "--config-dir",
    ".",
    "--config-name",
    "params",
    "hydra.output_subdir=null",
    "hydra.run.dir=logs/hydra/faults",
]
SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]


def environment() -> dict[str, str]:
    """os.environ without MLflow/DVC settings, the venv first on PATH, this checkout's src first
    on PYTHONPATH (DVC stages and the app run this code), a git identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    src = str(ROOT / "src")
    return env | {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
        "GIT_AUTHOR_NAME": "faults",
        "GIT_AUTHOR_EMAIL": "faults@example.com",
        "GIT_COMMITTER_NAME": "faults",
        "GIT_COMMITTER_EMAIL": "faults@example.com",
    }


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout + done.stderr


def make_project(dest: Path, env: dict[str, str]) -> Path:
    """A fresh-clone copy of the working tree, as its own git repo, with the CI dataset tracked."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    run(["git", "init", "-q"], dest, env)
    run([str(BIN / "inpaintlab"), "data", "synth", "--out", "data/raw", *CI_DATA], dest, env)
    run([str(BIN / "dvc"), "add", "-q", "data/raw"], dest, env)
    return dest


def set_params(project: Path, env: dict[str, str], epochs: int, seed: int) -> None:
    run(
        [
            sys.executable,
            "-m",
            "inpaintlab.params",
            "experiment=ci",
            f"trainer.max_epochs={epochs}",
            "trainer.enable_progress_bar=false",
            f"seed={seed}",
        ],
        project,
        env,
    )


def run_states(project: Path) -> dict[str, dict]:
    runs_dir = project / "logs/train/runs"
    states = {}
    for folder in sorted(runs_dir.glob("*")) if runs_dir.is_dir() else []:
        try:
            states[folder.name] = json.loads((folder / "run.json").read_text())
        except (OSError, ValueError):
            continue
    return states


@dataclass
class Started:
    process: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.monotonic)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(cmd: list[str], project: Path, env: dict[str, str], log: Path) -> Started:
    """cmd in its own session (process group), output to log."""
    with open(log, "w") as handle:
        process = subprocess.Popen(
            cmd,
            cwd=project,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(process, log)


def signal_group(started: Started, signum: int) -> bool:
    """Send signum to the command's process group; False when it had already exited."""
    if started.process.poll() is not None:
        return False
    try:
        os.killpg(started.process.pid, signum)
    except ProcessLookupError:
        return False
    return True


def wait(started: Started, timeout: float = 900) -> int:
    """The command's exit code, once every process of its group has exited (after SIGTERM to
    `dvc repro` the training, its child, is still writing its last lines)."""
    try:
        code = started.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(started.process.pid, signal.SIGKILL)
        code = started.process.wait()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            os.killpg(started.process.pid, 0)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.1)
    return code


def wait_for_epochs(project: Path, epochs: int, started: Started, timeout: float = 600) -> dict:
    """Wait until a running training of this command (a run.json by a process of its group)
    has `epochs` done; returns that run's state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in run_states(project).values():
            process = state.get("process", {})
            if (
                state.get("status") == "running"
                and state.get("epochs_done", 0) >= epochs
                and _in_group(int(process.get("pid", -1)), started.process.pid)
            ):
                return state
        if started.process.poll() is not None:
            raise RuntimeError(f"exited before {epochs} epochs:\n{started.output()[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"no training reached {epochs} epochs in {timeout:.0f}s")


def _in_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) == group
    except OSError:
        return False


# --- consistency ---------------------------------------------------------------------------------


def outputs_problem(project: Path, epochs: int | None = None) -> str | None:
    """None when the three outputs are all absent or all from one run (with `epochs` epochs)."""
    present = [(project / name).exists() for name in OUTPUTS]
    if not any(present):
        return None if epochs is None else "outputs missing"
    if not all(present):
        return f"only {[n for n, p in zip(OUTPUTS, present, strict=True) if p]} present"
    import torch

    info = torch.load(project / OUTPUTS[0], map_location="cpu", weights_only=True)["inpaintlab"]
    digests = [hashlib.sha256((project / n).read_bytes()).hexdigest() for n in OUTPUTS[1:]]
    if digests != [info["train_json_sha256"], info["history_sha256"]]:
        return f"train.json/history not from run {info['run']} (the checkpoint's)"
    rows = (project / OUTPUTS[2]).read_text().strip().splitlines()[1:]
    if epochs is not None and len(rows) != epochs:
        return f"history has {len(rows)} epochs, expected {epochs}"
    for name in OUTPUTS:
        leftovers = [p.name for p in (project / name).parent.glob(f".{Path(name).name}.*.tmp")]
        if leftovers:
            return f"temp files left beside {name}: {leftovers}"
    return None


def running_runs(project: Path) -> list[str]:
    from mlflow.tracking import MlflowClient

    db = project / "mlflow.db"
    if not db.exists():
        return []
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("inpaintlab")
    if experiment is None:
        return []
    found = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    return [r.info.run_id for r in found]


def published_run(project: Path) -> tuple[str, str] | None:
    import torch

    if not (project / OUTPUTS[0]).exists():
        return None
    info = torch.load(project / OUTPUTS[0], map_location="cpu", weights_only=True)["inpaintlab"]
    return info["run"], info["mlflow_run_id"]


# --- trials ----------------------------------------------------------------------------------------


@dataclass
class Trial:
    number: int
    command: str
    signum: int
    delay: float
    injected: bool = False
    phase: str = ""
    killed_code: int | None = None
    lost: str | None = None
    inconsistent: str | None = None


def new_run(project: Path, before: set[str]) -> tuple[str, dict] | tuple[None, None]:
    """The training run folder this trial's command created, if any."""
    new = {k: v for k, v in run_states(project).items() if k not in before}
    return next(iter(new.items()), (None, None))


def phase(state: dict | None) -> str:
    if state is None:
        return "start-up"
    if state.get("status") == "running":
        return f"training (epoch {state.get('epochs_done', 0)})"
    return f"after training ({state.get('status')})"


def trial(
    project: Path, env: dict[str, str], number: int, args: argparse.Namespace, rng: random.Random
) -> Trial:
    command = "train" if number % 2 == 0 else "dvc repro"
    cmd = [sys.executable, *TRAIN] if command == "train" else [str(BIN / "dvc"), "repro"]
    set_params(project, env, args.epochs, seed=100 + number)
    window = args.train_seconds if command == "train" else args.repro_seconds
    result = Trial(number, command, rng.choice(SIGNALS), rng.uniform(1.0, window))
    # Half the trials aim at training itself (the few seconds of it are a small part of a run's
    # time): a random epoch, then a random moment within the next one.
    at_epoch = rng.randrange(args.epochs) if rng.random() < 0.5 else None
    within = rng.uniform(0.0, 1.0)
    before = set(run_states(project))
    logs = project / "logs" / "faults"
    logs.mkdir(parents=True, exist_ok=True)

    started = start(cmd, project, env, logs / f"{number:02d}-killed.log")
    if at_epoch is None:
        deadline = started.started + result.delay
        while time.monotonic() < deadline and started.process.poll() is None:
            time.sleep(0.02)
    else:
        try:
            wait_for_epochs(project, at_epoch, started, timeout=600)
            time.sleep(within * args.epoch_seconds)
        except RuntimeError:  # finished (or failed) before that epoch: nothing to aim at
            pass
        result.delay = time.monotonic() - started.started
    result.phase = phase(new_run(project, before)[1])
    result.injected = signal_group(started, result.signum)
    if not result.injected:
        result.phase = "already finished"
    result.killed_code = wait(started)

    key, state = new_run(project, before)
    unfinished = state is not None and state.get("status") != "published"
    had_checkpoint = (
        unfinished and (project / "logs/train/runs" / key / "checkpoints/last.ckpt").exists()
    )
    stopped = (
        result.injected and result.signum != signal.SIGKILL and result.phase.startswith("training")
    )
    if stopped and result.killed_code == 0:
        result.inconsistent = f"exit 0 after {signal.Signals(result.signum).name} during training"
    problem = outputs_problem(project)
    if problem and not result.inconsistent:
        result.inconsistent = f"after the kill: {problem}"

    rerun = start(cmd, project, env, logs / f"{number:02d}-rerun.log")
    code = wait(rerun)
    output = rerun.output()
    if code != 0:
        result.lost = f"re-run exited {code}: {output.strip().splitlines()[-1:]}"
        return result
    published = published_run(project)
    if unfinished:
        done = state.get("epochs_done", 0)
        mlflow_id = (state.get("mlflow") or {}).get("run_id")
        if published is None or published[0] != key:
            result.lost = f"re-run published run {published and published[0]}, not the killed {key}"
        elif mlflow_id and published[1] != mlflow_id:
            result.lost = f"re-run logged into MLflow run {published[1]}, not {mlflow_id}"
        elif had_checkpoint and done and f"resuming from epoch {done}" not in output:
            result.lost = f"re-run did not say `resuming from epoch {done}`"
    for problem in (
        outputs_problem(project, args.epochs),
        f"MLflow runs left RUNNING: {running_runs(project)}" if running_runs(project) else None,
    ):
        if problem and not result.inconsistent:
            result.inconsistent = problem
    if command == "dvc repro" and not result.inconsistent:
        status = run([str(BIN / "dvc"), "status"], project, env)
        if "up to date" not in status:
            result.inconsistent = f"dvc status after the re-run: {status.strip()[:200]}"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30, help="trainer.max_epochs of each run")
    parser.add_argument("--seed", type=int, default=0, help="seeds the signals and the moments")
    parser.add_argument("--train-seconds", type=float, default=0, help="kill window (0: measure)")
    parser.add_argument("--repro-seconds", type=float, default=0, help="kill window (0: measure)")
    parser.add_argument("--keep", action="store_true", help="keep the temp project")
    args = parser.parse_args(argv)
    env = environment()
    work = Path(tempfile.mkdtemp(prefix="inpaintlab-faults-"))
    project = make_project(work / "project", env)
    rng = random.Random(args.seed)
    try:
        # one clean pipeline first: prepare, and the durations the kill moments are drawn from
        set_params(project, env, args.epochs, seed=99)
        t0 = time.monotonic()
        run([str(BIN / "dvc"), "repro"], project, env)
        repro = time.monotonic() - t0
        set_params(project, env, args.epochs, seed=98)
        t0 = time.monotonic()
        run([sys.executable, *TRAIN], project, env)
        train = time.monotonic() - t0
        args.train_seconds = args.train_seconds or train
        args.repro_seconds = args.repro_seconds or repro
        trained = run_states(project)[max(run_states(project))]
        args.epoch_seconds = trained.get("seconds", 1.0) / max(1, args.epochs)
        print(
            f"project {project}; one train {train:.0f}s, one dvc repro {repro:.0f}s (kill windows)"
        )
        results = []
        for number in range(args.trials):
            result = trial(project, env, number, args, rng)
            results.append(result)
            name = signal.Signals(result.signum).name
            print(
                f"trial {number:2d} {result.command:9s} {name:7s} at {result.delay:5.1f}s "
                f"({result.phase}; exit {result.killed_code}): "
                f"lost={result.lost or 'no'} inconsistent={result.inconsistent or 'no'}",
                flush=True,
            )
        injected = sum(r.injected for r in results)
        lost = sum(r.lost is not None for r in results)
        inconsistent = sum(r.inconsistent is not None for r in results)
        print(
            f"trials {len(results)}, faults injected {injected}, runs lost {lost}, "
            f"outputs inconsistent {inconsistent}"
        )
        return 0 if lost == 0 and inconsistent == 0 else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
