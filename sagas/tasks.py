"""Tasks of the sagas app: the messaging backbone (relay, event delivery, gap checks, re-publishing)
and the saga orchestrator (the errback every step carries, the watchdog).

All ignore their results: their visible end state is in the tables (outbox
status, inbox, dead letters, the saga log).
"""
from __future__ import annotations

import logging
import time
from functools import cache

import redis
from celery import current_app, shared_task
from django.conf import settings

from sagas import inbox, relay
from sagas.orchestrator import sagas_recover, step_failure
from sagas.outbox import RELAY_TASK, kick_flag_clear, outbox_republish
from sagas.tables import outbox_model

logger = logging.getLogger(__name__)


# Per process: when the next deferred pass is already due (one at a time).
_deferred_pass_due = 0.0


@shared_task(name=RELAY_TASK, ignore_result=True, soft_time_limit=50, time_limit=60)
def relay_outbox(service: str | None = None) -> int:
    """Drain every outbox (`OUTBOX_RELAY_SERVICES`: these only) after a kick or on the beat tick; return rows sent.

    Clears the kick flag first (see `sagas.outbox`): commits from now on kick
    again. Partitions whose consumer is behind are deferred (back-pressure, see
    `sagas.relay`); one later pass is then scheduled to send their rows together.
    So is one when the order guard held rows (their predecessor may have
    committed just before the claim's snapshot yet after the pass began), and
    when another relay held a partition (a row may have committed after that
    relay's claim, and its kick found this pass), and when the time limit cut
    the drain short.
    `service` is ignored: kicks sent by earlier versions name the outbox that
    committed, and every pass serves it.
    """
    with current_app.producer_or_acquire() as producer:
        kick_flag_clear(producer.channel)
    reports = relay.relay_services(settings.OUTBOX_RELAY_SERVICES or None, max_seconds=30,
                                   max_waiting=settings.OUTBOX_MAX_WAITING_BATCHES)
    if any(report.left_behind for report in reports):
        _schedule_deferred_pass()
    return sum(report.sent for report in reports)


def _schedule_deferred_pass() -> None:
    global _deferred_pass_due
    now, delay = time.monotonic(), settings.OUTBOX_DEFERRED_PASS_SECONDS
    if delay <= 0 or _deferred_pass_due > now:
        return  # off (the beat tick relays them), or one is on its way
    relay_outbox.apply_async(countdown=delay, queue=settings.OUTBOX_RELAY_QUEUE, retry=False)
    _deferred_pass_due = now + delay


@shared_task(name="sagas.purge_outbox", ignore_result=True, time_limit=600)
def purge_outbox() -> dict[str, int]:
    """Delete SENT outbox rows older than OUTBOX_RETENTION_HOURS (each aggregate's newest row stays)."""
    return relay.purge_sent()


@shared_task(name=inbox.DELIVER_TASK, ignore_result=True, acks_late=True, max_retries=20, retry_backoff_max=60)
def deliver_events(envelopes: list, only_consumer: str | None = None) -> dict:
    """Apply an ordered batch of one partition's events; called at least once (redelivery is a no-op).

    Poison is dead-lettered inside; only transient errors (a database or
    broker down) escape and are retried with backoff for about a quarter of
    an hour. Events applied before the error are not applied twice; later
    batches meanwhile park behind the missing versions.
    """
    return inbox.deliver_batch(envelopes, only_consumer=only_consumer)


@shared_task(name=inbox.GAP_CHECK_TASK, ignore_result=True)
def check_gap(*, app_label: str, consumer: str, aggregate_type: str, aggregate_id: str, check: int = 1) -> str:
    """Apply or chase the missing versions of one aggregate for one consumer."""
    outcome = inbox.gap_check(app_label=app_label, consumer=consumer, aggregate_type=aggregate_type,
                              aggregate_id=aggregate_id, check=check)
    logger.info("gap check %s %s %s: %s", consumer, aggregate_type, aggregate_id, outcome)
    return outcome


@shared_task(name=inbox.REPUBLISH_TASK, ignore_result=True)
def republish(*, producer: str, aggregate_type: str, aggregate_id: str, versions: list[int]) -> int:
    """Re-send versions a consumer misses; runs on the producer's own queue, against its own outbox."""
    count = outbox_republish(outbox=outbox_model(producer), aggregate_type=aggregate_type,
                             aggregate_id=aggregate_id, versions=versions)
    logger.info("republish %s %s %s: %s rows", aggregate_type, aggregate_id, versions, count)
    return count


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
