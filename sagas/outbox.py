"""Writing to a service's transactional outbox.

`publish` is called inside the service function's own transaction: the event
row commits or rolls back with the business change, so an event is never
announced for a change that did not happen, nor lost for one that did.
"""
from __future__ import annotations

from django.db import router, transaction
from django.utils import timezone

from sagas.messages import Event
from sagas.messaging_models import AbstractOutboxMessage


class OutsideTransactionError(RuntimeError):
    """`publish` was called outside the service's transaction."""


def publish(event: Event, *, outbox: type[AbstractOutboxMessage], aggregate_id: str, aggregate_version: int,
            correlation_id: str = "", causation_id: str = "") -> AbstractOutboxMessage:
    """Add `event` to `outbox` in the caller's transaction; it is delivered at least once after commit."""
    using = router.db_for_write(outbox)
    if not transaction.get_connection(using).in_atomic_block:
        raise OutsideTransactionError(f"publish {event.TYPE} inside transaction.atomic(using={using!r})")
    return outbox.objects.using(using).create(
        type=event.TYPE,
        schema_version=event.SCHEMA_VERSION,
        aggregate_type=event.AGGREGATE_TYPE,
        partition_key=str(aggregate_id),
        aggregate_version=aggregate_version,
        correlation_id=str(correlation_id or ""),
        causation_id=str(causation_id or ""),
        occurred_at=timezone.now(),
        payload=event.to_payload(),
    )
