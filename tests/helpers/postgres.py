"""A real PostgreSQL server for tests (tests/test_postgres_server.py): a fresh cluster in a temp
folder, listening on 127.0.0.1 and a free port, stopped and deleted on exit.

PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` system user
(Debian's `postgresql` package creates it) and its commands run through `runuser`. Local socket
connections (the superuser's, for set-up) are trusted; TCP connections, which is how MLflow
connects, need a password (scram-sha-256), as on a real server.

`postgres_missing()` says why no server can start here (None when one can); the test skips on it,
or fails where INPAINTLAB_REQUIRE_POSTGRES=1 (what .ci/run sets, after installing `postgresql`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from helpers.mlflow_server import free_port

SYSTEM_USER = "postgres"
SUPERUSER = "postgres"


def bin_dir() -> Path | None:
    """The server's bin folder (initdb, pg_ctl, psql, createdb): pg_ctl's on PATH (links
    resolved), else Debian's /usr/lib/postgresql/<version>/bin (the newest), which is not on PATH."""
    if found := shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    versions = [p for p in versions if p.parent.name.isdigit()]
    return max(versions, key=lambda p: int(p.parent.name)) if versions else None


def _as_root() -> bool:
    return os.geteuid() == 0


def postgres_missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    if bin_dir() is None:
        return "PostgreSQL is not installed (no pg_ctl; Debian: apt-get install postgresql)"
    if _as_root():
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root and there is no {SYSTEM_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


@dataclass
class Postgres:
    """A running cluster: TCP on host:port, the superuser through the socket in socket_dir."""

    host: str
    port: int
    socket_dir: Path
    bin: Path

    def command(self, tool: str, *args: str) -> list[str]:
        """A client tool (psql, createdb, ...) as the superuser over the local socket."""
        cmd = [str(self.bin / tool), "-h", str(self.socket_dir), "-p", str(self.port)]
        return _as_cluster_owner([*cmd, "-U", SUPERUSER, *args])

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser; its unaligned, tuples-only output."""
        cmd = self.command("psql", "-v", "ON_ERROR_STOP=1", "-At", "-d", database, "-c", sql)
        return _run(cmd).strip()

    def create_database(self, name: str, user: str, password: str) -> str:
        """A login role with a password and a database it owns (createuser + createdb, as a DBA
        would); returns the SQLAlchemy URL that connects to it over TCP."""
        self.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        _run(self.command("createdb", "-O", user, name))
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{name}"


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_USER, "--", *cmd] if _as_root() else cmd


def _run(cmd: list[str], log: Path | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        server_log = log.read_text()[-3000:] if log and log.exists() else ""
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {result.returncode}:\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}{server_log}"
        )
    return result.stdout


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """initdb a fresh cluster in a temp folder (under /tmp: pytest's own tmp folders are private
    to the user running the tests, which the postgres user cannot enter), start it with pg_ctl on
    127.0.0.1:<free port>, yield it; stop it (fast shutdown) and delete the folder on exit."""
    reason = postgres_missing()
    if reason:
        raise RuntimeError(reason)
    pg_bin = bin_dir()
    assert pg_bin is not None
    base = Path(tempfile.mkdtemp(prefix="inpaintlab-pg-", dir="/tmp" if _as_root() else None))
    if _as_root():
        owner = pwd.getpwnam(SYSTEM_USER)
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, log = base / "data", base / "postgres.log"
    port = free_port()
    server = Postgres("127.0.0.1", port, base, pg_bin)
    pg_ctl = [str(pg_bin / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        _run(
            _as_cluster_owner(
                [
                    str(pg_bin / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-locale",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
        )
        options = (
            f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off"  # a test cluster: no crash safety
        )
        _run(
            _as_cluster_owner([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"]),
            log,
        )
        started = True
        yield server
    finally:
        if started:
            try:
                _run(_as_cluster_owner([*pg_ctl, "-m", "fast", "-w", "-t", "30", "stop"]), log)
            except (RuntimeError, subprocess.TimeoutExpired):
                with suppress(RuntimeError, subprocess.TimeoutExpired):
                    _run(_as_cluster_owner([*pg_ctl, "-m", "immediate", "-w", "stop"]), log)
        shutil.rmtree(base, ignore_errors=True)
