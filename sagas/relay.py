"""The outbox relay: claims pending rows, publishes them to their partition queue, marks them SENT.

How a pass works, one partition at a time, for every outbox with rows bound for it:

1. For each outbox, in a transaction on its own database, one statement
   takes `pg_try_advisory_xact_lock(<outbox table>, <partition>)` (at most
   one relay works on a partition at once; another relay skips to
   the next partition instead of waiting, so several relays — beat tick,
   after-commit kicks, `drain_outbox` — share the work without sending
   anything twice), claims the partition's oldest pending rows that have
   committed (`ORDER BY id LIMIT batch FOR UPDATE SKIP LOCKED`: rows of an
   open transaction are invisible, rows an operator is updating are skipped,
   never waited for), marks them SENT, and tells for each whether its
   aggregate's previous version is out (SENT or DEAD).
2. The order guard: a row whose previous version is neither in the batch nor
   out is held back (PENDING again): that version's transaction has not
   committed yet. Rows are chosen by status, never by an id watermark, so a
   row committed after higher ids (a long transaction holding a lower id) is
   still sent on a later pass; it is then not overtaken by its successor,
   which was held. After `OUTBOX_ORDER_HOLD_SECONDS` a held row goes anyway (a
   producer that skipped a version must not stall its aggregate); consumers'
   version checks then keep the effects in order.
3. The rows every outbox let go travel as one broker message
   (`events.deliver`) on the partition's queue, each outbox's envelopes in
   id order, which for one aggregate is version order (version n+1 is
   written after version n committed; an aggregate belongs to one outbox).
   One message, not one per outbox: the consumer takes it in one task and
   applies each consumer's events in one transaction.
4. Commit, in every outbox, each on its own: the rows are SENT and the locks
   are released. If publishing fails, the transactions roll back and the
   rows stay PENDING.

Back-pressure (the relay tasks, `max_waiting=OUTBOX_MAX_WAITING_BATCHES`): a
partition whose queue already holds that many batches nobody has taken yet
gets no new message on this pass; its rows stay PENDING and leave together,
as one larger batch, on a later pass (a pass that skipped schedules one
`OUTBOX_DEFERRED_PASS_SECONDS` later; the beat tick is the safety net). An
idle consumer gets each batch at once; a busy one gets fewer, larger batches,
which it applies in far fewer transactions, so it catches up instead of
falling further behind.

Guarantee: each row is published at least once; exactly once unless a relay
dies between publishing and committing (step 4), or an outbox's commit
fails, in which case its rows are still PENDING and go again (consumers'
inboxes make the copy a no-op). One aggregate's events leave in version
order. A publish that fails leaves the rows PENDING with `attempts` + 1 and
`last_error`; after `OUTBOX_MAX_ATTEMPTS` they become DEAD (requeued from the
admin).
"""
from __future__ import annotations

import dataclasses
import logging
import random
import select
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

import psycopg
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connections, router, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import ChannelError

from config.raw_sql import json_value
from sagas.inbox import DELIVER_TASK
from sagas.messaging_models import AbstractOutboxMessage, OutboxStatus
from sagas.outbox import redis_client
from sagas.partitions import partition_queue
from sagas.tables import outbox_model, outbox_models

logger = logging.getLogger(__name__)

ROW_FIELDS = ("id", "message_id", "type", "schema_version", "aggregate_type", "partition_key", "aggregate_version",
              "correlation_id", "causation_id", "occurred_at", "payload", "created_at")


class Publisher(Protocol):
    def publish(self, partition: int, envelopes: list[dict[str, Any]]) -> None: ...
    def waiting(self, partitions: list[int]) -> dict[int, int]: ...

