"""The event-sourced score ledger: one append-only stream per (tournament, player).

State is never stored as the truth, only derived: `ledger_load` folds the
stream's events through `FOLDS`, starting from the latest snapshot when there
is one (a snapshot every `SCORES_LEDGER_SNAPSHOT_EVERY` events), so a load
reads at most that many events however long the stream is. Stored events are
upcast to their current schema before anything reads them.

Appending checks the expected version; the unique (stream, version) constraint
turns a concurrent append into a VersionConflict. Every appended event is also
published to the Score Engine's outbox in the same transaction (aggregate
`scores.Ledger`, id `<tournament>/<player>`, version = stream version), so the
read model sees a gapless sequence per stream.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.raw_sql import insert_rows, json_value, pg_array
from sagas.messages import Event
from sagas.outbox import Publication, publish_many
from scores.messages import (
    LedgerClosed,
    LedgerOpened,
    PointsAwarded,
    PointsAwardedV1,
    PointsRevoked,
)
from scores.models import LedgerEvent, LedgerSnapshot, OutboxMessage

ALIAS = "scores"
# The shape of LedgerState as stored in snapshots; bump it when LedgerState changes.
SNAPSHOT_SCHEMA = 1


class LedgerStatus:
    NONE = "NONE"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class VersionConflict(Exception):
    """Another writer appended to the stream first; reload and retry."""


@dataclasses.dataclass(frozen=True)
class LedgerState:
    tournament_id: str
    player_id: str
    status: str = LedgerStatus.NONE
    points: int = 0
    version: int = 0


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    """A ledger event as read back: upcast to the current schema of its type."""

    version: int
    type: str
    schema_version: int
    payload: dict[str, Any]
    recorded_at: datetime


def stream_key(tournament_id: str, player_id: str) -> str:
    """Return the aggregate id of a stream (its partition key on the wire)."""
    return f"{tournament_id}/{player_id}"


# UPCASTING: (type, stored schema version) -> payload of the next version.
# A stored event passes through the chain until it reaches the current version.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
V1_REASONS = {3: "win", 1: "draw", 0: "loss"}


def points_awarded_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Add the `reason` v1 did not record; v1 only ever awarded match points, so they tell the outcome."""
    v1 = PointsAwardedV1(**payload)
    return {**dataclasses.asdict(v1), "reason": V1_REASONS.get(v1.points, "match result")}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    (PointsAwardedV1.TYPE, PointsAwardedV1.SCHEMA_VERSION): points_awarded_v1_to_v2,
}


