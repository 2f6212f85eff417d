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
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sagas.messages import Event
from sagas.outbox import publish_many
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
    for event in events:
        state = FOLDS[event.type](state, event.payload)
        state = dataclasses.replace(state, version=event.version)
    return state


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


def ledger_append(*, state: LedgerState, event: Event, causation_id: str = "", correlation_id: str = "") -> LedgerState:
    """Append `event` after `state.version` and publish it; raise VersionConflict if the stream moved on.

    Must run inside the caller's transaction on the `scores` alias. The insert
    skips a conflicting version (`ON CONFLICT DO NOTHING`, waiting for a
    concurrent writer of that version to commit or roll back) instead of
    raising, so a conflict leaves the transaction usable without a savepoint.
    Every `SCORES_LEDGER_SNAPSHOT_EVERY`-th version also writes a snapshot.
    """
    return ledger_append_many(appends=[(state, event)], causation_id=causation_id, correlation_id=correlation_id)[0]


def ledger_append_many(*, appends: list[tuple[LedgerState, Event]], causation_id: str = "",
                       correlation_id: str = "") -> list[LedgerState]:
    """Append one event to each of several streams and publish them: one INSERT each for events and outbox rows.

    All or nothing: if any stream moved on, VersionConflict and none is
    appended (the caller's transaction stays usable). The streams must be distinct. Snapshots as `ledger_append`.
    """
    if not appends:
        return []
    now = timezone.now()
    rows = [LedgerEvent(tournament_id=state.tournament_id, player_id=state.player_id, version=state.version + 1,
                        type=event.TYPE, schema_version=event.SCHEMA_VERSION, payload=event.to_payload(),
                        causation_id=causation_id, recorded_at=now)
            for state, event in appends]
    # ON CONFLICT DO NOTHING instead of a savepoint around a failing INSERT: one round trip, not three. A
    # concurrent writer of the same version is waited for, as with a plain INSERT; then its row wins.
    table = LedgerEvent._meta.db_table
    with transaction.get_connection(ALIAS).cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tournament_id, player_id, version, type, schema_version, payload, causation_id,"
            " recorded_at) SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::int[], %s::varchar[], %s::smallint[],"
            " %s::jsonb[], %s::varchar[], %s::timestamptz[]) ON CONFLICT (tournament_id, player_id, version)"
            " DO NOTHING RETURNING id",
            [[str(row.tournament_id) for row in rows], [row.player_id for row in rows], [row.version for row in rows],
             [row.type for row in rows], [row.schema_version for row in rows],
             [json.dumps(row.payload) for row in rows], [row.causation_id for row in rows],
             [row.recorded_at for row in rows]])
        inserted = [row_id for row_id, in cursor.fetchall()]
        if len(inserted) < len(rows):
            cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [inserted])  # all or nothing
            streams = ", ".join(f"{row.tournament_id}/{row.player_id} v{row.version}" for row in rows)
            raise VersionConflict(f"ledger already has one of: {streams}")
    states = [ledger_fold(state, [stored_event(row)]) for (state, _event), row in zip(appends, rows)]
    publish_many([(event, stream_key(state.tournament_id, state.player_id), state.version + 1)
                  for state, event in appends], outbox=OutboxMessage, correlation_id=correlation_id,
                 causation_id=causation_id)
    LedgerSnapshot.objects.using(ALIAS).bulk_create([
        LedgerSnapshot(tournament_id=state.tournament_id, player_id=state.player_id, version=state.version,
                       schema=SNAPSHOT_SCHEMA, state=dataclasses.asdict(state), recorded_at=now)
        for state in states if state.version % settings.SCORES_LEDGER_SNAPSHOT_EVERY == 0
    ])
    return states