class CeleryPublisher:
    """Publish one partition's ordered batch as one `events.deliver` task message on its queue."""

    def __init__(self, queue_prefix: str | None = None) -> None:
        self.queue_prefix = queue_prefix

    def queue(self, partition: int) -> str:
        return partition_queue(partition, self.queue_prefix)

    def publish(self, partition: int, envelopes: list[dict[str, Any]]) -> None:
        with current_app.producer_or_acquire() as producer:
            current_app.send_task(DELIVER_TASK, args=[envelopes], queue=self.queue(partition), producer=producer,
                                  ignore_result=True, argsrepr=f"[{len(envelopes)} events]", retry=False)

    def waiting(self, partitions: list[int]) -> dict[int, int]:
        """Return how many batches wait in each partition's queue, not yet taken by its consumer."""
        with current_app.producer_or_acquire() as producer:  # pooled: a fresh connection per check cost more
            channel = producer.channel                       # than the relay's own work
            if redis_client(channel) is None:
                return {partition: self._declared_size(partition) for partition in partitions}
            # Redis: kombu keeps a queue as one list per priority level; one pipeline counts every partition's.
            steps = channel.priority_steps
            with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
                for partition in partitions:
                    for priority in steps:
                        pipe.llen(channel._q_for_pri(self.queue(partition), priority))
                sizes = pipe.execute()
        return {partition: sum(sizes[i * len(steps):(i + 1) * len(steps)]) for i, partition in enumerate(partitions)}

    def _declared_size(self, partition: int) -> int:
        # A connection of its own: on AMQP a passive declare of a missing queue closes the channel.
        with current_app.connection_for_write() as connection:
            try:
                return connection.default_channel.queue_declare(queue=self.queue(partition),
                                                                passive=True).message_count
            except ChannelError:  # the broker has no such queue (yet): nothing waits
                return 0


@dataclasses.dataclass
class RelayReport:
    """What one relay pass did to one outbox."""

    service: str
    sent: int = 0
    held: int = 0
    failed: int = 0
    dead: int = 0
    batches: int = 0
    deferred: int = 0
    contended: int = 0  # partitions another relay held: a later pass must look at them again
    full: int = 0  # batches that filled the batch size: more rows may wait
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def left_behind(self) -> bool:
        """Whether the last pass left rows for a later one: deferred or held rows, a partition another relay
        held, or a drain the time limit cut short."""
        return bool(self.deferred or self.held or self.contended or self.full)

    def add(self, other: RelayReport) -> None:
        self.sent += other.sent
        self.held += other.held
        self.failed += other.failed
        self.dead += other.dead
        self.batches += other.batches
        self.deferred += other.deferred
        self.contended += other.contended
        self.full += other.full
        self.errors.extend(other.errors)


def envelope_of(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "message_id": str(row["message_id"]), "type": row["type"], "schema_version": row["schema_version"],
        "aggregate_type": row["aggregate_type"], "aggregate_id": row["partition_key"],
        "aggregate_version": row["aggregate_version"], "correlation_id": row["correlation_id"],
        "causation_id": row["causation_id"], "occurred_at": row["occurred_at"].isoformat(), "payload": row["payload"],
    }


def _lock_key(outbox: type[AbstractOutboxMessage]) -> int:
    # A 32-bit signed key of the table; with the partition it names a two-key advisory lock.
    return zlib.crc32(outbox._meta.db_table.encode()) - 2**31


def _pending_partitions(alias: str, outbox: type[AbstractOutboxMessage]) -> list[int]:
    # Raw SQL: every pass asks this of every outbox, and building the queryset cost more than running it.
    # A loose index scan (one probe of the pending index per partition) rather than DISTINCT: its plan does not
    # depend on statistics. Statistics taken during a backlog once made DISTINCT scan the whole table on every pass.
    # The status is written into the statement, not passed: the prepared statement's generic plan can then use
    # the partial index of pending rows, which a parameter would not prove it covers.
    connection = connections[alias]
    table = connection.ops.quote_name(outbox._meta.db_table)
    pending = f"status = '{OutboxStatus.PENDING}'"
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE p(partition) AS ("
            f" SELECT min(partition) FROM {table} WHERE {pending}"
            f" UNION ALL SELECT (SELECT min(partition) FROM {table} WHERE {pending}"
            f" AND partition > p.partition) FROM p WHERE p.partition IS NOT NULL"
            f") SELECT partition FROM p WHERE partition IS NOT NULL")
        partitions = [partition for partition, in cursor.fetchall()]
    random.shuffle(partitions)  # concurrent relays start on different partitions
    return partitions


