"""A probe consumer for the backbone's tests: it records every effect in a table of the leaderboard schema.

Loaded by the test process and by the events worker (`--include`). The
handler's effect is one row in `probe_effect`, written in the transaction the
framework opens, so a test sees exactly which versions were applied, in which
order, and how often. A payload value starting with "poison" makes it raise until `cure(value)`.
"""
from dataclasses import dataclass

from django.db import connections

from sagas.inbox import event_handler
from sagas.messages import Envelope, Event

PROBE_ALIAS = "leaderboard"
PROBE_CONSUMER = "probe.recorder"


@dataclass(frozen=True)
class ProbeTicked(Event):
    # Named after the producing service: the Match Engine's outbox carries it in these tests.
    TYPE = "tournament.ProbeTicked"
    AGGREGATE_TYPE = "tournament.Probe"

    value: str


class ProbePoisonError(ValueError):
    """The handler's non-transient failure."""


def create_effect_table() -> None:
    with connections[PROBE_ALIAS].cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS probe_effect (id bigserial PRIMARY KEY, consumer text NOT NULL,"
                       " aggregate_id text NOT NULL, version int NOT NULL, message_id uuid NOT NULL, value text)")
        cursor.execute("TRUNCATE probe_effect")


def cure(value: str) -> None:
    """Make the handler accept a poison value from now on (the operator fixed the cause)."""
    with connections[PROBE_ALIAS].cursor() as cursor:
        cursor.execute("INSERT INTO probe_effect (consumer, aggregate_id, version, message_id, value)"
                       " VALUES ('cure', 'cure', 0, gen_random_uuid(), %s)", [value])


def applied_versions(aggregate_id: str) -> list[int]:
    """Return the versions applied to `aggregate_id`, in the order they were applied."""
    with connections[PROBE_ALIAS].cursor() as cursor:
        cursor.execute("SELECT version FROM probe_effect WHERE aggregate_id = %s ORDER BY id", [aggregate_id])
        return [version for (version,) in cursor.fetchall()]


@event_handler(consumer=PROBE_CONSUMER, event_types=[ProbeTicked.TYPE], app_label=PROBE_ALIAS)
def record_tick(envelope: Envelope) -> None:
    """Record the tick. Called at least once."""
    value = envelope.payload["value"]
    with connections[PROBE_ALIAS].cursor() as cursor:
        if value.startswith("poison"):
            cursor.execute("SELECT 1 FROM probe_effect WHERE consumer = 'cure' AND value = %s", [value])
            if cursor.fetchone() is None:
                raise ProbePoisonError(f"cannot apply {value!r}")
        cursor.execute("INSERT INTO probe_effect (consumer, aggregate_id, version, message_id, value)"
                       " VALUES (%s, %s, %s, %s, %s)",
                       [PROBE_CONSUMER, envelope.aggregate_id, envelope.aggregate_version, envelope.message_id, value])


def probe_rows(outbox, aggregate_id: str, versions, value: str = "tick") -> list:
    """Insert committed PENDING outbox rows for `aggregate_id` directly (no after-commit kick: the test relays)."""
    from django.utils import timezone

    from sagas.partitions import partition_for

    now = timezone.now()
    return outbox.objects.bulk_create([
        outbox(type=ProbeTicked.TYPE, aggregate_type=ProbeTicked.AGGREGATE_TYPE, partition_key=aggregate_id,
               partition=partition_for(aggregate_id), aggregate_version=version, occurred_at=now,
               payload={"value": value})
        for version in versions])


def queued_envelopes(client, queue: str) -> list[dict]:
    """Return the envelopes waiting in a Redis queue, oldest first, decoding each `events.deliver` message."""
    import base64
    import json

    envelopes = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu LPUSHes and BRPOPs: the oldest is last
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        envelopes.extend(args[0])
    return envelopes
