"""A throwaway PostgreSQL server: the machine's initdb and pg_ctl, a temporary
data directory, a free loopback port.

PostgreSQL refuses to run as root, so when the suite runs as root the server
runs as the ``postgres`` user (Debian's package creates it).
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.support.redis_server import free_port

USER = "psm"
DATABASE = "postgres"


def find_binaries() -> Path | None:
    """The directory of initdb and pg_ctl, or ``None`` if there is none."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{directory}/initdb", os.X_OK):
            return Path(directory)
    return None


def missing_reason() -> str | None:
    """Why a PostgreSQL server cannot be started here, or ``None``."""
    if find_binaries() is None:
        return "PostgreSQL's initdb/pg_ctl are missing: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


class PostgresServer:
    """Start, stop and restart one server; its data survives a restart."""

    def __init__(self, port: int | None = None) -> None:
        binaries = find_binaries()
        if binaries is None:
            raise RuntimeError(missing_reason())
        self.binaries = binaries
        self.port = port or free_port()
        # /tmp itself, not pytest's tmp_path nor nox's TMPDIR (both inside
        # directories only root may enter): the postgres user must reach it
        self.directory = Path(tempfile.mkdtemp(prefix="psm-postgres-", dir="/tmp"))
        self.data = self.directory / "data"
        self.run_as = "postgres" if os.geteuid() == 0 else None
        if self.run_as:
            account = pwd.getpwnam(self.run_as)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        """An SQLAlchemy URL for psycopg 3."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.binaries / tool), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c max_connections=100"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l",
            str(self.directory / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def processes(self) -> list[int]:
        """The server's processes: the postmaster first, then its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            # pid (comm) state ppid ...: comm may hold spaces, not ")"
            if int(stat.rpartition(")")[2].split()[1]) == postmaster:
                children.append(int(entry.name))
        return [postmaster, *children]

    def pause(self) -> None:
        """SIGSTOP every process of the server: it hangs, its sockets stay open."""
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT every process of the server (paused by :meth:`pause`)."""
        for pid in self.processes():
            os.kill(pid, signal.SIGCONT)
