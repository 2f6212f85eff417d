"""The leaderboard projection: standings built only from events, never from another service's tables.

Sources: the Match Engine's tournament and match events (who takes part,
results) and the Score Engine's ledger events (points, so the points rule
lives only in the Score Engine). Each event is first stored in the read
model's own log (`ConsumedEvent`); that copy is the idempotency check (one row
per message and per aggregate version) and the history `leaderboard_rebuild`
replays, so a rebuild never asks another service for anything.

The projection is correct under duplicates and any order, even without the
messaging framework's per-aggregate ordering:
- a match event carries the whole result: the newest version replaces the
  older one's contribution, an older version arriving later is ignored;
- ledger events are increments of points, applied once each (the log's
  unique version), and addition does not care about order;
- a tournament's status follows its newest event; the facts a
  TournamentCreated brings (name, participants) are added whenever it comes.

One projection, two stores: `SqlStore` applies an event to the tables at once
(live consumption), `MemoryStore` folds a whole history in memory and writes
the result in bulk (rebuild); the rules are written once, in the projectors.
"""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol

from django.db import connections, transaction
from django.utils import timezone

from leaderboard.models import ConsumedEvent, MatchView, Standing, TournamentView
from sagas.messages import Envelope
from scores.messages import LedgerClosed, LedgerOpened, PointsAwarded, PointsRevoked
from tournament.messages import (
    MatchCorrected,
    MatchRecorded,
    TournamentActivated,
    TournamentCancelled,
    TournamentCompleted,
    TournamentCreated,
)

ALIAS = "leaderboard"
TOURNAMENT_STATUS = {
    TournamentCreated.TYPE: "PENDING",
    TournamentActivated.TYPE: "ACTIVE",
    TournamentCancelled.TYPE: "CANCELLED",
    TournamentCompleted.TYPE: "COMPLETED",
}


@dataclasses.dataclass(frozen=True)
class Line:
    """A change to one player's standing (or a whole standing: the sum of its changes)."""

    points: int = 0
    played: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    score_for: int = 0
    score_against: int = 0

    def __add__(self, other: Line) -> Line:
        return Line(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))

    def __neg__(self) -> Line:
        return Line(*(-a for a in dataclasses.astuple(self)))


LINE_FIELDS = [field.name for field in dataclasses.fields(Line)]


def result_line(score_for: int, score_against: int) -> Line:
    """Return what one match adds to a player's line (points come from the Score Engine, not from here)."""
    return Line(played=1, wins=int(score_for > score_against), draws=int(score_for == score_against),
                losses=int(score_for < score_against), score_for=score_for, score_against=score_against)


class Store(Protocol):
    def tournament(self, tournament_id: str) -> TournamentView: ...
    def save_tournament(self, view: TournamentView) -> None: ...
    def match(self, match_id: str, tournament_id: str) -> MatchView: ...
    def save_match(self, view: MatchView) -> None: ...
    def add_lines(self, tournament_id: str, lines: dict[str, Line]) -> None: ...


# PROJECTORS: how each event type changes the read model.

def project_tournament(store: Store, envelope: Envelope) -> None:
    payload = envelope.payload
    view = store.tournament(payload["tournament_id"])
    if envelope.type == TournamentCreated.TYPE:
        view.name = payload["name"]
        store.add_lines(payload["tournament_id"], {player_id: Line() for player_id in payload["participants"]})
    if envelope.aggregate_version > view.version:
        view.version, view.status = envelope.aggregate_version, TOURNAMENT_STATUS[envelope.type]
    store.save_tournament(view)


def project_match(store: Store, envelope: Envelope) -> None:
    payload = envelope.payload
    view = store.match(payload["match_id"], payload["tournament_id"])
    if envelope.aggregate_version <= view.version:
        return  # a repeated or superseded version of the result
    lines: dict[str, Line] = defaultdict(Line)
    if view.version:
        lines[view.player_a] += -result_line(view.score_a, view.score_b)
        lines[view.player_b] += -result_line(view.score_b, view.score_a)
    lines[payload["player_a"]] += result_line(payload["score_a"], payload["score_b"])
    lines[payload["player_b"]] += result_line(payload["score_b"], payload["score_a"])
    view.version = envelope.aggregate_version
    view.player_a, view.player_b = payload["player_a"], payload["player_b"]
    view.score_a, view.score_b = payload["score_a"], payload["score_b"]
    store.save_match(view)
    store.add_lines(payload["tournament_id"], lines)


