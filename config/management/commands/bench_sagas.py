"""Measure the saga engine: create-tournament sagas per second and their latency, against a bare chain.

    python manage.py bench_sagas --sagas 1000 --concurrency 16

Sagas are started through the service layer (`tournament_create`, as the API
does) by `--concurrency` threads; latency is the saga log's own start-to-
terminal time (`created_at` to `finished_at`). A light-load phase first runs
`--light` sagas one at a time. Then the same number of bare Celery chains of
the same length, no-op tasks hopping the same queues, give the engine's own
limit, and the ratio. Workers: the command uses running ones (`make run`), or
starts its own `celery worker` for the run when none answers.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from celery import chain
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from config.benchmarks import percentile, settings_warning
from config.celery import app
from sagas.definitions import CREATE_TOURNAMENT
from sagas.models import RUNNING_STATES, Saga
from scores.services import player_register
from tournament.services import tournament_create

BASE_DIR = Path(__file__).resolve().parents[3]
QUEUES = ("tournament", "scores", "sagas")
NOOP_TASK = "sagas.bench_noop"


def summary(label: str, count: int, seconds: float, latencies_ms: list[float]) -> str:
    return (f"{label:<28} {count:>5} in {seconds:6.2f} s = {count / seconds:7.1f}/s   latency ms p50 "
            f"{percentile(latencies_ms, .5):6.1f}  p95 {percentile(latencies_ms, .95):6.1f}  "
            f"p99 {percentile(latencies_ms, .99):6.1f}")


class Command(BaseCommand):
    help = "Benchmark create-tournament sagas (throughput, p50/p95/p99) against a bare Celery chain of equal length."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sagas", type=int, default=1000, help="sagas (and bare chains) under load")
        parser.add_argument("--concurrency", type=int, default=16, help="threads starting sagas at once")
        parser.add_argument("--light", type=int, default=50, help="sagas run one at a time first (light load)")
        parser.add_argument("--participants", type=int, default=2, help="players per tournament")
        parser.add_argument("--worker-concurrency", type=int, default=2,
                            help="pool size of the worker this command starts when none is running")
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for every saga")

    def handle(self, *args, sagas: int, concurrency: int, light: int, participants: int, worker_concurrency: int,
               timeout: float, **options) -> None:
        if sagas < 1 or concurrency < 1 or light < 0 or not 2 <= participants <= 256 or worker_concurrency < 1:
            raise CommandError("--sagas and --concurrency must be >= 1, --light >= 0, --participants 2..256",
                               returncode=2)
        if warning := settings_warning():
            self.stdout.write(warning)
        self.timeout = timeout
        self.run_id = uuid.uuid4().hex[:8]
        worker = None if self._workers_answer() else self._start_worker(worker_concurrency)
        try:
            players = [player_register(player_id=f"bench-{self.run_id}-{i}", name=f"Bench {i}").id
                       for i in range(max(participants * 4, 16))]
            rosters = [[players[(i + j) % len(players)] for j in range(participants)] for i in range(sagas)]
            self.stdout.write(f"create_tournament: {len(CREATE_TOURNAMENT.steps)} steps, {participants} "
                              f"participants; {sagas} sagas, {concurrency} threads")
            if light:
                self._bench_light(rosters[:light])
            saga_rate = self._bench_sagas(rosters, concurrency)
            chain_rate = self._bench_bare_chain(sagas, concurrency)
            self.stdout.write(f"saga / bare chain throughput ratio: {saga_rate / chain_rate:.2f}")
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)

    # WORKERS -------------------------------------------------------------------------------------------------

    def _workers_answer(self) -> bool:
        replies = app.control.inspect(timeout=1.0).active_queues() or {}
        served = {queue["name"] for queues in replies.values() for queue in queues}
        return set(QUEUES) <= served

    def _start_worker(self, concurrency: int) -> subprocess.Popen:
        self.stdout.write(f"no worker serves {', '.join(QUEUES)}: starting one (-c {concurrency}) for this run")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(QUEUES), "-c",
             str(concurrency), "-n", f"bench-{self.run_id}@%h", "--without-gossip", "--without-mingle",
             "--loglevel=WARNING"], cwd=BASE_DIR, env=os.environ.copy(), start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._workers_answer():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise CommandError("the benchmark worker did not start")
        return process

    # SAGAS ---------------------------------------------------------------------------------------------------

    def _start(self, roster: list[str]) -> str:
        return str(tournament_create(name=f"bench {self.run_id}", participants=roster).saga_id)

    def _start_in_thread(self, rosters: list[list[str]]) -> list[str]:
        # Like a web server's thread: persistent connections (CONN_MAX_AGE) across its requests.
        try:
            return [self._start(roster) for roster in rosters]
        finally:
            connections.close_all()  # this thread's own connections

    def _wait_terminal(self, saga_ids: list[str]) -> list[Saga]:
        deadline = time.monotonic() + self.timeout
        # Latency comes from the log's timestamps, not from this loop: a batch is polled gently (a query
        # naming 1,000 ids every 10 ms would take database time from the sagas it measures).
        interval = 0.01 if len(saga_ids) == 1 else 0.1
        while Saga.objects.using("sagas").filter(id__in=saga_ids, state__in=RUNNING_STATES).exists():
            if time.monotonic() > deadline:
                raise CommandError(f"sagas still running after {self.timeout} s")
            time.sleep(interval)
        return list(Saga.objects.using("sagas").filter(id__in=saga_ids))

    def _report(self, label: str, finished: list[Saga], seconds: float) -> float:
        states = Counter(saga.state for saga in finished)
        latencies = [(saga.finished_at - saga.created_at).total_seconds() * 1000 for saga in finished]
        self.stdout.write(summary(label, len(finished), seconds, latencies) + "   "
                          + ", ".join(f"{state} {n}" for state, n in sorted(states.items())))
        return len(finished) / seconds

    def _settle(self) -> None:
        """Wait until the service queues are empty: a phase must not pay for the previous one's leftovers.

        Relay kicks can outlive the sagas whose commits sent them; left in the
        queue they would slow the next phase (the bare chains most of all).
        """
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self._poll(lambda: not any(client.llen(queue) for queue in QUEUES))

    def _bench_light(self, rosters: list[list[str]]) -> None:
        self._settle()
        finished = []
        began = time.perf_counter()
        for roster in rosters:
            finished += self._wait_terminal([self._start(roster)])
        self._report("sagas, one at a time", finished, time.perf_counter() - began)

    def _bench_sagas(self, rosters: list[list[str]], concurrency: int) -> float:
        self._settle()
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            saga_ids = [saga_id for started in pool.map(self._start_in_thread,
                                                        [rosters[i::concurrency] for i in range(concurrency)])
                        for saga_id in started]
        started = time.perf_counter() - began
        self.stdout.write(f"  (all {len(saga_ids)} started in {started:.2f} s = {len(saga_ids) / started:.1f}/s, "
                          f"step 1 included)")
        finished = self._wait_terminal(saga_ids)
        return self._report(f"sagas, {concurrency} threads", finished, time.perf_counter() - began)

    # BARE CHAIN ----------------------------------------------------------------------------------------------

    def _bench_bare_chain(self, count: int, concurrency: int) -> float:
        """Run `count` chains of no-op tasks on the saga's queues; the last link reports its latency."""
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        key = f"bench:chain:{self.run_id}"
        queues = [step.queue for step in CREATE_TOURNAMENT.steps]
        self._settle()

        def send(_: int) -> None:
            links = [app.signature(NOOP_TASK, queue=queue, immutable=True) for queue in queues[:-1]]
            links.append(app.signature(NOOP_TASK, kwargs={"report_to": key, "started": time.time()},
                                       queue=queues[-1], immutable=True))
            chain(*links).apply_async()

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(send, range(count)))
        self._poll(lambda: client.llen(key) >= count)
        seconds = time.perf_counter() - began
        latencies = [float(value) * 1000 for value in client.lrange(key, 0, -1)]
        client.delete(key)
        self.stdout.write(summary(f"bare chains of {len(queues)} no-ops", count, seconds, latencies))
        return count / seconds

    def _poll(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while not done():
            if time.monotonic() > deadline:
                raise CommandError(f"the queues are still busy after {self.timeout} s")
            time.sleep(0.01)
