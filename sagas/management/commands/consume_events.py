"""`python manage.py consume_events [--partitions 0,1]`: run the event consumer of some partition queues.

One worker process with a pool of one and a prefetch of one: it takes the
next message only after the previous one is acknowledged, so each queue's
messages, hence each aggregate's events, are applied one at a time in queue
order. Scale out by running one such process per subset of partitions (every
partition in exactly one process).
"""
from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sagas.partitions import partition_queue


class Command(BaseCommand):
    help = "Start a Celery worker (pool of one) consuming the event partition queues events.<n>."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--partitions", default="", metavar="N,N",
                            help="comma-separated partition numbers (default: all of 0..EVENT_PARTITIONS-1)")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, partitions: str, loglevel: str, **options) -> None:
        numbers = self.parse_partitions(partitions)
        queues = ",".join(partition_queue(n) for n in numbers)
        suffix = "-".join(str(n) for n in numbers) if partitions else "all"
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1",
                "--prefetch-multiplier", "1", "-n", f"events-{suffix}@%h", "--without-gossip", "--without-mingle",
                f"--loglevel={loglevel}"]
        self.stdout.write(f"consuming {queues}")
        self.stdout.flush()
        os.execv(sys.executable, argv)

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
