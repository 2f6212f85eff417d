"""`python manage.py consume_events [--partitions 0,1] [--processes N]`: run the event consumers of partition queues.

Each consumer is one worker process with a pool of one and a prefetch of one:
it takes the next message only after the previous one is acknowledged, so each
queue's messages, hence each aggregate's events, are applied one at a time in
queue order. `--processes N` (default `EVENT_CONSUMER_PROCESSES`, 2: one per
core of a small machine) splits the partitions between N such workers, each
partition in exactly one of them, so order per partition holds while the work
uses several cores; this command then supervises them: it forwards SIGTERM /
SIGINT (a warm shutdown) and, if one worker exits, stops the others and exits
with its code, so the process manager restarts the whole set.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sagas.partitions import partition_queue


class Command(BaseCommand):
    help = "Start Celery workers (each a pool of one) consuming the event partition queues events.<n>."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--partitions", default="", metavar="N,N",
                            help="comma-separated partition numbers (default: all of 0..EVENT_PARTITIONS-1)")
        parser.add_argument("--processes", type=int, default=None, metavar="N",
                            help="worker processes sharing the partitions (default: EVENT_CONSUMER_PROCESSES)")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, partitions: str, processes: int | None, loglevel: str, **options) -> None:
        numbers = self.parse_partitions(partitions)
        processes = settings.EVENT_CONSUMER_PROCESSES if processes is None else processes
        if processes < 1:
            raise CommandError(f"--processes must be at least 1, got {processes}", returncode=2)
        groups = [numbers[n::processes] for n in range(min(processes, len(numbers)))]
        argvs = [self.worker_argv(group, loglevel) for group in groups]
        for group in groups:
            self.stdout.write(f"consuming {','.join(partition_queue(n) for n in group)}")
        self.stdout.flush()
        if len(argvs) == 1:
            os.execv(sys.executable, argvs[0])
        sys.exit(self.supervise(argvs))

    @staticmethod
    def worker_argv(partitions: list[int], loglevel: str) -> list[str]:
        queues = ",".join(partition_queue(n) for n in partitions)
        suffix = "-".join(str(n) for n in partitions)
        return [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1",
                "--prefetch-multiplier", "1", "-n", f"events-{suffix}@%h", "--without-gossip", "--without-mingle",
                f"--loglevel={loglevel}"]

    @staticmethod
    def supervise(argvs: list[list[str]]) -> int:
        """Run the workers until one exits (or a signal stops them); return the first exit code."""
        # Own process groups: a terminal's Ctrl-C reaches only this process, which asks each worker once
        # for a warm shutdown (a second SIGINT would make Celery stop cold, abandoning the task in hand).
        workers = [subprocess.Popen(argv, process_group=0) for argv in argvs]

        def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        _pid, status = os.wait()  # the first worker to exit, whatever the reason
        stop()
        for worker in workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        return os.waitstatus_to_exitcode(status)

    @staticmethod
    def parse_partitions(value: str) -> list[int]:
        if not value.strip():
            return list(range(settings.EVENT_PARTITIONS))
        try:
            numbers = sorted({int(part) for part in value.split(",")})
        except ValueError:
            raise CommandError(f"--partitions must be comma-separated numbers, got {value!r}", returncode=2) from None
        bad = [n for n in numbers if not 0 <= n < settings.EVENT_PARTITIONS]
        if bad:
            raise CommandError(f"partitions {bad} outside 0..{settings.EVENT_PARTITIONS - 1}", returncode=2)
        return numbers
