"""Consuming events: registration, idempotency, per-aggregate order, parking and dead letters.

A handler is a plain function registered with `@event_handler(consumer=...,
event_types=..., app_label=...)`; with `batch=True` it takes a list of
envelopes instead of one, to apply a run of events with a few bulk statements
(it must leave the same state as one call per event, in list order). For every
event of a subscribed type, and for every consumer subscribed to it, the
framework (never the handler):

1. opens `transaction.atomic(using=app_label)` and locks the consumer's
   position row of the event's aggregate (`SELECT … FOR UPDATE`);
2. drops the event if its `aggregate_version` is not above the position or its
   `message_id` is in the inbox (a redelivery or a duplicate: no effect);
3. parks it if it is ahead of the next expected version (a gap), and schedules
   a gap check; a gap still open after `INBOX_GAP_DEADLINE_SECONDS` makes the
   consumer ask the producer (a message to the producer's queue, never a read
   of its tables) to publish the missing versions again;
4. otherwise calls the handler, writes the inbox row and advances the position
   in that same transaction, then applies any parked successors in order.

A delivered batch (a single event too) is applied per consumer in one
transaction per chunk of `INBOX_BATCH_SIZE` events (`consume_batch`), in two
statements of the framework's own after setting its lock timeout: one locks
the positions of all the chunk's aggregates (in key order) and checks the
inbox, the other writes the inbox rows and positions and finds parked
successors; one commit for the chunk. The events it may apply go to the
handler together, in one call for a batch handler. Two cases roll the chunk
back and apply its events one by one, one transaction each as above, so the
outcome is the same as event-by-event delivery: a handler's non-transient
error (the poison is then dead-lettered alone, its aggregate's later events
parked, the others applied), and a wait longer than
`INBOX_BATCH_LOCK_TIMEOUT_MS` for another consumer process's locks
(or a deadlock): the short transactions then wait instead of giving up.

Effects are therefore exactly once and in version order per (consumer,
aggregate), whatever the broker does (duplicates, redeliveries, reordering).
A handler's non-transient error rolls its transaction back and dead-letters
the event (with the error) in the consumer's own schema; later versions of that
aggregate wait (parked) until an operator replays it, other aggregates keep
flowing. Transient errors (database or broker briefly down) propagate, so the
delivery task retries with backoff.
"""
from __future__ import annotations

import dataclasses
import enum
import logging
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from celery import current_app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, transaction
from django.utils import timezone

from config.celery import TRANSIENT_ERRORS
from config.raw_sql import pg_array
from sagas.messages import Envelope, EnvelopeError, is_known_event_type
from sagas.messaging_models import DeadLetterStatus
from sagas.partitions import queue_for
from sagas.tables import ConsumerTables, consumer_tables

logger = logging.getLogger(__name__)

Handler = Callable[[Envelope], None] | Callable[[list[Envelope]], None]
# Dead letters no consumer can own (undecodable, unknown type) live in the backbone's own schema.
BACKBONE_APP = "sagas"
DELIVER_TASK = "events.deliver"
GAP_CHECK_TASK = "events.check_gap"
REPUBLISH_TASK = "outbox.republish"


@dataclasses.dataclass(frozen=True)
class Subscription:
    consumer: str
    app_label: str
    handler: Handler
    batch: bool = False

    def apply(self, envelopes: list[Envelope]) -> None:
        """Hand events, in order, to the handler: in one call for a batch handler, one call each otherwise."""
        if self.batch:
            self.handler(envelopes)
            return
        for envelope in envelopes:
            self.handler(envelope)


_subscriptions: dict[str, list[Subscription]] = defaultdict(list)