def upcast(event_type: str, schema_version: int, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Return the event's payload in the newest schema its upcasters reach, and that version."""
    while (upcaster := UPCASTERS.get((event_type, schema_version))) is not None:
        payload, schema_version = upcaster(payload), schema_version + 1
    return schema_version, payload


def stored_event(row: LedgerEvent) -> StoredEvent:
    schema_version, payload = upcast(row.type, row.schema_version, row.payload)
    return StoredEvent(version=row.version, type=row.type, schema_version=schema_version, payload=payload,
                       recorded_at=row.recorded_at)


# FOLDS: how each (upcast) event changes the state.
Fold = Callable[[LedgerState, dict], LedgerState]

FOLDS: dict[str, Fold] = {
    LedgerOpened.TYPE: lambda state, payload: dataclasses.replace(state, status=LedgerStatus.OPEN),
    LedgerClosed.TYPE: lambda state, payload: dataclasses.replace(state, status=LedgerStatus.CLOSED),
    PointsAwarded.TYPE: lambda state, payload: dataclasses.replace(state, points=state.points + payload["points"]),
    PointsRevoked.TYPE: lambda state, payload: dataclasses.replace(state, points=state.points - payload["points"]),
}


def ledger_fold(state: LedgerState, events: Iterable[StoredEvent]) -> LedgerState:
    """Apply events, in version order, to `state`."""
    version = state.version
    for event in events:
        state = FOLDS[event.type](state, event.payload)
        version = event.version
    return state if state.version == version else dataclasses.replace(state, version=version)


def ledger_events(*, tournament_id: str, player_id: str, after_version: int = 0, as_of: datetime | None = None,
                  version: int | None = None) -> list[StoredEvent]:
    """Return the stream's events after `after_version` (up to a time or version), upcast, in order."""
    rows = LedgerEvent.objects.using(ALIAS).filter(tournament_id=tournament_id, player_id=player_id,
                                                   version__gt=after_version)
    if as_of is not None:
        rows = rows.filter(recorded_at__lte=as_of)
    if version is not None:
        rows = rows.filter(version__lte=version)
    return [stored_event(row) for row in rows.order_by("version")]


def latest_snapshot(*, tournament_id: str, player_id: str, as_of: datetime | None = None,
                    version: int | None = None) -> LedgerState | None:
    """Return the newest snapshot of the stream not later than `as_of` / `version`, or None."""
    snapshots = LedgerSnapshot.objects.using(ALIAS).filter(tournament_id=tournament_id, player_id=player_id,
                                                           schema=SNAPSHOT_SCHEMA)
    if as_of is not None:
        snapshots = snapshots.filter(recorded_at__lte=as_of)
    if version is not None:
        snapshots = snapshots.filter(version__lte=version)
    snapshot = snapshots.order_by("-version").only("state").first()
    return LedgerState(**snapshot.state) if snapshot else None


def ledger_load(*, tournament_id: str, player_id: str, as_of: datetime | None = None, version: int | None = None,
                use_snapshots: bool = True) -> LedgerState:
    """Return the stream's state now, or as it was at `as_of` or at `version`.

    Reads the latest snapshot at or before that point and replays only the
    events after it; `use_snapshots=False` replays the whole stream (the
    snapshots must never change the answer, only the time it takes).
    """
    tournament_id = str(tournament_id)
    start = latest_snapshot(tournament_id=tournament_id, player_id=player_id, as_of=as_of, version=version) \
        if use_snapshots else None
    start = start or LedgerState(tournament_id=tournament_id, player_id=player_id)
    return ledger_fold(start, ledger_events(tournament_id=tournament_id, player_id=player_id,
                                            after_version=start.version, as_of=as_of, version=version))


@dataclasses.dataclass(frozen=True)
class Change:
    """An event to append to a stream, with the messages that caused it (carried to the outbox)."""

    event: Event
    causation_id: str = ""
    correlation_id: str = ""


def ledger_load_many(streams: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LedgerState]:
    """Return the current state of several (tournament, player) streams in two queries, whatever their number.

    Like `ledger_load` for each: the latest snapshot, then the events after it.
    """
    keys = sorted({(str(tournament_id), player_id) for tournament_id, player_id in streams})
    states = {key: LedgerState(tournament_id=key[0], player_id=key[1]) for key in keys}
    if not keys:
        return states
    tournaments, players = [key[0] for key in keys], [key[1] for key in keys]
    # Each stream is looked up on its own (LATERAL) through the (tournament, player, version) index: its newest
    # snapshot by one backward index step, then only the events after it. A plain join leaves the plan to the
    # statistics, and the planner, which cannot know the tail after a snapshot is short, then reads every
    # snapshot and event of the streams, or the whole table.
    with transaction.get_connection(ALIAS).prepared_cursor() as cursor:
        cursor.execute(
            "SELECT s.state FROM unnest(%s::uuid[], %s::varchar[]) AS k(tournament_id, player_id)"
            f" CROSS JOIN LATERAL (SELECT state FROM {LedgerSnapshot._meta.db_table}"
            " WHERE tournament_id = k.tournament_id AND player_id = k.player_id AND schema = %s"
            " ORDER BY version DESC LIMIT 1) AS s",
            [pg_array(tournaments), pg_array(players), SNAPSHOT_SCHEMA])
        for (state,) in cursor.fetchall():
            snapshot = LedgerState(**json_value(state))
            states[(snapshot.tournament_id, snapshot.player_id)] = snapshot
        cursor.execute(
            "SELECT k.tournament_id, k.player_id, e.version, e.type, e.schema_version, e.payload, e.recorded_at"
            " FROM unnest(%s::uuid[], %s::varchar[], %s::int[]) AS k(tournament_id, player_id, version)"
            f" CROSS JOIN LATERAL (SELECT version, type, schema_version, payload, recorded_at"
            f" FROM {LedgerEvent._meta.db_table} WHERE tournament_id = k.tournament_id"
            " AND player_id = k.player_id AND version > k.version) AS e"
            " ORDER BY k.tournament_id, k.player_id, e.version",
            [pg_array(tournaments), pg_array(players), pg_array(states[key].version for key in keys)])
        tails: dict[tuple[str, str], list[StoredEvent]] = defaultdict(list)
        for tournament_id, player_id, version, event_type, schema_version, payload, recorded_at in cursor.fetchall():
            schema_version, payload = upcast(event_type, schema_version, json_value(payload))
            tails[(str(tournament_id), player_id)].append(StoredEvent(
                version=version, type=event_type, schema_version=schema_version, payload=payload,
                recorded_at=recorded_at))
    return {key: ledger_fold(state, tails.get(key, ())) for key, state in states.items()}


def ledger_append(*, state: LedgerState, event: Event, causation_id: str = "", correlation_id: str = "") -> LedgerState:
    """Append `event` after `state.version` and publish it; raise VersionConflict if the stream moved on.

    Must run inside the caller's transaction on the `scores` alias. See `ledger_append_many`.
    """
    return ledger_append_many(appends=[(state, [Change(event, causation_id, correlation_id)])])[0]


def ledger_append_many(*, appends: list[tuple[LedgerState, list[Change]]]) -> list[LedgerState]:
    """Append to each of several streams its run of events after `state`, publish them; return the new states.

    One INSERT for all the events, one for their outbox rows, one for the
    snapshots due (every `SCORES_LEDGER_SNAPSHOT_EVERY`-th version), inside the
    caller's transaction on the `scores` alias. All or nothing: if any stream
    moved on past its `state`, VersionConflict and none is appended. The insert
    skips a conflicting version (`ON CONFLICT DO NOTHING`, waiting for a
    concurrent writer of it to commit or roll back) inside a savepoint that a
    conflict rolls back, so the caller's transaction stays usable and the caller
    can reload and retry. The streams must be distinct.
    """
    now = timezone.now()
    rows: list[tuple[LedgerState, Change]] = []  # each event with the stream's state after it
    snapshots, states = [], []
    for state, changes in appends:
        for change in changes:
            state = dataclasses.replace(FOLDS[change.event.TYPE](state, change.event.to_payload()),
                                        version=state.version + 1)
            rows.append((state, change))
            if state.version % settings.SCORES_LEDGER_SNAPSHOT_EVERY == 0:
                snapshots.append(LedgerSnapshot(tournament_id=state.tournament_id, player_id=state.player_id,
                                                version=state.version, schema=SNAPSHOT_SCHEMA,
                                                state=dataclasses.asdict(state), recorded_at=now))
        states.append(state)
    if not rows:
        return states
    # Stream order: concurrent writers wait for each other's versions in one order, never in a circle.
    rows.sort(key=lambda row: (row[0].tournament_id, row[0].player_id, row[0].version))
    table = LedgerEvent._meta.db_table
    # A savepoint: on a conflict, rolling back to it releases the rows this attempt did insert at once;
    # deleted ones would stay locked to the transaction's end, and a concurrent writer waiting on them
    # while this one retries on its rows would be a deadlock.
    with transaction.atomic(using=ALIAS), transaction.get_connection(ALIAS).prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tournament_id, player_id, version, type, schema_version, payload, causation_id,"
            " recorded_at) SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::int[], %s::varchar[], %s::smallint[],"
            " %s::jsonb[], %s::varchar[], %s::timestamptz[]) ON CONFLICT (tournament_id, player_id, version)"
            " DO NOTHING RETURNING id",
            [pg_array(state.tournament_id for state, _ in rows), pg_array(state.player_id for state, _ in rows),
             pg_array(state.version for state, _ in rows), pg_array(change.event.TYPE for _, change in rows),
             pg_array(change.event.SCHEMA_VERSION for _, change in rows),
             pg_array(change.event.to_payload() for _, change in rows),
             pg_array(change.causation_id for _, change in rows), pg_array([now] * len(rows))])
        if len(cursor.fetchall()) < len(rows):
            streams = ", ".join(f"{state.tournament_id}/{state.player_id} v{state.version}" for state, _ in rows)
            raise VersionConflict(f"ledger already has one of: {streams}")
    publish_many([Publication(change.event, stream_key(state.tournament_id, state.player_id), state.version,
                              change.correlation_id, change.causation_id) for state, change in rows],
                 outbox=OutboxMessage)
    insert_rows(snapshots, using=ALIAS)
    return states