_CLAIM_SQL = """
WITH partition_lock AS (SELECT pg_try_advisory_xact_lock(%(lock_key)s, %(partition)s) AS held),
claimed AS (
    SELECT o.id FROM {table} o
    WHERE (SELECT held FROM partition_lock) AND o.status = 'PENDING' AND o.partition = %(partition)s
    ORDER BY o.id LIMIT %(batch_size)s FOR UPDATE OF o SKIP LOCKED
),
updated AS (
    UPDATE {table} o SET status = 'SENT', sent_at = now(), attempts = o.attempts + 1
    FROM claimed WHERE o.id = claimed.id
    RETURNING {columns}, o.aggregate_version = 1 OR EXISTS (
        SELECT 1 FROM {table} p WHERE p.aggregate_type = o.aggregate_type AND p.partition_key = o.partition_key
        AND p.aggregate_version = o.aggregate_version - 1 AND p.status <> 'PENDING') AS follows_sent
)
SELECT partition_lock.held, updated.* FROM partition_lock LEFT JOIN updated ON true
"""


def _claim(alias: str, outbox: type[AbstractOutboxMessage], partition: int,
           batch_size: int) -> tuple[bool, list[dict[str, Any]]]:
    """Lock the partition, claim its oldest pending rows, mark them SENT in the caller's transaction.

    Return whether the lock was free (if not, another relay holds the partition and nothing is claimed) and
    the rows in id order, each knowing if its predecessor is out.
    """
    connection = connections[alias]
    sql = _CLAIM_SQL.format(table=connection.ops.quote_name(outbox._meta.db_table),
                            columns=", ".join(f"o.{field}" for field in ROW_FIELDS))
    with connection.prepared_cursor() as cursor:
        cursor.execute(sql, {"lock_key": _lock_key(outbox), "partition": partition, "batch_size": batch_size})
        names = [column.name for column in cursor.description][1:]
        results = cursor.fetchall()
    rows = [dict(zip(names, values[1:], strict=True)) for values in results if values[1] is not None]
    for row in rows:
        row["payload"] = json_value(row["payload"])
    return results[0][0], sorted(rows, key=lambda row: row["id"])


def _in_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the rows that may leave now: per aggregate, a run of versions that follows one already out."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_key[(row["aggregate_type"], row["partition_key"])].append(row)
    hold_until = timezone.now() - timedelta(seconds=settings.OUTBOX_ORDER_HOLD_SECONDS)
    sendable: set[int] = set()
    for key_rows in by_key.values():
        key_rows.sort(key=lambda r: r["aggregate_version"])
        expected = None  # the version that directly follows the last row leaving in this batch
        for row in key_rows:
            follows = row["follows_sent"] or row["aggregate_version"] == expected
            if not follows and row["created_at"] > hold_until:
                break  # its predecessor is not out yet: hold this and every later version of the key
            sendable.add(row["id"])
            expected = row["aggregate_version"] + 1
    return [row for row in rows if row["id"] in sendable]


class PartitionOutcome(NamedTuple):
    """What one partition's relay did, per outbox: its report, and the outboxes whose database failed."""

    reports: dict[type[AbstractOutboxMessage], RelayReport]
    broken: dict[type[AbstractOutboxMessage], Exception]


