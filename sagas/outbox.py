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
from typing import Any, NamedTuple

import redis
from celery import current_app
from django.conf import settings
from django.db import router, transaction
from django.utils import timezone

from config.raw_sql import insert_rows
from sagas.messages import Event
from sagas.messaging_models import AbstractOutboxMessage, OutboxStatus
from sagas.partitions import partition_for

logger = logging.getLogger(__name__)

RELAY_TASK = "sagas.relay_outbox"
NOTIFY_CHANNEL = "outbox_relay"


class OutsideTransactionError(RuntimeError):
    """`publish` was called outside the service's transaction."""


class Publication(NamedTuple):
    """One event to publish: what happened to which version of which aggregate, and why."""

    event: Event
    aggregate_id: str
    aggregate_version: int
    correlation_id: str = ""
    causation_id: str = ""


def publish(event: Event, *, outbox: type[AbstractOutboxMessage], aggregate_id: str, aggregate_version: int,
            correlation_id: str = "", causation_id: str = "") -> AbstractOutboxMessage:
    """Add `event` to `outbox` in the caller's transaction; it is delivered at least once after commit."""
    return publish_many([Publication(event, str(aggregate_id), aggregate_version, str(correlation_id or ""),
                                     str(causation_id or ""))], outbox=outbox)[0]


def publish_many(publications: Iterable[Publication], *,
                 outbox: type[AbstractOutboxMessage]) -> list[AbstractOutboxMessage]:
    """Add events to `outbox` in the caller's transaction, as one INSERT.

    The same guarantee as `publish` (each is delivered at least once after
    commit); the relay is kicked once for the lot.
    """
    using = router.db_for_write(outbox)
    if not transaction.get_connection(using).in_atomic_block:
        raise OutsideTransactionError(f"publish to {outbox.__name__} inside transaction.atomic(using={using!r})")
    now = timezone.now()
    rows = [
        outbox(
            type=event.TYPE,
            schema_version=event.SCHEMA_VERSION,
            aggregate_type=event.AGGREGATE_TYPE,
            partition_key=aggregate_id,
            partition=partition_for(aggregate_id),
            aggregate_version=aggregate_version,
            correlation_id=correlation_id,
            causation_id=causation_id,
            occurred_at=now,
            payload=event.to_payload(),
        )
        for event, aggregate_id, aggregate_version, correlation_id, causation_id in publications
    ]
    insert_rows(rows, using=using)
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
    connection = transaction.get_connection(using)
    # Django keeps no set of callbacks; a transaction that publishes 1,000 events needs one kick, not 1,000.
    if any(callback is _kick_relay for _savepoints, callback, _robust in connection.run_on_commit):
        return
    transaction.on_commit(_kick_relay, using=using, robust=True)


def _kick_relay() -> None:
    try:
        with current_app.producer_or_acquire() as producer:
            if not kick_flag_set(producer.channel):
                return  # a kick is on its way and its pass has not begun: that pass will see this commit
            try:
                # No publish retries: a broker outage must not stall the committed request; the tick covers it.
                current_app.send_task(RELAY_TASK, producer=producer, queue=settings.OUTBOX_RELAY_QUEUE,
                                      ignore_result=True, retry=False)
            except Exception:
                kick_flag_clear(producer.channel)
                raise
    except Exception:  # the broker is down: the beat tick sends the rows once it is back
        logger.warning("outbox kick not sent; the relay tick will send the rows", exc_info=True)


def redis_client(channel: Any) -> redis.Redis | None:
    """Return a broker channel's Redis client, or None on another broker (which keeps no kick flag)."""
    client = getattr(channel, "client", None)
    return client if isinstance(client, redis.Redis) else None


# KICK COALESCING: under load hundreds of commits a second each want a relay pass; one pending kick is enough,
# since every pass relays every outbox. The flag (a key on a Redis broker; other brokers get every kick) says
# "a kick was sent and its pass has not begun". A committer that finds it set sends nothing: the relay clears
# the flag before its pass reads any row, so that pass sees the commit. A flag whose kick was lost expires after
# KICK_FLAG_TTL_MS; meanwhile the beat tick relays.
KICK_FLAG_TTL_MS = 1000


def _kick_flag() -> str:
    return f"{settings.OUTBOX_RELAY_QUEUE}.kick"


def kick_flag_set(channel: Any) -> bool:
    """Set the kick flag; return False if it was already set (a kick is pending)."""
    client = redis_client(channel)
    return client is None or bool(client.set(_kick_flag(), 1, nx=True, px=KICK_FLAG_TTL_MS))


def kick_flag_clear(channel: Any) -> None:
    """Clear the kick flag: the pass about to start will see every commit so far."""
    client = redis_client(channel)
    if client is not None:
        client.delete(_kick_flag())


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