def event_handler(*, consumer: str, event_types: Iterable[str], app_label: str,
                  batch: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated `handler(envelope)` as `consumer` of `event_types`, applied in `app_label`'s schema.

    The handler is called at least once per event but its effect commits
    exactly once, in version order per aggregate, inside the transaction the
    framework opens on `app_label` (with the inbox row and the position).
    With `batch=True` the handler is `handler(envelopes)`: a list of events to
    apply in order, all in that one transaction.
    """
    types = [event_types] if isinstance(event_types, str) else list(event_types)
    if not types:
        raise ImproperlyConfigured(f"consumer {consumer!r} subscribes to no event type")

    def register(handler: Handler) -> Handler:
        consumer_tables(app_label)  # fail at start-up, not at the first event, if the app lacks its tables
        for event_type in types:
            registered = _subscriptions[event_type]
            for existing in [s for s in registered if s.consumer == consumer]:
                if _name(existing.handler) != _name(handler):
                    raise ImproperlyConfigured(f"consumer {consumer!r} already handles {event_type!r} "
                                               f"with {_name(existing.handler)}")
                registered.remove(existing)  # the same module imported once more
            registered.append(Subscription(consumer, app_label, handler, batch))
        return handler

    return register


def _name(handler: Handler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


def subscriptions_for(event_type: str) -> list[Subscription]:
    return list(_subscriptions.get(event_type, ()))


def subscription(consumer: str, event_type: str) -> Subscription | None:
    return next((s for s in _subscriptions.get(event_type, ()) if s.consumer == consumer), None)


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    PARKED = "parked"
    DEAD = "dead"
    IGNORED = "ignored"


def deliver_batch(bodies: Any, *, only_consumer: str | None = None) -> dict[str, int]:
    """Apply an ordered batch of one partition's envelopes; return outcome counts. Poison is dead-lettered.

    Each consumer gets the batch's events of its types, in batch order, through `consume_batch`.
    """
    if not isinstance(bodies, list):
        _dead_letter_unconsumable(bodies, reason="undecodable", error="a batch must be a list of envelopes")
        return {Outcome.DEAD.value: 1}
    counts: dict[str, int] = defaultdict(int)
    per_consumer: dict[Subscription, list[Envelope]] = defaultdict(list)
    for body in bodies:
        envelope, subscribed, outcome = _route(body, only_consumer=only_consumer)
        if outcome is not None:
            counts[outcome.value] += 1
        for sub in subscribed:
            per_consumer[sub].append(envelope)
    for sub, envelopes in per_consumer.items():
        for outcome in consume_batch(sub, envelopes):
            counts[outcome.value] += 1
    return dict(counts)


def deliver(body: Any, *, only_consumer: str | None = None) -> list[Outcome]:
    """Decode one envelope and hand it to each subscribed consumer (or to `only_consumer`, for a replay)."""
    envelope, subscribed, outcome = _route(body, only_consumer=only_consumer)
    if outcome is not None:
        return [outcome]
    return [consume(sub, envelope) for sub in subscribed]


def _route(body: Any, *, only_consumer: str | None) -> tuple[Envelope | None, list[Subscription], Outcome | None]:
    """Decode `body`; return it with its consumers, or the outcome when no consumer takes it (dead or ignored)."""
    try:
        envelope = Envelope.from_dict(body)
    except EnvelopeError as exc:
        _dead_letter_unconsumable(body, reason="undecodable", error=str(exc))
        return None, [], Outcome.DEAD
    subscribed = subscriptions_for(envelope.type)
    if only_consumer is not None:
        subscribed = [s for s in subscribed if s.consumer == only_consumer]
    if not subscribed:
        if only_consumer is None and not is_known_event_type(envelope.type):
            _dead_letter_unconsumable(body, reason="unknown type", error=f"no event type {envelope.type!r}",
                                      envelope=envelope)
            return envelope, [], Outcome.DEAD
        return envelope, [], Outcome.IGNORED  # a known event this process does not consume
    return envelope, subscribed, None


def consume(sub: Subscription, envelope: Envelope) -> Outcome:
    """Apply `envelope` for one consumer, then any parked successors it unblocks; return its own outcome."""
    tables = consumer_tables(sub.app_label)
    outcome = _apply_one(sub, envelope, tables)
    if outcome is Outcome.APPLIED:
        _apply_parked_successors(sub, envelope.aggregate_type, envelope.aggregate_id, tables)
    return outcome


def consume_batch(sub: Subscription, envelopes: list[Envelope]) -> list[Outcome]:
    """Apply one consumer's events of a batch, in order, one transaction per chunk; return their outcomes."""
    outcomes: list[Outcome] = []
    size = settings.INBOX_BATCH_SIZE
    for start in range(0, len(envelopes), size):
        outcomes.extend(_consume_chunk(sub, envelopes[start:start + size]))
    return outcomes


LOCK_CONFLICTS = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected)


