"""Tasks of the orchestrator (queue `sagas`): the errback every step carries, and the watchdog."""
import time
from functools import cache

import redis
from celery import shared_task
from django.conf import settings

from sagas.orchestrator import sagas_recover, step_failure


@shared_task(name="sagas.step_failed", ignore_result=True)
def step_failed(failed_task_id: str | None = None, *, saga_id: str, step: int, kind: str) -> str | None:
    """Ask the saga log what a step's final failure means (compensate, or FAILED). Called at least once.

    One positional argument on purpose: Celery sends such an errback as a
    task instead of calling it inline in the failing worker, where a crash
    would lose it.
    """
    return step_failure(saga_id=saga_id, step=step, kind=kind)


@shared_task(name="sagas.watchdog", ignore_result=True, soft_time_limit=50, time_limit=60)
def watchdog() -> str:
    """Re-drive sagas that made no progress within their deadline (beat runs this periodically)."""
    return str(sagas_recover())


@shared_task(name="sagas.bench_noop", ignore_result=True)
def bench_noop(report_to: str = "", started: float = 0.0) -> None:
    """Do nothing: a link of the bare chain `bench_sagas` compares the engine with; the last one reports."""
    if report_to:
        _bench_redis().rpush(report_to, time.time() - started)


@cache
def _bench_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)