def relay_partition(outboxes: list[type[AbstractOutboxMessage]], partition: int, *, batch_size: int,
                    publisher: Publisher) -> PartitionOutcome:
    """Send one partition's sendable rows of every outbox in `outboxes` as one batch.

    Each outbox's rows are claimed in a transaction on its own database (nothing from an outbox another relay
    holds the partition of), all kept open until the batch is published: a publish that fails rolls every
    claim back (the rows are PENDING, with one more attempt). Then each commits on its own: a database that
    fails to begin, to claim or to commit keeps its rows PENDING (sent again later; the inboxes absorb the
    copy) and is reported broken, without holding up the others. One message per partition and pass rather
    than one per outbox: the consumer takes it in one task, and applies each consumer's events in one
    transaction.
    """
    reports = {outbox: RelayReport(service=outbox._meta.app_label) for outbox in outboxes}
    broken: dict[type[AbstractOutboxMessage], Exception] = {}
    claimed: dict[type[AbstractOutboxMessage], list[int]] = {}  # the rows handed to the publisher
    envelopes: list[dict[str, Any]] = []
    opened: list[tuple[type[AbstractOutboxMessage], transaction.Atomic]] = []
    publishing = False
    try:
        for outbox in outboxes:
            alias = router.db_for_write(outbox)
            block = transaction.atomic(using=alias)
            try:
                block.__enter__()
            except DatabaseError as exc:  # nothing began
                broken[outbox] = exc
                continue
            opened.append((outbox, block))
            try:
                rows = _claim_sendable(alias, outbox, partition, batch_size, reports[outbox])
            except DatabaseError as exc:  # this claim rolls back when its block closes; the others go on
                transaction.set_rollback(True, using=alias)
                broken[outbox] = exc
                continue
            if rows:
                claimed[outbox] = [row["id"] for row in rows]
                envelopes += [envelope_of(row) for row in rows]
        if envelopes:
            publishing = True
            publisher.publish(partition, envelopes)
    except BaseException as exc:
        _close(opened, exc)
        # Only a failed publish is this partition's to record; a claim's own error (not the database's) or a
        # worker shutting down goes up with every claim rolled back: nothing was sent.
        if not publishing or not isinstance(exc, Exception):
            raise
        error = f"{exc.__class__.__name__}: {exc}"
        for outbox, ids in claimed.items():
            reports[outbox].failed = len(ids)
            reports[outbox].dead = _record_failure(router.db_for_write(outbox), outbox, ids, error)
            reports[outbox].errors.append(error)
        logger.warning("partition %s: publish of %s rows failed: %s", partition, len(envelopes), exc)
        return PartitionOutcome(reports, broken)
    for outbox, failure in _close(opened).items():
        broken[outbox] = failure
        claimed.pop(outbox, None)
    for outbox, ids in claimed.items():
        reports[outbox].sent, reports[outbox].batches = len(ids), 1
    return PartitionOutcome(reports, broken)


def _claim_sendable(alias: str, outbox: type[AbstractOutboxMessage], partition: int, batch_size: int,
                    report: RelayReport) -> list[dict[str, Any]]:
    """Claim a partition's oldest pending rows in the caller's transaction; return those the order guard lets
    go (the others are PENDING again), and note in `report` what was held, contended or left behind."""
    held, rows = _claim(alias, outbox, partition, batch_size)
    report.contended = int(not held)
    sendable = _in_order(rows)
    # More may wait behind a full batch; a full batch the order guard held entirely is not progress
    # (passing again at once would claim and release the same rows until their hold ends).
    report.full = int(len(rows) == batch_size and bool(sendable))
    report.held = len(rows) - len(sendable)
    if report.held:
        _unclaim(alias, outbox, sorted({row["id"] for row in rows} - {row["id"] for row in sendable}))
    return sendable


def _close(opened: list[tuple[type[AbstractOutboxMessage], transaction.Atomic]],
           exc: BaseException | None = None) -> dict[type[AbstractOutboxMessage], Exception]:
    """Close the claims' transactions, newest first: roll them back after `exc`, else commit each on its own;
    return the outboxes whose commit failed (their rows are PENDING again)."""
    failed = {}
    for outbox, block in reversed(opened):
        try:
            block.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        except DatabaseError as error:
            failed[outbox] = error
    return failed