class PoisonInChunk(Exception):
    """The handler failed on the events of a chunk (its error is the cause): the chunk is redone event by event."""


def _consume_chunk(sub: Subscription, envelopes: list[Envelope]) -> list[Outcome]:
    tables = consumer_tables(sub.app_label)
    try:
        with transaction.atomic(using=sub.app_label):
            outcomes, unblocked = _apply_chunk(sub, envelopes, tables)
    except PoisonInChunk as poison:
        # Nothing of the chunk committed: apply it event by event, so the poison is dead-lettered alone.
        logger.info("%s: a batch of %s events failed (%s: %s); applying them one by one", sub.consumer,
                    len(envelopes), type(poison.__cause__).__name__, poison.__cause__)
        return [consume(sub, envelope) for envelope in envelopes]
    except OperationalError as exc:
        if not isinstance(exc.__cause__, LOCK_CONFLICTS):
            raise
        # Another consumer process holds rows this chunk's handlers need: nothing of the chunk committed;
        # apply it event by event, whose short transactions wait for locks instead of giving up.
        logger.info("%s: batch of %s events met a lock conflict (%s); applying them one by one",
                    sub.consumer, len(envelopes), exc.__cause__.__class__.__name__)
        return [consume(sub, envelope) for envelope in envelopes]
    for aggregate_type, aggregate_id in unblocked:
        _apply_parked_successors(sub, aggregate_type, aggregate_id, tables)
    return outcomes


def _apply_chunk(sub: Subscription, envelopes: list[Envelope],
                 tables: ConsumerTables) -> tuple[list[Outcome], list[tuple[str, str]]]:
    """Apply a chunk inside the caller's transaction; return its outcomes and the aggregates with parked events.

    A handler's non-transient error raises PoisonInChunk: the caller rolls the chunk back and redoes it per event.
    """
    alias = sub.app_label
    connection = transaction.get_connection(alias)
    with connection.prepared_cursor() as cursor:
        # Bounded waits for other consumer processes' locks: a conflict gives up quickly (see _consume_chunk).
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{settings.INBOX_BATCH_LOCK_TIMEOUT_MS}ms"])
    positions, seen = _lock_positions(sub, {(e.aggregate_type, e.aggregate_id) for e in envelopes}, tables,
                                      seen_among=[e.message_id for e in envelopes])
    outcomes: list[Outcome] = []
    applied: list[Envelope] = []
    for envelope in envelopes:
        key = (envelope.aggregate_type, envelope.aggregate_id)
        if envelope.aggregate_version <= positions[key] or envelope.message_id in seen:
            outcomes.append(Outcome.DUPLICATE)
        elif envelope.aggregate_version > positions[key] + 1:
            outcomes.append(_park(sub, envelope, tables))
        else:
            positions[key] = envelope.aggregate_version
            seen.add(envelope.message_id)
            applied.append(envelope)
            outcomes.append(Outcome.APPLIED)
    if not applied:
        return outcomes, []
    try:
        sub.apply(applied)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        raise PoisonInChunk() from exc
    # The inbox rows, the positions and the look-up of parked successors: one statement, one round trip.
    moved = {(e.aggregate_type, e.aggregate_id): positions[(e.aggregate_type, e.aggregate_id)] for e in applied}
    types, ids, versions = [k[0] for k in moved], [k[1] for k in moved], list(moved.values())
    quote = connection.ops.quote_name
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            f"WITH inbox_rows AS (INSERT INTO {quote(tables.inbox._meta.db_table)} (consumer, message_id, type,"
            " processed_at) SELECT %s, k.message_id, k.type, now() FROM unnest(%s::uuid[], %s::text[]) AS"
            f" k(message_id, type)), moved AS (UPDATE {quote(tables.position._meta.db_table)} p"
            " SET version = k.version, updated_at = now()"
            " FROM unnest(%s::text[], %s::text[], %s::int[]) AS k(aggregate_type, aggregate_id, version)"
            " WHERE p.consumer = %s AND p.aggregate_type = k.aggregate_type AND p.aggregate_id = k.aggregate_id)"
            f" SELECT DISTINCT p.aggregate_type, p.aggregate_id FROM {quote(tables.parked._meta.db_table)} p"
            " JOIN unnest(%s::text[], %s::text[]) AS k(aggregate_type, aggregate_id)"
            " ON p.aggregate_type = k.aggregate_type AND p.aggregate_id = k.aggregate_id WHERE p.consumer = %s",
            [sub.consumer, pg_array(e.message_id for e in applied), pg_array(e.type for e in applied),
             pg_array(types), pg_array(ids), pg_array(versions), sub.consumer, pg_array(types), pg_array(ids),
             sub.consumer])
        return outcomes, cursor.fetchall()