def points_projector(sign: int) -> Callable[[Store, Envelope], None]:
    def project_points(store: Store, envelope: Envelope) -> None:
        payload = envelope.payload
        store.add_lines(payload["tournament_id"], {payload["player_id"]: Line(points=sign * payload["points"])})
    return project_points


def project_ledger_opened(store: Store, envelope: Envelope) -> None:
    store.add_lines(envelope.payload["tournament_id"], {envelope.payload["player_id"]: Line()})


def project_nothing(store: Store, envelope: Envelope) -> None:
    """Keep the event in the log only: the framework orders a stream's events, so the read model takes them all."""


PROJECTORS: dict[str, Callable[[Store, Envelope], None]] = {
    **dict.fromkeys(TOURNAMENT_STATUS, project_tournament),
    MatchRecorded.TYPE: project_match,
    MatchCorrected.TYPE: project_match,
    LedgerOpened.TYPE: project_ledger_opened,
    PointsAwarded.TYPE: points_projector(+1),
    PointsRevoked.TYPE: points_projector(-1),
    LedgerClosed.TYPE: project_nothing,
}
CONSUMED_TYPES = tuple(PROJECTORS)


class SqlStore:
    """Applies changes to the tables at once, in the caller's transaction, locking the rows it changes."""

    def _locked(self, model: type, pk: str, **defaults) -> object:
        """Create (with `defaults`) or lock the row in one upsert; return it. Two first events never both insert."""
        meta, row = model._meta, model(pk=pk, **defaults)
        fields = meta.concrete_fields
        columns = ", ".join(field.column for field in fields)
        return model.objects.using(ALIAS).raw(
            f"INSERT INTO {meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
            f" ON CONFLICT ({meta.pk.column}) DO UPDATE SET {meta.pk.column} = EXCLUDED.{meta.pk.column}"
            f" RETURNING {columns}",
            [field.get_db_prep_save(getattr(row, field.attname), connections[ALIAS]) for field in fields])[0]

    def tournament(self, tournament_id: str) -> TournamentView:
        return self._locked(TournamentView, tournament_id)

    def save_tournament(self, view: TournamentView) -> None:
        view.save(using=ALIAS)

    def match(self, match_id: str, tournament_id: str) -> MatchView:
        return self._locked(MatchView, match_id, tournament_id=tournament_id, version=0, player_a="", player_b="",
                            score_a=0, score_b=0)

    def save_match(self, view: MatchView) -> None:
        view.save(using=ALIAS)

    def add_lines(self, tournament_id: str, lines: dict[str, Line]) -> None:
        """Add each line to its standing (creating it), in player order so concurrent events never deadlock."""
        if not lines:
            return
        table = Standing._meta.db_table
        columns = LINE_FIELDS + ["score_difference"]
        rows = [[tournament_id, player_id, *dataclasses.astuple(line), line.score_for - line.score_against]
                for player_id, line in sorted(lines.items())]
        values = ", ".join(["(" + ", ".join(["%s"] * (len(columns) + 2)) + ")"] * len(rows))
        updates = ", ".join(f"{column} = {table}.{column} + EXCLUDED.{column}" for column in columns)
        with connections[ALIAS].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tournament_id, player_id, {', '.join(columns)}) VALUES {values} "
                f"ON CONFLICT (tournament_id, player_id) DO UPDATE SET {updates}",
                [value for row in rows for value in row],
            )