def _unclaim(alias: str, outbox: type[AbstractOutboxMessage], ids: list[int]) -> None:
    """Put rows the order guard holds back to PENDING, as they were before the claim."""
    outbox.objects.using(alias).filter(id__in=ids).update(
        status=OutboxStatus.PENDING, sent_at=None, attempts=F("attempts") - 1)


def _record_failure(alias: str, outbox: type[AbstractOutboxMessage], ids: list[int], error: str) -> int:
    rows = outbox.objects.using(alias).filter(id__in=ids, status=OutboxStatus.PENDING)
    with transaction.atomic(using=alias):
        rows.update(attempts=F("attempts") + 1, last_error=error)
        return rows.filter(attempts__gte=settings.OUTBOX_MAX_ATTEMPTS).update(status=OutboxStatus.DEAD)


def relay_outbox(outbox: type[AbstractOutboxMessage], **options: Any) -> RelayReport:
    """Drain one outbox; see `relay_outboxes`."""
    return relay_outboxes([outbox], **options)[0]


def relay_outboxes(outboxes: list[type[AbstractOutboxMessage]], *, batch_size: int | None = None,
                   publisher: Publisher | None = None, max_seconds: float | None = None,
                   max_waiting: int = 0) -> list[RelayReport]:
    """Drain `outboxes`: pass over their pending partitions while a batch comes back full (or the time is up).

    A partition another relay holds is skipped and reported (`contended`), as are rows the order guard holds
    and partitions deferred by back-pressure: the caller schedules a later pass for them (the relay task does,
    see `sagas.tasks`). A pass that found nothing of the sort leaves nothing behind: a row that commits after
    its claim kicks a pass of its own. Another pass to make sure, as this loop once did, read every outbox
    once more after each pass that sent, and most found nothing.

    `max_waiting` > 0 applies back-pressure (see the module's docstring), judged once per pass for every
    outbox: their events share the partition queues, and a partition found free takes one batch holding the
    rows of each. Judged outbox by outbox, the first to send would leave the queue busy for the others; an
    outbox whose commits kick the relay most often (results streaming in) then starved the rest (the points
    they cause waited seconds in the Score Engine's outbox, measured).

    An outbox whose database fails, or whose publish fails, is left to the next pass (the beat tick); the
    others go on: one service's outage must not hold up every service's events.
    """
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    publisher = publisher or CeleryPublisher()
    reports = {outbox: RelayReport(service=outbox._meta.app_label) for outbox in outboxes}
    active = list(outboxes)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while active:
        pending = {}
        for outbox in list(active):
            try:
                pending[outbox] = _pending_partitions(router.db_for_write(outbox), outbox)
            except Exception as exc:
                _give_up(outbox, reports[outbox], exc, active)
        busy: set[int] = set()
        candidates = sorted(set().union(*pending.values()))
        if max_waiting and candidates:
            backlog = publisher.waiting(candidates)
            busy = {partition for partition in candidates if backlog[partition] >= max_waiting}
        senders: dict[int, list[type[AbstractOutboxMessage]]] = defaultdict(list)  # per partition
        for outbox, partitions in pending.items():
            for partition in partitions:
                senders[partition].append(outbox)
        progress = {outbox: RelayReport(service=reports[outbox].service) for outbox in pending}
        for partition, partition_outboxes in senders.items():
            partition_outboxes = [outbox for outbox in partition_outboxes if outbox in active]
            if partition in busy:
                for outbox in partition_outboxes:
                    progress[outbox].deferred += 1
                continue
            if not partition_outboxes:
                continue
            try:
                outcome = relay_partition(partition_outboxes, partition, batch_size=batch_size,
                                          publisher=publisher)
            except Exception as exc:
                outcome = PartitionOutcome({}, dict.fromkeys(partition_outboxes, exc))
            for outbox, partition_report in outcome.reports.items():
                progress[outbox].add(partition_report)
            for outbox, exc in outcome.broken.items():
                _give_up(outbox, reports[outbox], exc, active)
        more = False
        for outbox, pass_report in progress.items():
            report = reports[outbox]
            report.add(pass_report)
            for name in _LAST_PASS_FIELDS:  # what the last pass left behind, not a sum over passes
                setattr(report, name, getattr(pass_report, name))
            more = more or bool(pass_report.full)
            if pass_report.failed and outbox in active:
                active.remove(outbox)  # its broker publish failed: the beat tick tries again
        if not more or (deadline is not None and time.monotonic() > deadline):
            break
    return list(reports.values())