def _apply_one(sub: Subscription, envelope: Envelope, tables: ConsumerTables, *,
               parked_id: int | None = None) -> Outcome:
    try:
        return _apply_or_park(sub, envelope, tables, parked_id=parked_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # a handler's non-transient error: the event is poison for this consumer
        _dead_letter(sub, envelope, tables, reason="handler error", error=_describe(exc))
        return Outcome.DEAD


def _position_key(sub: Subscription, envelope: Envelope) -> dict[str, str]:
    return {"consumer": sub.consumer, "aggregate_type": envelope.aggregate_type, "aggregate_id": envelope.aggregate_id}


def _lock_position(sub: Subscription, envelope: Envelope, tables: ConsumerTables) -> int:
    """Lock (creating at 0 if new) the consumer's position row of the aggregate; return its version.

    One statement: the upsert takes the row lock that serialises every
    delivery of this aggregate to this consumer until the transaction ends.
    """
    connection = transaction.get_connection(sub.app_label)
    table = connection.ops.quote_name(tables.position._meta.db_table)
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (consumer, aggregate_type, aggregate_id, version, updated_at)"
            " VALUES (%s, %s, %s, 0, now()) ON CONFLICT (consumer, aggregate_type, aggregate_id)"
            " DO UPDATE SET consumer = EXCLUDED.consumer RETURNING version",
            [sub.consumer, envelope.aggregate_type, envelope.aggregate_id])
        return cursor.fetchone()[0]


def _lock_positions(sub: Subscription, keys: set[tuple[str, str]], tables: ConsumerTables, *,
                    seen_among: list[str]) -> tuple[dict[tuple[str, str], int], set[str]]:
    """Lock (creating at 0 if new) the consumer's positions of several aggregates, in key order; return them, and
    which of `seen_among` the inbox already holds. One statement.

    The inbox is read in the statement's snapshot, taken before any lock wait,
    but a delivery it could miss committed its position in the same
    transaction, and the locked position rows are read as they are after the
    wait: the position check catches it.
    """
    ordered = sorted(keys)  # one lock order for every process: two chunks never wait on each other in a circle
    connection = transaction.get_connection(sub.app_label)
    quote = connection.ops.quote_name
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            f"WITH locked AS (INSERT INTO {quote(tables.position._meta.db_table)}"
            " (consumer, aggregate_type, aggregate_id, version, updated_at)"
            " SELECT %s, k.aggregate_type, k.aggregate_id, 0, now()"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS k(aggregate_type, aggregate_id, n) ORDER BY k.n"
            " ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE SET consumer = EXCLUDED.consumer"
            " RETURNING aggregate_type, aggregate_id, version)"
            " SELECT aggregate_type, aggregate_id, version FROM locked UNION ALL"
            f" SELECT NULL, message_id::text, NULL FROM {quote(tables.inbox._meta.db_table)}"
            " WHERE consumer = %s AND message_id = ANY(%s::uuid[])",
            [sub.consumer, pg_array(k[0] for k in ordered), pg_array(k[1] for k in ordered), sub.consumer,
             pg_array(seen_among)])
        positions, seen = {}, set()
        for aggregate_type, aggregate_id, version in cursor.fetchall():
            if aggregate_type is None:
                seen.add(aggregate_id)
            else:
                positions[(aggregate_type, aggregate_id)] = version
        return positions, seen


def _apply_or_park(sub: Subscription, envelope: Envelope, tables: ConsumerTables, *,
                   parked_id: int | None) -> Outcome:
    alias = sub.app_label
    with transaction.atomic(using=alias):
        position = _lock_position(sub, envelope, tables)
        inbox = tables.inbox.objects.using(alias)
        if envelope.aggregate_version <= position or inbox.filter(
                consumer=sub.consumer, message_id=envelope.message_id).exists():
            outcome = Outcome.DUPLICATE
        elif envelope.aggregate_version > position + 1:
            return _park(sub, envelope, tables) if parked_id is None else Outcome.PARKED
        else:
            sub.apply([envelope])
            inbox.create(consumer=sub.consumer, message_id=envelope.message_id, type=envelope.type)
            tables.position.objects.using(alias).filter(**_position_key(sub, envelope)).update(
                version=envelope.aggregate_version, updated_at=timezone.now())
            outcome = Outcome.APPLIED
        if parked_id is not None:
            tables.parked.objects.using(alias).filter(id=parked_id).delete()
    return outcome


