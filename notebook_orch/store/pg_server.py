"""A throw-away PostgreSQL server on 127.0.0.1 for tests and benchmarks: ``initdb`` into a temporary folder, start,
create databases, stop and remove.

Uses the server binaries of the machine (Debian's ``postgresql`` package: /usr/lib/postgresql/NN/bin, or
``NBO_PG_BIN``). PostgreSQL refuses to run as root, so under root the binaries run as the unprivileged
``postgres`` user (``runuser``) on a folder handed over to it.

    with TemporaryPostgres() as server:
        url = server.create_database("scratch")   # postgresql+psycopg://postgres@127.0.0.1:PORT/scratch
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

_SEARCH = "/usr/lib/postgresql/*/bin"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (or they cannot be run); the message says how to get them."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb``/``pg_ctl``: ``NBO_PG_BIN``, else the newest /usr/lib/postgresql/NN/bin."""
    explicit = os.environ.get("NBO_PG_BIN")
    candidates = [Path(explicit)] if explicit else sorted(
        (Path(p) for p in glob.glob(_SEARCH)), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        f"No PostgreSQL server binaries found (looked in {explicit or _SEARCH}). Install them "
        "(apt-get install postgresql, as scripts/test.sh does) or set NBO_PG_BIN to the folder holding initdb."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryPostgres:
    """One PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:``port`` and a socket in that folder.

    ``durable=False`` (tests) turns fsync off: much faster, and the data is thrown away anyway. Benchmarks keep
    the defaults so their figures mean what a real server would do.
    """

    def __init__(self, *, durable: bool = False, user: str = "postgres") -> None:
        self.bin_dir = find_bin_dir()
        self.durable = durable
        self.port = 0
        self.root: Path | None = None
        self._run_as = user if os.geteuid() == 0 else None
        self._started = False

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> TemporaryPostgres:
        self.root = Path(tempfile.mkdtemp(prefix="nbo-pg-"))
        try:
            if self._run_as is not None:
                entry = pwd.getpwnam(self._run_as)
                os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                "--locale=C", "--no-sync",
            )
            settings = [
                "listen_addresses = '127.0.0.1'",
                f"unix_socket_directories = '{self.root}'",
                "max_connections = 100",
                "shared_buffers = 128MB",
            ]
            if not self.durable:
                settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
            with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
                conf.write("\n".join(settings) + "\n")
            # A port taken between free_port() and the server's bind: try a few times.
            for _attempt in range(5):
                self.port = free_port()
                try:
                    self._run(
                        "pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                        "-o", f"-p {self.port}", "start",
                    )
                    break
                except PostgresUnavailable:
                    if "could not bind" not in self.log():
                        raise
            else:
                raise PostgresUnavailable(f"PostgreSQL could not bind a port on 127.0.0.1:\n{self.log()}")
            self._started = True
            self._watch_owner()
            return self
        except BaseException:
            self.stop()
            raise

    def create_database(self, name: str) -> str:
        """Create database ``name`` (a plain identifier) and return its SQLAlchemy URL."""
        if not name.isidentifier():
            raise ValueError(f"database name {name!r} is not a plain identifier")
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database,
                             autocommit=True) as conn:
            conn.execute(sql)

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace") if self.root else ""
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder; safe to call twice."""
        if self.root is None:
            return
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            self._started = False
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _watch_owner(self) -> None:
        """A test run killed with SIGKILL (a CI timeout, xdist losing a worker) never reaches ``stop()``, and the
        server would outlive it, holding a port and a folder in /tmp. A detached shell stops the server and removes
        its folder once this process is gone."""
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
        if self._run_as is not None:
            pg_ctl = ["runuser", "-u", self._run_as, "--", *pg_ctl]
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; done; "
                  f"if [ -d {shlex.quote(str(self.data_dir))} ]; then {shlex.join(pg_ctl)} >/dev/null 2>&1; "
                  f"rm -rf {shlex.quote(str(self.root))}; fi")
        subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"Could not run {program}: {exc}") from exc
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{program} failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}\n"
                f"{self.log()[-2000:]}"
            )
