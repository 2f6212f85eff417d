"""Real Celery worker processes for integration tests (no eager mode)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
from django.conf import settings

from config.celery import app
from sagas.partitions import partition_queue
from tests.support.waiting import wait_until

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SERVICE_QUEUES = ("tournament", "scores", "sagas", "leaderboard")


class CeleryWorker:
    """A `celery worker` subprocess on the test settings, stopped or killed on demand."""

    def __init__(self, name: str, queues: tuple[str, ...] = SERVICE_QUEUES, concurrency: int = 2,
                 env: dict[str, str] | None = None, include: tuple[str, ...] = ()) -> None:
        self.name = name
        self.hostname = f"{name}@{socket.gethostname()}"
        self.queues = queues
        self.concurrency = concurrency
        self.env = env or {}
        self.include = ("tests.support.probe_tasks", *include)
        self.process: subprocess.Popen | None = None
        self.logfile = Path(tempfile.gettempdir()) / f"celery-{name}-{os.getpid()}.log"

    def start(self, timeout: float = 30.0) -> CeleryWorker:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **self.env}
        self.logfile.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(self.queues),
             "-c", str(self.concurrency), "-n", self.hostname, "-P", "prefork", "--include",
             ",".join(self.include), "--without-gossip", "--without-mingle", "--loglevel=INFO",
             "--logfile", str(self.logfile)],
            cwd=BASE_DIR, env=env, start_new_session=True,
        )
        wait_until(self.answers_ping, timeout=timeout, interval=0.2, message=f"worker {self.hostname} ready")
        return self

    def answers_ping(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"worker {self.hostname} exited; log:\n{self.log()}")
        return bool(app.control.ping(destination=[self.hostname], timeout=0.5))

    def pool_pids(self) -> list[int]:
        assert self.process is not None
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def kill(self) -> None:
        """SIGKILL the main process and its pool at once: nothing is acknowledged or rejected."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM); SIGKILL if it does not finish in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # any orphaned pool process
        except ProcessLookupError:
            pass

    def log(self) -> str:
        return self.logfile.read_text() if self.logfile.exists() else "<no log>"


class EventConsumers:
    """The events consumers as `consume_events` runs them: `processes` workers (pool of one) sharing the partitions."""

    def __init__(self, name: str, processes: int, env: dict[str, str] | None = None,
                 include: tuple[str, ...] = ()) -> None:
        partitions = list(range(settings.EVENT_PARTITIONS))
        self.workers = [CeleryWorker(f"{name}-{n}", queues=tuple(partition_queue(p) for p in partitions[n::processes]),
                                     concurrency=1, env=env, include=include)
                        for n in range(min(processes, len(partitions)))]

    def start(self, timeout: float = 30.0) -> EventConsumers:
        for worker in self.workers:
            worker.start(timeout=timeout)
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def log(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)