def _park(sub: Subscription, envelope: Envelope, tables: ConsumerTables) -> Outcome:
    parked = tables.parked.objects.using(sub.app_label)
    key = _position_key(sub, envelope)
    first_of_gap = not parked.filter(**key).exists()
    parked.bulk_create([tables.parked(**key, message_id=envelope.message_id,
                                      aggregate_version=envelope.aggregate_version,
                                      envelope=envelope.to_dict())], ignore_conflicts=True)
    if first_of_gap:
        args = (sub.app_label, sub.consumer, envelope.aggregate_type, envelope.aggregate_id)
        transaction.on_commit(lambda: schedule_gap_check(*args), using=sub.app_label, robust=True)
    return Outcome.PARKED


def _apply_parked_successors(sub: Subscription, aggregate_type: str, aggregate_id: str,
                             tables: ConsumerTables) -> None:
    """Apply parked versions that became next in line, one transaction each, in version order."""
    key = {"consumer": sub.consumer, "aggregate_type": aggregate_type, "aggregate_id": aggregate_id}
    parked = tables.parked.objects.using(sub.app_label).filter(**key)
    positions = tables.position.objects.using(sub.app_label).filter(**key)
    while parked.exists():  # one query in the usual case: nothing parked
        version = positions.values_list("version", flat=True).first() or 0
        parked.filter(aggregate_version__lte=version).delete()  # copies of versions applied meanwhile
        successor = parked.filter(aggregate_version=version + 1).first()
        if successor is None:
            return
        outcome = _apply_one(sub, Envelope.from_dict(successor.envelope), tables, parked_id=successor.id)
        if outcome is not Outcome.APPLIED:
            return


def schedule_gap_check(app_label: str, consumer: str, aggregate_type: str, aggregate_id: str, *,
                       check: int = 1, countdown: float | None = None) -> None:
    """Check the gap after the deadline (or `countdown` s) on its partition queue, serial with deliveries."""
    current_app.send_task(
        GAP_CHECK_TASK, kwargs={"app_label": app_label, "consumer": consumer, "aggregate_type": aggregate_type,
                                "aggregate_id": aggregate_id, "check": check},
        queue=queue_for(aggregate_id), ignore_result=True,
        countdown=settings.INBOX_GAP_DEADLINE_SECONDS if countdown is None else countdown)


def producer_of(aggregate_type: str) -> str:
    """Return the service that publishes `aggregate_type` (types are named `<service>.<Aggregate>`)."""
    return aggregate_type.split(".", 1)[0]


def gap_check(*, app_label: str, consumer: str, aggregate_type: str, aggregate_id: str, check: int) -> str:
    """Close or chase one aggregate's version gap; return what was done.

    Applies what became applicable; when versions are still missing, asks the
    producer to publish them again (unless the missing version is a dead letter
    waiting for an operator) and checks again later, `INBOX_GAP_CHECKS` times.
    """
    tables = consumer_tables(app_label)
    key = {"consumer": consumer, "aggregate_type": aggregate_type, "aggregate_id": aggregate_id}
    first_type = tables.parked.objects.using(app_label).filter(**key).values_list("envelope__type", flat=True).first()
    if first_type is None:
        return "no gap"
    sub = subscription(consumer, first_type)
    if sub is None:
        return f"consumer {consumer!r} no longer handles {first_type!r}"
    _apply_parked_successors(sub, aggregate_type, aggregate_id, tables)
    position = tables.position.objects.using(app_label).filter(**key).values_list("version", flat=True).first() or 0
    lowest = tables.parked.objects.using(app_label).filter(**key).order_by("aggregate_version").first()
    if lowest is None:
        return "gap closed"
    if tables.dead_letter.objects.using(app_label).filter(
            **key, aggregate_version=position + 1, status=DeadLetterStatus.DEAD).exists():
        return f"v{position + 1} is a dead letter: waiting for an operator to replay it"
    missing = list(range(position + 1, lowest.aggregate_version))
    request_republish(aggregate_type=aggregate_type, aggregate_id=aggregate_id, versions=missing)
    tables.parked.objects.using(app_label).filter(**key).update(refetch_requested_at=timezone.now())
    if check < settings.INBOX_GAP_CHECKS:
        schedule_gap_check(app_label, consumer, aggregate_type, aggregate_id, check=check + 1)
    return f"asked {producer_of(aggregate_type)} for v{missing[0]}..v{missing[-1]}"


