"""Writing to a service's transactional outbox, and the operator's repairs of it.

`publish` is called inside the service function's own transaction: the event
row commits or rolls back with the business change, so an event is never
announced for a change that did not happen, nor lost for one that did. After
the commit, one kick per transaction wakes the relay so the event leaves within
milliseconds; the relay's beat tick (every second) is the safety net when a
kick is lost.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache

import redis
from celery import current_app
from django.conf import settings
from django.db import router, transaction
from django.utils import timezone

from sagas.messages import Event
from sagas.messaging_models import AbstractOutboxMessage, OutboxStatus
from sagas.partitions import partition_for

logger = logging.getLogger(__name__)

RELAY_TASK = "sagas.relay_outbox"
NOTIFY_CHANNEL = "outbox_relay"
KICK_KEY_PREFIX = "outbox:kick"


class OutsideTransactionError(RuntimeError):
    """`publish` was called outside the service's transaction."""


def publish(event: Event, *, outbox: type[AbstractOutboxMessage], aggregate_id: str, aggregate_version: int,
            correlation_id: str = "", causation_id: str = "") -> AbstractOutboxMessage:
    """Add `event` to `outbox` in the caller's transaction; it is delivered at least once after commit."""
    return publish_many([(event, str(aggregate_id), aggregate_version)], outbox=outbox,
                        correlation_id=correlation_id, causation_id=causation_id)[0]


def publish_many(events: Iterable[tuple[Event, str, int]], *, outbox: type[AbstractOutboxMessage],
                 correlation_id: str = "", causation_id: str = "") -> list[AbstractOutboxMessage]:
    """Add `(event, aggregate_id, aggregate_version)` triples to `outbox` in the caller's transaction, as one INSERT.

    The same guarantee as `publish` (each is delivered at least once after
    commit); the relay is kicked once for the lot.
    """
    using = router.db_for_write(outbox)
    if not transaction.get_connection(using).in_atomic_block:
        raise OutsideTransactionError(f"publish to {outbox.__name__} inside transaction.atomic(using={using!r})")
    now = timezone.now()
    rows = outbox.objects.using(using).bulk_create([
        outbox(
            type=event.TYPE,
            schema_version=event.SCHEMA_VERSION,
            aggregate_type=event.AGGREGATE_TYPE,
            partition_key=str(aggregate_id),
            partition=partition_for(str(aggregate_id)),
            aggregate_version=aggregate_version,
            correlation_id=str(correlation_id or ""),
            causation_id=str(causation_id or ""),
            occurred_at=now,
            payload=event.to_payload(),
        )
        for event, aggregate_id, aggregate_version in events
    ])
    if rows:
        kick_relay_on_commit(outbox._meta.app_label, using=using)
    return rows


def kick_relay_on_commit(app_label: str, *, using: str) -> None:
    """Wake the relay for `app_label`'s outbox once the current transaction commits (once per transaction).

    `OUTBOX_WAKEUP=kick` (the default) sends a relay task after commit;
    `notify` issues `NOTIFY outbox_relay` inside the transaction instead
    (PostgreSQL delivers it at commit, once per transaction) to wake a
    long-running `drain_outbox --loop --listen`.
    """
    if settings.OUTBOX_WAKEUP == "notify":
        with transaction.get_connection(using).cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, app_label])
        return
    kick = _relay_kick(app_label)
    connection = transaction.get_connection(using)
    # Django keeps no set of callbacks; a transaction that publishes 1,000 events needs one kick, not 1,000.
    if any(callback is kick for _savepoints, callback, _robust in connection.run_on_commit):
        return
    transaction.on_commit(kick, using=using, robust=True)


@cache
def _broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _kick_key(app_label: str) -> str:
    return f"{KICK_KEY_PREFIX}:{settings.OUTBOX_RELAY_QUEUE}:{app_label}"


@cache
def _relay_kick(app_label: str):
    def kick() -> None:
        key = _kick_key(app_label)
        try:
            # One kick waiting in the queue is enough: it has not started, so the rows this commit wrote will be
            # visible to it (the relay clears the key before it reads). Under load this saves a relay task per
            # commit. A lost kick task holds the key for OUTBOX_KICK_COALESCE_SECONDS; the beat tick covers that.
            if not _broker().set(key, 1, nx=True, px=int(settings.OUTBOX_KICK_COALESCE_SECONDS * 1000)):
                return
            # No publish retries: a broker outage must not stall the committed request; the tick covers it.
            current_app.send_task(RELAY_TASK, kwargs={"service": app_label, "kick": key},
                                  queue=settings.OUTBOX_RELAY_QUEUE, ignore_result=True, retry=False)
        except Exception:  # the broker is down: the beat tick sends the rows once it is back
            logger.warning("outbox kick for %s not sent; the relay tick will send the rows", app_label, exc_info=True)
            _kick_forget(key)
    kick.__qualname__ = f"kick_relay[{app_label}]"
    return kick


def kick_taken(key: str) -> None:
    """Let the next commit kick the relay again; the relay calls this before it reads the outbox."""
    _broker().delete(key)


def _kick_forget(key: str) -> None:
    try:
        _broker().delete(key)
    except Exception:  # the key expires on its own
        pass


def outbox_requeue(*, outbox: type[AbstractOutboxMessage], ids: Iterable[int]) -> int:
    """Put DEAD rows back to PENDING with a fresh attempt count; return how many."""
    using = router.db_for_write(outbox)
    with transaction.atomic(using=using):
        count = outbox.objects.using(using).filter(id__in=list(ids), status=OutboxStatus.DEAD).update(
            status=OutboxStatus.PENDING, attempts=0)
        if count:
            kick_relay_on_commit(outbox._meta.app_label, using=using)
    return count


def outbox_republish(*, outbox: type[AbstractOutboxMessage], aggregate_type: str, aggregate_id: str,
                     versions: Iterable[int]) -> int:
    """Send already-sent (or dead) versions of one aggregate again, on a consumer's request; return how many.

    A consumer that sees a version gap for too long asks for the missing
    versions; they are re-sent after later versions, which the consumer holds
    back until the gap closes.
    """
    using = router.db_for_write(outbox)
    with transaction.atomic(using=using):
        count = outbox.objects.using(using).filter(
            aggregate_type=aggregate_type, partition_key=aggregate_id, aggregate_version__in=list(versions),
            status__in=[OutboxStatus.SENT, OutboxStatus.DEAD],
        ).update(status=OutboxStatus.PENDING, attempts=0, sent_at=None)
        if count:
            kick_relay_on_commit(outbox._meta.app_label, using=using)
    return count
