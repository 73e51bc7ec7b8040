"""A real MLflow tracking server for tests (test_server.py, test_ui.py): started on a free port of
127.0.0.1 in its own process group, ready once /health answers, stopped (the whole group) on exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from conftest import BIN, clean_env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mlflow exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"mlflow did not answer {url}/health within {timeout:.0f}s:\n{log.read_text()[-3000:]}"
    )


@contextmanager
def mlflow_server(
    workdir: Path,
    backend_uri: str,
    *extra_args: str,
    command: str = "server",
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> Iterator[str]:
    """`mlflow <command> --backend-store-uri <backend_uri> ... <extra_args>`; yields its base URL.
    Its output goes to <workdir>/mlflow-<port>.log; `env` adds variables (e.g. the auth app's);
    `workers` server processes (more than one needs a database server, not SQLite)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"mlflow-{port}.log"
    cmd = [
        str(BIN / "mlflow"),
        command,
        "--backend-store-uri",
        backend_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra_args,
    ]
    with open(log, "w") as handle:
        process = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=clean_env(**(env or {})),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # its own group: uvicorn and job runner too
    try:
        wait_healthy(url, process, log)
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the group this test started), then SIGKILL to
    whatever of that group is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    time.sleep(1)  # let the group's other members (job runner) finish their own shutdown
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