def request_republish(*, aggregate_type: str, aggregate_id: str, versions: list[int]) -> None:
    """Ask the producing service (by a message on its queue) to publish these versions again."""
    current_app.send_task(
        REPUBLISH_TASK, kwargs={"producer": producer_of(aggregate_type), "aggregate_type": aggregate_type,
                                "aggregate_id": aggregate_id, "versions": versions},
        queue=producer_of(aggregate_type), ignore_result=True)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()


def _dead_letter(sub: Subscription, envelope: Envelope, tables: ConsumerTables, *, reason: str, error: str) -> None:
    alias = sub.app_label
    with transaction.atomic(using=alias):
        letters = tables.dead_letter.objects.using(alias)
        existing = letters.select_for_update().filter(
            consumer=sub.consumer, message_id=envelope.message_id, status=DeadLetterStatus.DEAD).first()
        if existing is not None:
            existing.attempts += 1
            existing.error = error
            existing.save(update_fields=["attempts", "error", "updated_at"])
        else:
            letters.create(consumer=sub.consumer, message_id=envelope.message_id, type=envelope.type,
                           aggregate_type=envelope.aggregate_type, aggregate_id=envelope.aggregate_id,
                           aggregate_version=envelope.aggregate_version, body=envelope.to_dict(), reason=reason,
                           error=error)
        tables.parked.objects.using(alias).filter(consumer=sub.consumer, message_id=envelope.message_id).delete()
    logger.error("dead letter for %s: %s %s v%s: %s", sub.consumer, envelope.type, envelope.aggregate_id,
                 envelope.aggregate_version, error.splitlines()[-1] if error else reason)


def _dead_letter_unconsumable(body: Any, *, reason: str, error: str, envelope: Envelope | None = None) -> None:
    tables = consumer_tables(BACKBONE_APP)
    fields: dict[str, Any] = {}
    if envelope is not None:
        fields = {"message_id": envelope.message_id, "type": envelope.type,
                  "aggregate_type": envelope.aggregate_type, "aggregate_id": envelope.aggregate_id,
                  "aggregate_version": envelope.aggregate_version}
    elif isinstance(body, dict):
        fields = {"message_id": str(body.get("message_id", ""))[:100], "type": str(body.get("type", ""))[:200]}
    tables.dead_letter.objects.using(BACKBONE_APP).create(body=_jsonable(body), reason=reason, error=error, **fields)
    logger.error("dead letter (%s): %s", reason, error)


def _jsonable(body: Any) -> Any:
    return body if isinstance(body, dict | list | str | int | float | bool) or body is None else repr(body)


def dead_letter_replay(*, app_label: str, ids: Iterable[int]) -> int:
    """Send dead letters again through their partition queue (to their consumer only); return how many.

    Replayed letters are marked REPLAYED; one that fails again comes back as a new dead letter.
    """
    letters = consumer_tables(app_label).dead_letter.objects.using(app_label)
    count = 0
    with transaction.atomic(using=app_label):
        for letter in letters.select_for_update().filter(id__in=list(ids), status=DeadLetterStatus.DEAD):
            key = letter.aggregate_id or str(letter.message_id)
            kwargs = {"only_consumer": letter.consumer or None}
            transaction.on_commit(
                lambda body=letter.body, key=key, kwargs=kwargs: current_app.send_task(
                    DELIVER_TASK, args=[[body]], kwargs=kwargs, queue=queue_for(key), ignore_result=True),
                using=app_label)
            letter.status = DeadLetterStatus.REPLAYED
            letter.replayed_at = timezone.now()
            letter.save(update_fields=["status", "replayed_at", "updated_at"])
            count += 1
    return count
