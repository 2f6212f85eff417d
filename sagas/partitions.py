"""Partition routing: every event of one aggregate goes to the same queue, `events.<n>`.

`n` is a stable hash of the partition key (the aggregate id) modulo
`EVENT_PARTITIONS`: CRC-32, identical in every process and every Python run
(the built-in `hash` is salted per process). Each queue is consumed one message
at a time, so one key's events are applied in the order the relay sent them.
Change `EVENT_PARTITIONS` only with the outboxes and queues drained: a key's
rows already published keep their old partition.
"""
import zlib

from django.conf import settings


def partition_for(partition_key: str) -> int:
    """Return the partition of `partition_key` (0 ≤ n < EVENT_PARTITIONS)."""
    return zlib.crc32(str(partition_key).encode()) % settings.EVENT_PARTITIONS


def partition_queue(partition: int, prefix: str | None = None) -> str:
    """Return the broker queue of a partition (a stored partition beyond the current count wraps)."""
    return f"{prefix or settings.EVENT_QUEUE_PREFIX}.{partition % settings.EVENT_PARTITIONS}"


def queue_for(partition_key: str) -> str:
    """Return the broker queue the events of `partition_key` travel on."""
    return partition_queue(partition_for(partition_key))


def all_partition_queues() -> list[str]:
    return [partition_queue(n) for n in range(settings.EVENT_PARTITIONS)]