_LAST_PASS_FIELDS = ("held", "deferred", "contended", "full")


def _give_up(outbox: type[AbstractOutboxMessage], report: RelayReport, exc: Exception,
             active: list[type[AbstractOutboxMessage]]) -> None:
    """Leave an outbox whose database failed to the next pass; the others go on (one service's outage is
    not everyone's)."""
    logger.warning("outbox %s: relay pass stopped: %s", report.service, exc, exc_info=True)
    report.errors.append(f"{exc.__class__.__name__}: {exc}")
    if outbox in active:
        active.remove(outbox)


def relay_services(services: Iterable[str] | None = None, **options: Any) -> list[RelayReport]:
    """Drain the outboxes of `services` (default: every installed outbox)."""
    return relay_outboxes([outbox_model(name) for name in services] if services else outbox_models(), **options)


class OutboxListener:
    """LISTEN for commits that wrote outbox rows (`OUTBOX_WAKEUP=notify`) on every database holding an outbox."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.connections: list[psycopg.Connection] = []
        seen = set()
        for outbox in outbox_models():
            connection = connections[router.db_for_write(outbox)]
            key = tuple(connection.settings_dict[name] for name in ("HOST", "PORT", "NAME"))
            if key in seen:
                continue
            seen.add(key)
            conn = connection.direct_connection()
            conn.execute(f"LISTEN {self.channel}")
            self.connections.append(conn)

    def wait(self, timeout: float) -> set[str]:
        """Return the services whose outbox got rows (empty after `timeout` seconds of silence)."""
        ready, _, _ = select.select(self.connections, [], [], timeout)
        services = set()
        for conn in ready:
            services.update(notify.payload for notify in conn.notifies(timeout=0.0))
        return services

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


def purge_sent(*, older_than: timedelta | None = None) -> dict[str, int]:
    """Delete SENT rows older than the retention, except each aggregate's newest; return counts per service.

    The newest row of an aggregate stays so the relay's order guard can see
    that a new version's predecessor was sent.
    """
    if older_than is None:
        older_than = timedelta(hours=settings.OUTBOX_RETENTION_HOURS)
    cutoff = timezone.now() - older_than
    deleted = {}
    for outbox in outbox_models():
        alias = router.db_for_write(outbox)
        table = connections[alias].ops.quote_name(outbox._meta.db_table)
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} o WHERE o.status = %s AND o.sent_at < %s AND EXISTS ("
                f"SELECT 1 FROM {table} n WHERE n.aggregate_type = o.aggregate_type"
                " AND n.partition_key = o.partition_key AND n.aggregate_version > o.aggregate_version)",
                [OutboxStatus.SENT, cutoff])
            deleted[outbox._meta.app_label] = cursor.rowcount
    return deleted


def outbox_figures() -> list[dict[str, Any]]:
    """Return, per outbox: pending backlog, dead letters, and the age (s) of the oldest pending row."""
    now = timezone.now()
    figures = []
    for outbox in outbox_models():
        rows = outbox.objects.using(router.db_for_read(outbox))
        oldest = rows.filter(status=OutboxStatus.PENDING).order_by("id").values_list("created_at", flat=True).first()
        figures.append({
            "service": outbox._meta.app_label,
            "pending": rows.filter(status=OutboxStatus.PENDING).count(),
            "dead": rows.filter(status=OutboxStatus.DEAD).count(),
            "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else 0.0,
        })
    return figures