class MemoryStore:
    """Folds events in memory; `flush` writes the resulting tables in bulk."""

    def __init__(self) -> None:
        self.tournaments: dict[str, TournamentView] = {}
        self.matches: dict[str, MatchView] = {}
        self.lines: dict[tuple[str, str], Line] = defaultdict(Line)

    def tournament(self, tournament_id: str) -> TournamentView:
        return self.tournaments.setdefault(tournament_id, TournamentView(tournament_id=tournament_id))

    def save_tournament(self, view: TournamentView) -> None:
        self.tournaments[str(view.tournament_id)] = view

    def match(self, match_id: str, tournament_id: str) -> MatchView:
        return self.matches.setdefault(match_id, MatchView(match_id=match_id, tournament_id=tournament_id, version=0,
                                                           player_a="", player_b="", score_a=0, score_b=0))

    def save_match(self, view: MatchView) -> None:
        self.matches[str(view.match_id)] = view

    def add_lines(self, tournament_id: str, lines: dict[str, Line]) -> None:
        for player_id, line in lines.items():
            self.lines[(tournament_id, player_id)] += line

    def flush(self) -> None:
        TournamentView.objects.using(ALIAS).bulk_create(self.tournaments.values(), batch_size=5000)
        MatchView.objects.using(ALIAS).bulk_create(self.matches.values(), batch_size=5000)
        Standing.objects.using(ALIAS).bulk_create(
            (Standing(tournament_id=tournament_id, player_id=player_id, **dataclasses.asdict(line),
                      score_difference=line.score_for - line.score_against)
             for (tournament_id, player_id), line in self.lines.items()),
            batch_size=5000,
        )


def event_record(envelope: Envelope) -> bool:
    """Store the event in the read model's log; return False if it is already there (a duplicate)."""
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ConsumedEvent._meta.db_table} (message_id, type, schema_version, aggregate_type, "
            "aggregate_id, aggregate_version, correlation_id, causation_id, occurred_at, payload, tournament_id, "
            "applied_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            [envelope.message_id, envelope.type, envelope.schema_version, envelope.aggregate_type,
             envelope.aggregate_id, envelope.aggregate_version, envelope.correlation_id, envelope.causation_id,
             envelope.occurred_at, json.dumps(envelope.payload),
             envelope.payload["tournament_id"], timezone.now()],
        )
        return cursor.fetchone() is not None


@transaction.atomic(using=ALIAS)
def standings_apply(*, envelope: Envelope) -> bool:
    """Record the event in the read model's log and project it; return False for a duplicate.

    Called at least once, in any order.
    """
    if not event_record(envelope):
        return False
    PROJECTORS[envelope.type](SqlStore(), envelope)
    return True


def envelope_from_log(event: ConsumedEvent) -> Envelope:
    return Envelope(message_id=str(event.message_id), type=event.type, schema_version=event.schema_version,
                    aggregate_type=event.aggregate_type, aggregate_id=event.aggregate_id,
                    aggregate_version=event.aggregate_version, correlation_id=event.correlation_id,
                    causation_id=event.causation_id, occurred_at=event.occurred_at.isoformat(),
                    payload=event.payload)


def standings_fold(envelopes: Iterable[Envelope]) -> MemoryStore:
    """Fold a history of events into a fresh in-memory read model."""
    store = MemoryStore()
    for envelope in envelopes:
        PROJECTORS[envelope.type](store, envelope)
    return store


@transaction.atomic(using=ALIAS, durable=True)
def leaderboard_rebuild(*, tournament_id: str | None = None) -> int:
    """Drop the projections (of one tournament, or all) and replay them from the read model's log; return the count.

    The log table is locked in EXCLUSIVE mode for the rebuild: readers go on
    reading the old standings, while consumers (whose first step inserts into
    the log) wait, then apply their event on top of the rebuilt tables. So an
    event is never lost between the replay's read and its commit.
    """
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(f"LOCK TABLE {ConsumedEvent._meta.db_table} IN EXCLUSIVE MODE")
    scope = {"tournament_id": tournament_id} if tournament_id else {}
    for model in (Standing, MatchView, TournamentView):
        model.objects.using(ALIAS).filter(**scope).delete()
    history = ConsumedEvent.objects.using(ALIAS).filter(**scope).order_by("id")
    count = 0

    def replay() -> Iterable[Envelope]:
        nonlocal count
        for event in history.iterator(chunk_size=10_000):
            count += 1
            yield envelope_from_log(event)

    standings_fold(replay()).flush()
    return count
