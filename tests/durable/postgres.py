"""A throwaway PostgreSQL cluster for the durable tests.

The durable engine's production database is Postgres, so its tests run against a real server:
`initdb` into a temporary folder, `pg_ctl start` on a free loopback port with trust auth and
`fsync=off` (nothing here needs to survive a power cut), one fresh database per test, and
`pg_ctl stop -m immediate` at the end. Each pytest-xdist worker process starts its own cluster, so
parallel workers never share a server.

`initdb` refuses to run as root; as root the cluster is created and run as the `postgres` user
(Debian's package creates it) in a folder that user owns.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
    "/usr/lib/postgresql/*/bin; install them with `apt-get install postgresql` (Debian/Ubuntu) "
    "to run the Postgres tests"
)
_START_TIMEOUT_S = 60
_ATTEMPTS = 3


def find_bin_dir() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`, or None when PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        folder = Path(candidate)
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """One running cluster: `url(name)` addresses a database on it, `create_database()` makes a
    fresh one."""

    bin_dir: Path
    root: Path
    port: int = 0
    _as_user: list[str] = field(default_factory=list)
    _names: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *argv],
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S,
            check=False,
            cwd=self.root,
        )

    def start(self) -> None:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root needs a `postgres` user for initdb; "
                    "`apt-get install postgresql` creates it"
                ) from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        done = self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        failures = []
        for _ in range(_ATTEMPTS):
            # A port found free can be taken before the server binds it: try another one.
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c max_connections=200"
            )
            done = self._run(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.log),
                "-t",
                str(_START_TIMEOUT_S),
                "-w",
                "start",
            )
            if done.returncode == 0:
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            failures.append(f"port {self.port}: {done.stdout}{done.stderr}{log[-2000:]}")
        raise RuntimeError("pg_ctl start failed:\n" + "\n".join(failures))

    def stop(self) -> None:
        if self.port:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_cluster() -> PostgresCluster:
    """Start a fresh cluster in a new temporary folder; the caller stops it with `stop_cluster`.
    Raises LookupError (with the install hint) when the binaries are missing."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise LookupError(INSTALL_HINT)
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as
    # `postgres`.
    root = Path(tempfile.mkdtemp(prefix="agent-runtime-pg-"))
    root.chmod(0o755)
    cluster = PostgresCluster(bin_dir=bin_dir, root=root)
    try:
        cluster.start()
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: PostgresCluster) -> None:
    """Stop the server and delete its folder."""
    try:
        cluster.stop()
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)
