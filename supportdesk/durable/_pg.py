"""A throwaway PostgreSQL cluster for tests and local runs (initdb + pg_ctl in a temp dir, loopback only).

    from supportdesk.durable._pg import start_temp_postgres

    pg = start_temp_postgres()          # None if no PostgreSQL binaries (or no way to run them)
    if pg is not None:
        try:
            use(pg.url)                 # postgresql://postgres@127.0.0.1:PORT/postgres
        finally:
            pg.stop()

As root the server runs as the ``postgres`` system user (PostgreSQL refuses to run as root) via
``runuser``. Authentication is ``trust`` on 127.0.0.1 only; never use this for real data.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TempPostgres", "find_pg_bin", "start_temp_postgres"]

logger = logging.getLogger(__name__)


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then /usr/lib/postgresql/*/bin)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TempPostgres:
    """A running throwaway cluster."""

    url: str
    data_dir: Path
    port: int
    _bin: Path
    _prefix: tuple[str, ...]
    _root: Path

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        subprocess.run(
            [*self._prefix, str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self._root, ignore_errors=True)


def start_temp_postgres(base_dir: Path | None = None, *, port: int | None = None) -> TempPostgres | None:
    """Start a cluster on 127.0.0.1 and return it, or None when it cannot be started (reason logged)."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        logger.info("no PostgreSQL binaries found (apt-get install -y postgresql)")
        return None
    prefix: tuple[str, ...] = ()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pg_user = None
        if runuser is None or pg_user is None:
            logger.info("running as root without a 'postgres' user or runuser: cannot start PostgreSQL")
            return None
        prefix = (runuser, "-u", "postgres", "--")
    root = Path(tempfile.mkdtemp(prefix="supportdesk-pg-", dir=base_dir))
    data_dir = root / "data"
    if prefix:
        os.chmod(root, 0o755)
        shutil.chown(root, user="postgres", group=None)
    port = port or _free_port()
    try:
        subprocess.run(
            [
                *prefix,
                str(pg_bin / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c max_connections=100"
        )
        subprocess.run(
            [
                *prefix,
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data_dir),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            check=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        logger.warning("could not start PostgreSQL: %s %s", exc, detail.decode(errors="replace")[-500:])
        shutil.rmtree(root, ignore_errors=True)
        return None
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    logger.info("temporary PostgreSQL running at %s (data in %s)", url, data_dir)
    return TempPostgres(url=url, data_dir=data_dir, port=port, _bin=pg_bin, _prefix=prefix, _root=root)
