"""`python manage.py bench_outbox`: relay throughput per batch size, and commit-to-effect latency.

Throughput: rows are inserted in the `sagas` outbox, then one relay drains
them to queues nobody consumes; messages/s = rows / drain time.

Latency: the command starts its own relay worker and events consumer (queues
of its own, so a running `make run` is not disturbed), commits one event at a
time (light load) and waits until the consumer's inbox row is committed:
with the after-commit kick, with LISTEN/NOTIFY waking a long-running
`drain_outbox --loop --listen`, and with only a relay tick every second (what
beat does).
"""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

from celery import current_app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from config.benchmarks import percentile, settings_warning
from sagas.bench import BENCH_AGGREGATE, BENCH_CONSUMER, BenchPinged
from sagas.management.commands.drain_outbox import positive_int
from sagas.models import ConsumerPosition, InboxMessage, OutboxMessage
from sagas.outbox import RELAY_TASK, publish
from sagas.partitions import partition_for
from sagas.relay import CeleryPublisher, relay_outbox

BENCH_ALIAS = "sagas"


def batch_size_list(value: str) -> list[int]:
    return [positive_int(part) for part in value.split(",")]


class Command(BaseCommand):
    help = "Benchmark the outbox relay (messages/s per batch size) and commit-to-effect latency (p50/p99)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rows", type=positive_int, default=20_000, help="rows per throughput run (default 20000)")
        parser.add_argument("--batch-sizes", type=batch_size_list, default=[1, 100, 1000],
                            help="comma-separated (default 1,100,1000)")
        parser.add_argument("--latency-events", type=positive_int, default=200,
                            help="events per latency run (default 200)")
        parser.add_argument("--skip-latency", action="store_true")

    def handle(self, *args, rows: int, batch_sizes: list[int], latency_events: int, skip_latency: bool,
               **options) -> None:
        run_id = uuid.uuid4().hex[:8]
        self.stdout.write(f"bench_outbox: {os.cpu_count()} CPUs, EVENT_PARTITIONS={settings.EVENT_PARTITIONS}, "
                          f"database {settings.DATABASES[BENCH_ALIAS]['NAME']}")
        if warning := settings_warning():
            self.stdout.write(warning)
        try:
            for size in batch_sizes:
                # one event per transaction at batch 1 is slow: fewer rows keep the run short
                count = min(rows, max(2_000, size * 100))
                rate = self.throughput(run_id, count, size)
                self.stdout.write(f"relay throughput  batch {size:>5}: {rate:>9,.0f} messages/s  ({count:,} rows)")
            if not skip_latency:
                self.latency(run_id, latency_events)
        finally:
            self.clean_up(run_id)

    # Throughput

    def throughput(self, run_id: str, count: int, batch_size: int) -> float:
        self.insert_rows(f"{run_id}-b{batch_size}", count)
        publisher = CeleryPublisher(queue_prefix=f"bench-{run_id}-sink")
        started = time.perf_counter()
        report = relay_outbox(OutboxMessage, batch_size=batch_size, publisher=publisher)
        elapsed = time.perf_counter() - started
        if report.sent != count:
            raise CommandError(f"relayed {report.sent} of {count} rows ({report.errors or 'another relay?'})")
        self.drop_queues(f"bench-{run_id}-sink.*")
        return count / elapsed

    def insert_rows(self, run_id: str, count: int) -> None:
        # 1,000 aggregates with several versions each, interleaved as live traffic is
        aggregates = min(count, 1_000)
        now = timezone.now()
        keys = [f"bench-{run_id}-{n}" for n in range(aggregates)]  # a fresh key space per run
        partitions = [partition_for(key) for key in keys]
        rows = [OutboxMessage(type=BenchPinged.TYPE, aggregate_type=BENCH_AGGREGATE, partition_key=keys[n % aggregates],
                              partition=partitions[n % aggregates], aggregate_version=n // aggregates + 1,
                              occurred_at=now, payload={"sequence": n})
                for n in range(count)]
        OutboxMessage.objects.using(BENCH_ALIAS).bulk_create(rows, batch_size=5_000)

    # Latency

    def latency(self, run_id: str, events: int) -> None:
        relay_queue, prefix = f"bench-{run_id}-relay", f"bench-{run_id}-events"
        env = {"OUTBOX_RELAY_QUEUE": relay_queue, "EVENT_QUEUE_PREFIX": prefix}
        consumer_queues = ",".join(f"{prefix}.{n}" for n in range(settings.EVENT_PARTITIONS))
        # Its relay worker sends only the bench's own outbox: a running system's rows stay with its own relay.
        relay_env = {**env, "OUTBOX_RELAY_SERVICES": BENCH_ALIAS}
        workers = [self.start_worker(f"bench-relay-{run_id}", relay_queue, relay_env),
                   self.start_worker(f"bench-events-{run_id}", consumer_queues, env, include="sagas.bench")]
        try:
            with override_settings(**env):
                samples = self.measure(run_id, "kick", events)
                self.report("after-commit kick", samples)
            listener = self.start_process([sys.executable, str(settings.BASE_DIR / "manage.py"), "drain_outbox",
                                           "--service", BENCH_ALIAS, "--loop", "--listen"], env)
            workers.append(listener)
            with override_settings(OUTBOX_WAKEUP="notify", **env):
                samples = self.measure(run_id, "notify", events)
                self.report("LISTEN/NOTIFY", samples)
            os.killpg(listener.pid, signal.SIGTERM)
            with override_settings(EVENT_QUEUE_PREFIX=prefix, OUTBOX_RELAY_QUEUE=f"bench-{run_id}-nokick"):
                ticking = threading.Event()
                ticker = threading.Thread(target=self.tick, args=(relay_queue, ticking), daemon=True)
                ticker.start()
                try:
                    samples = self.measure(run_id, "tick", max(20, events // 4))
                finally:
                    ticking.set()
                    ticker.join()
                self.report("beat tick alone (1 s)", samples)
        finally:
            for process in workers:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in workers:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

    def report(self, mode: str, samples: list[float]) -> None:
        self.stdout.write(f"commit-to-effect  {mode:<22} p50 {percentile(samples, 0.5):7.1f} ms   "
                          f"p99 {percentile(samples, 0.99):7.1f} ms   mean {statistics.mean(samples):7.1f} ms  "
                          f"({len(samples)} events)")

    def measure(self, run_id: str, mode: str, events: int) -> list[float]:
        samples = []
        inbox = InboxMessage.objects.using(BENCH_ALIAS).filter(consumer=BENCH_CONSUMER)
        for n in range(events + 5):
            with transaction.atomic(using=BENCH_ALIAS):
                row = publish(BenchPinged(sequence=n), outbox=OutboxMessage, aggregate_id=f"bench-{run_id}-{mode}",
                              aggregate_version=n + 1)
                committing = time.perf_counter()
            deadline = committing + 30
            while not inbox.filter(message_id=row.message_id).exists():
                if time.perf_counter() > deadline:
                    raise CommandError(f"event {n} not applied within 30 s ({mode})")
                time.sleep(0.0005)
            if n >= 5:  # the first events warm the workers' connections up
                samples.append((time.perf_counter() - committing) * 1000)
            time.sleep(0.01 if mode == "kick" else 0.05 + (n % 7) * 0.1)  # light load, off the tick's phase
        return samples

    @staticmethod
    def tick(queue: str, stop: threading.Event) -> None:
        """Send the relay task every second, as the beat entry `outbox-relay-tick` does."""
        while not stop.wait(1.0):
            current_app.send_task(RELAY_TASK, queue=queue, ignore_result=True)

    def start_worker(self, name: str, queues: str, env: dict[str, str], include: str = "") -> subprocess.Popen:
        hostname = f"{name}@bench"
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1", "-n", hostname,
                "--without-gossip", "--without-mingle", "--loglevel=WARNING"]
        if include:
            argv += ["--include", include]
        process = self.start_process(argv, env)
        deadline = time.monotonic() + 60
        while not current_app.control.ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"worker {name} did not start")
        return process

    @staticmethod
    def start_process(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # Clean-up

    def clean_up(self, run_id: str) -> None:
        OutboxMessage.objects.using(BENCH_ALIAS).filter(partition_key__startswith=f"bench-{run_id}-").delete()
        InboxMessage.objects.using(BENCH_ALIAS).filter(consumer=BENCH_CONSUMER).delete()
        ConsumerPosition.objects.using(BENCH_ALIAS).filter(consumer=BENCH_CONSUMER).delete()
        self.drop_queues(f"bench-{run_id}-*")

    @staticmethod
    def drop_queues(pattern: str) -> None:
        with current_app.connection_for_write() as connection:
            client = connection.default_channel.client
            for key in client.scan_iter(match=pattern):
                client.delete(key)
