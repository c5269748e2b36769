"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` in a temporary folder, ``pg_ctl``.

PostgreSQL is installed with apt (as root, or through passwordless sudo) when its binaries are missing, as
Chromium is for the browser tests. initdb refuses to run as root, so as root the cluster belongs to the
``postgres`` system account and every server command runs as that account (``runuser``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

from bench.apt import install_with_apt
from bench.served_app import free_port

#: The major version the deployment notes name; an installed newer one is used as it is.
MAJOR = 15
SEARCH = [Path("/usr/lib/postgresql") / str(MAJOR) / "bin", *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]


class PostgresMissing(RuntimeError):
    """PostgreSQL's server binaries are not here and could not be installed."""


def _binaries() -> Path | None:
    for folder in SEARCH:
        if (folder / "pg_ctl").exists() and (folder / "initdb").exists():
            return folder
    return None


def ensure_postgres() -> Path:
    """The folder with initdb and pg_ctl, installing the ``postgresql`` package when none is found."""
    if not install_with_apt("postgresql", lambda: _binaries() is not None):
        raise PostgresMissing("PostgreSQL is needed here: run `sudo apt-get install -y postgresql`")
    return _binaries()


def _as_server_account(command: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the ``postgres`` account when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private server on a free local port with trust authentication; yield its admin URL."""
    binaries = ensure_postgres()
    folder = Path(tempfile.mkdtemp(prefix="studio-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(_as_server_account([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                       "-E", "UTF8", "--no-sync"]), check=True, capture_output=True, timeout=300)
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {sockets} -c fsync=off -c max_connections=200"
    subprocess.run(_as_server_account([str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
                                       "-l", str(folder / "server.log"), "-w", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_account([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(admin_url: str, prefix: str = "studio") -> str:
    """Create an empty database on the server and return its URL (each test gets its own)."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
